import { quoteIdent } from '../../compile/quote.js';
import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { sqlFix } from '../fix.js';

export const rls062 = defineRule({
  code: 'RLS062',
  name: 'nullable-tenant-column',
  severity: 'warning',
  title: 'The tenant column admits NULL',
  description:
    'The tenant column of a tenant table is nullable. A row with a NULL tenant belongs to no tenant: the tenant predicate never matches it, so it is invisible to every tenant, and any policy that treats NULL as "shared" turns it into a row every tenant sees. Either way it is data the isolation model does not account for.',
  remediation: 'Backfill the NULL rows, then ALTER TABLE ... ALTER COLUMN tenant_id SET NOT NULL.',
  check(ctx) {
    const findings: Finding[] = [];
    for (const table of ctx.tenantTables()) {
      const column = table.column;
      if (!column || column.notNull) continue;
      findings.push(
        findingOf(
          rls062,
          ctx.objectOf(table.rel),
          `${ctx.label(table.rel)}.${column.name} admits NULL: a row without a tenant is outside the isolation model`,
          sqlFix([`ALTER TABLE ${ctx.sql(table.rel)} ALTER COLUMN ${quoteIdent(column.name)} SET NOT NULL;`], {
            note: 'it fails, changing nothing, while a row has no tenant: give those rows their tenant first',
          }),
          column.name,
        ),
      );
    }
    return findings;
  },
});
