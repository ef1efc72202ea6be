import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { sqlFix } from '../fix.js';

export const rls002 = defineRule({
  code: 'RLS002',
  name: 'rls-not-forced',
  severity: 'warning',
  title: 'Row level security enabled but not forced',
  description:
    "Row level security is enabled on a tenant or shared table but not forced: the table owner, and every role that has the owner's privileges through membership, bypasses every policy of the table.",
  remediation: 'ALTER TABLE ... FORCE ROW LEVEL SECURITY, so that only superusers and roles with BYPASSRLS bypass the policies.',
  check(ctx) {
    const findings: Finding[] = [];
    // Owners are few: who inherits from each is computed once per owner.
    const heirsOf = new Map<string, string[]>();
    const heirs = (owner: string) => {
      let list = heirsOf.get(owner);
      if (!list) {
        list = [...ctx.memberships]
          .filter(([member, roles]) => member !== owner && roles.get(owner)?.inherits)
          .map(([member]) => member)
          .sort();
        heirsOf.set(owner, list);
      }
      return list;
    };
    for (const t of ctx.protectedTables.values()) {
      if (!t.rel.rls || t.rel.force) continue;
      const inheriting = heirs(t.rel.owner);
      const also = inheriting.length > 0 ? ` (and so do ${inheriting.join(', ')}, which inherit from it)` : '';
      findings.push(
        findingOf(
          rls002,
          ctx.objectOf(t.rel),
          `${ctx.label(t.rel)} has row level security enabled but not forced: its owner ${t.rel.owner} bypasses every policy${also}`,
          sqlFix([`ALTER TABLE ${ctx.sql(t.rel)} FORCE ROW LEVEL SECURITY;`]),
        ),
      );
    }
    return findings;
  },
});
