import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { appRolesSql, sqlFix } from '../fix.js';

export const rls064 = defineRule({
  code: 'RLS064',
  name: 'public-grant',
  severity: 'warning',
  title: 'Privileges on a tenant table granted to PUBLIC',
  description:
    'Privileges on a tenant table are granted to PUBLIC, that is to every role of the cluster, present and future, not only the app roles the policies were written for. With row level security on, those roles still meet the policies; but the grant widens who can try, and any role the policies name by accident (PUBLIC policies, a role created later) gets in.',
  remediation: 'REVOKE ALL ON the table FROM PUBLIC, then GRANT the privileges the app roles need to them by name.',
  check(ctx) {
    const findings: Finding[] = [];
    const byRel = new Map<string, string[]>();
    for (const g of ctx.catalog.grants) {
      if (g.grantee !== 'PUBLIC') continue;
      const p = ctx.protectedTables.get(g.relOid) ?? ctx.protectedPartitions.get(g.relOid);
      if (!p || p.mode !== 'tenant') continue;
      const list = byRel.get(g.relOid);
      if (list) list.push(g.privilege);
      else byRel.set(g.relOid, [g.privilege]);
    }
    for (const [oid, privileges] of byRel) {
      const rel = ctx.relations.get(oid)!;
      findings.push(
        findingOf(
          rls064,
          ctx.objectOf(rel),
          `${ctx.label(rel)} grants ${privileges.join(', ')} to PUBLIC: every role of the cluster can query it`,
          // What PUBLIC had, given to the app roles by name: not a privilege more.
          appRolesSql(ctx)
            ? sqlFix([
                `REVOKE ${privileges.join(', ')} ON ${ctx.sql(rel)} FROM PUBLIC;`,
                `GRANT ${privileges.join(', ')} ON ${ctx.sql(rel)} TO ${appRolesSql(ctx)!};`,
              ])
            : sqlFix([`REVOKE ${privileges.join(', ')} ON ${ctx.sql(rel)} FROM PUBLIC;`], {
                note: 'then grant the app roles, by name, the privileges they need',
              }),
        ),
      );
    }
    return findings;
  },
});
