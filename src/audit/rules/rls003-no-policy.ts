import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { manualFix, sqlFix, tenantPolicyStatements } from '../fix.js';

export const rls003 = defineRule({
  code: 'RLS003',
  name: 'no-policy',
  severity: 'warning',
  title: 'Row level security enabled with no policy',
  description:
    'Row level security is enabled on a table that has no policy at all. PostgreSQL then denies every row to every role that RLS applies to: the application sees empty results and its writes fail. It is safe, but almost never what was meant.',
  remediation:
    'Create the policies the table needs (for a tenant table, the tenant policies `rlsctl apply` makes), or disable RLS if the table is not meant to be reachable.',
  check(ctx) {
    const findings: Finding[] = [];
    for (const rel of ctx.catalog.relations) {
      if (!ctx.isTable(rel) || rel.isPartition || !rel.rls || !ctx.scopeSchemas.has(rel.schema) || ctx.exempt.has(rel.oid)) continue;
      if (ctx.policiesOf(rel.oid).length > 0) continue;
      const table = ctx.protectedTables.get(rel.oid);
      const policies = table?.mode === 'tenant' ? tenantPolicyStatements(ctx, table) : undefined;
      findings.push(
        findingOf(
          rls003,
          ctx.objectOf(rel),
          `${ctx.label(rel)} has row level security enabled and no policy: every query of the app roles returns no row and every write fails`,
          policies && 'sql' in policies
            ? sqlFix(policies.sql)
            : manualFix(
                `${policies ? `${policies.reason}; ` : ''}decide what the app roles may read and write of ${ctx.label(rel)}, and create its policies (for a tenant table, the tenant policies rlsctl apply makes); or disable row level security if the table is not meant to be reachable`,
              ),
        ),
      );
    }
    return findings;
  },
});
