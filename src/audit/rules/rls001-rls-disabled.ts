import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { manualFix, sqlFix, tenantPolicyStatements } from '../fix.js';

export const rls001 = defineRule({
  code: 'RLS001',
  name: 'rls-disabled',
  severity: 'error',
  title: 'Tenant table without row level security',
  description:
    'A table that holds tenant rows (or a table the app roles can reach, whatever its columns: with a policy file in a managed schema it does not declare, without one in the schemas in scope) does not have row level security enabled: every app query sees and changes every row, whatever policies exist.',
  remediation: 'Create the tenant policies, then ENABLE and FORCE ROW LEVEL SECURITY on the table (`rlsctl apply` does both, in that order).',
  check(ctx) {
    const findings: Finding[] = [];
    for (const t of ctx.protectedTables.values()) {
      if (t.rel.rls) continue;
      const what = t.mode === 'shared' ? 'a shared table' : 'a tenant table';
      findingsPush(findings, t.rel, `${ctx.label(t.rel)} is ${what} without row level security: every app query sees every tenant's rows`, t);
    }
    // Tables the app roles can reach that have no row level security, whatever their columns: with a policy
    // file, those in a managed schema that the file does not declare (RLS005 says "declare it"); without one,
    // those in the schemas in scope.
    for (const [oid, roles] of ctx.catalog.appReach) {
      const rel = ctx.relations.get(oid);
      if (!rel || !ctx.isTable(rel) || rel.rls || rel.isPartition || ctx.protectedTables.has(oid) || ctx.exempt.has(oid)) continue;
      findingsPush(
        findings,
        rel,
        ctx.facts.source === 'policy-file'
          ? `${ctx.label(rel)} is in a managed schema, undeclared, without row level security, and ${roles.join(', ')} can reach it`
          : `${ctx.label(rel)} has no row level security and ${roles.join(', ')} can reach it: every row is visible to every user of the app, whatever its columns`,
      );
    }
    return findings;

    function findingsPush(out: Finding[], rel: Parameters<typeof ctx.sql>[0], message: string, table?: Parameters<typeof tenantPolicyStatements>[1]) {
      const sql = ctx.sql(rel);
      const enable = [`ALTER TABLE ${sql} ENABLE ROW LEVEL SECURITY;`, `ALTER TABLE ${sql} FORCE ROW LEVEL SECURITY;`];
      // Its own policies when it has some; else the tenant policies rlsctl generates, before ENABLE.
      const policies = ctx.policiesOf(rel.oid).length > 0 ? { sql: [] } : table?.mode === 'tenant' ? tenantPolicyStatements(ctx, table) : undefined;
      const fix =
        policies && 'sql' in policies
          ? sqlFix([...policies.sql, ...enable])
          : manualFix(
              `${policies && 'reason' in policies ? `${policies.reason}; ` : table?.mode === 'shared' ? 'decide what each app role may read and write of this shared table; ' : 'declare the table in the policy file (tenant, shared or exempt); '}then create its policies and run ${enable.join(' ')}`,
            );
      out.push(findingOf(rls001, ctx.objectOf(rel), message, fix));
    }
  },
});
