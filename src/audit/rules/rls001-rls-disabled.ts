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
    "A table that holds tenant rows (or, with a policy file, a table in a managed schema that the app roles can reach) does not have row level security enabled: every app query sees and changes every tenant's rows, whatever policies exist.",
  remediation: 'Create the tenant policies, then ENABLE and FORCE ROW LEVEL SECURITY on the table (`rlsctl apply` does both, in that order).',
  check(ctx) {
    const findings: Finding[] = [];
    for (const t of ctx.protectedTables.values()) {
      if (t.rel.rls) continue;
      const what = t.mode === 'shared' ? 'a shared table' : 'a tenant table';
      findingsPush(findings, t.rel, `${ctx.label(t.rel)} is ${what} without row level security: every app query sees every tenant's rows`, t);
    }
    // With a policy file: tables in a managed schema that the file does not
    // declare and that the app roles can reach (RLS005 says "declare it").
    for (const [oid, roles] of ctx.catalog.appReach) {
      const rel = ctx.relations.get(oid);
      if (!rel || !ctx.isTable(rel) || rel.rls || rel.isPartition || ctx.protectedTables.has(oid) || ctx.exempt.has(oid)) continue;
      findingsPush(findings, rel, `${ctx.label(rel)} is in a managed schema, undeclared, without row level security, and ${roles.join(', ')} can reach it`);
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
