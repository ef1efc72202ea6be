import { quoteIdent } from '../../compile/quote.js';
import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { manualFix, sqlFix } from '../fix.js';

export const rls010 = defineRule({
  code: 'RLS010',
  name: 'app-role-bypasses-rls',
  severity: 'error',
  title: 'An app role bypasses row level security',
  description:
    "A role that application traffic runs as is a superuser, has BYPASSRLS, owns a tenant table (owners bypass policies unless the table forces RLS, and can always disable it), or can become such a role: by SET ROLE, or by inheriting the owner's privileges. Every policy is then one statement away from not applying.",
  remediation:
    'Run the application as a role with NOSUPERUSER NOBYPASSRLS that owns nothing and is a member of no such role; give the tables to a separate owner role and grant the app role only the table privileges it needs.',
  check(ctx) {
    const findings: Finding[] = [];
    // The owners of tenant and shared tables, with the tables they own (few owners, many tables).
    const owned = new Map<string, string[]>();
    for (const t of ctx.protectedTables.values()) {
      const list = owned.get(t.rel.owner);
      if (list) list.push(ctx.label(t.rel));
      else owned.set(t.rel.owner, [ctx.label(t.rel)]);
    }
    const tablesOf = (owner: string) => {
      const list = owned.get(owner) ?? [];
      return list.length <= 3 ? list.join(', ') : `${list.slice(0, 3).join(', ')} and ${list.length - 3} more`;
    };
    for (const app of ctx.appRoles) {
      const object = { kind: 'role' as const, name: app };
      const own = ctx.bypassesByAttribute(app);
      if (own) {
        const alter = own === 'superuser' ? 'NOSUPERUSER' : 'NOBYPASSRLS';
        findings.push(
          findingOf(
            rls010,
            object,
            `app role ${app} is ${own === 'superuser' ? 'a superuser' : 'BYPASSRLS'}: no policy applies to it`,
            sqlFix([`ALTER ROLE ${quoteIdent(app)} ${alter};`]),
            own,
          ),
        );
      }
      if (owned.has(app)) {
        findings.push(
          findingOf(
            rls010,
            object,
            `app role ${app} owns tenant tables (${tablesOf(app)}): it can disable row level security on them, and bypasses it where it is not forced`,
            manualFix(
              `decide which role owns the tables (one the application does not run as, NOBYPASSRLS), then ALTER TABLE ... OWNER TO it for ${tablesOf(app)}, and grant ${app} the table privileges it needs`,
            ),
            'owner',
          ),
        );
      }
      for (const m of ctx.memberships.get(app)?.values() ?? []) {
        const attr = ctx.bypassesByAttribute(m.role);
        const how = m.canSet && m.inherits ? 'is a member of' : m.canSet ? 'can SET ROLE to' : 'inherits the privileges of';
        const revoke = sqlFix([`REVOKE ${quoteIdent(m.role)} FROM ${quoteIdent(app)};`]);
        // Superuser and BYPASSRLS are never inherited: they matter only through SET ROLE.
        if (attr && m.canSet) {
          findings.push(
            findingOf(
              rls010,
              object,
              `app role ${app} ${how} ${m.role}, which is ${attr === 'superuser' ? 'a superuser' : 'BYPASSRLS'}: one SET ROLE and no policy applies`,
              revoke,
              `${m.role}:${attr}`,
            ),
          );
        }
        if (owned.has(m.role)) {
          findings.push(
            findingOf(
              rls010,
              object,
              `app role ${app} ${how} ${m.role}, which owns tenant tables (${tablesOf(m.role)}): it can disable row level security on them, and bypasses it where it is not forced`,
              revoke,
              `${m.role}:owner`,
            ),
          );
        }
      }
    }
    return findings;
  },
});
