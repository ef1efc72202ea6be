import { quoteIdent } from '../../compile/quote.js';
import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { sqlFix } from '../fix.js';

export const rls063 = defineRule({
  code: 'RLS063',
  name: 'rls-bypassing-grant',
  severity: 'error',
  title: 'TRUNCATE or REFERENCES on a tenant table granted to an app role or PUBLIC',
  description:
    "Row level security filters SELECT, INSERT, UPDATE and DELETE, not TRUNCATE (which empties the table for every tenant) nor REFERENCES (which lets a role create a foreign key that probes every tenant's keys). Granted to an app role, to a role an app role inherits from, or to PUBLIC, they reach across tenants.",
  remediation: 'REVOKE TRUNCATE, REFERENCES ON the table FROM the grantee.',
  check(ctx) {
    const findings: Finding[] = [];
    const byKey = new Map<string, { rel: string; grantee: string; privileges: string[]; via?: string }>();
    for (const g of ctx.catalog.grants) {
      if (g.privilege !== 'TRUNCATE' && g.privilege !== 'REFERENCES') continue;
      const p = ctx.protectedTables.get(g.relOid) ?? ctx.protectedPartitions.get(g.relOid);
      if (!p || p.mode !== 'tenant') continue;
      let via: string | undefined;
      if (g.grantee !== 'PUBLIC' && !ctx.appRoleSet.has(g.grantee)) {
        via = ctx.appRoles.find((app) => ctx.hasPrivsOf(app, g.grantee));
        if (!via) continue;
      }
      const key = `${g.relOid}:${g.grantee}`;
      const entry = byKey.get(key) ?? { rel: g.relOid, grantee: g.grantee, privileges: [], via };
      entry.privileges.push(g.privilege);
      byKey.set(key, entry);
    }
    for (const e of byKey.values()) {
      const rel = ctx.relations.get(e.rel)!;
      const who = e.grantee === 'PUBLIC' ? 'PUBLIC' : e.via ? `${e.grantee} (which app role ${e.via} inherits from)` : `app role ${e.grantee}`;
      findings.push(
        findingOf(
          rls063,
          ctx.objectOf(rel),
          `${e.privileges.join(' and ')} on ${ctx.label(rel)} granted to ${who}: row level security does not filter ${e.privileges.length > 1 ? 'them' : 'it'}`,
          sqlFix([`REVOKE ${e.privileges.join(', ')} ON ${ctx.sql(rel)} FROM ${e.grantee === 'PUBLIC' ? 'PUBLIC' : quoteIdent(e.grantee)};`]),
          e.grantee,
        ),
      );
    }
    return findings;
  },
});
