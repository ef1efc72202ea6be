import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { manualFix } from '../fix.js';

export const rls005 = defineRule({
  code: 'RLS005',
  name: 'undeclared-table',
  severity: 'warning',
  title: 'A table in a managed schema that the policy file does not declare',
  description:
    'Every table of a schema listed in the policy file must be declared (tenant, shared or exempt). An undeclared table was added after the file was written: nobody decided whether it holds tenant rows, and `rlsctl apply` leaves it unprotected.',
  remediation: 'Declare the table in the policy file (tenant, shared, or exempt with a reason) and run `rlsctl apply`.',
  needsPolicyFile: true,
  check(ctx) {
    const findings: Finding[] = [];
    // The planner's list when there is a plan (the same as `apply` sees); else the
    // same definition from the catalog: a table or partitioned table, not a
    // partition, in a managed schema, not declared.
    const declared = new Set([...ctx.facts.tenantTables, ...ctx.facts.sharedTables, ...ctx.facts.exemptTables].map((t) => `${t.schema}.${t.name}`));
    const managed = new Set(ctx.facts.model?.schemas ?? []);
    const names =
      ctx.plan?.undeclaredTables ??
      ctx.catalog.relations.filter((r) => ctx.isTable(r) && !r.isPartition && managed.has(r.schema) && !declared.has(ctx.label(r))).map((r) => ctx.label(r));
    for (const key of names) {
      const rel = ctx.relationsByKey.get(key);
      const dot = key.indexOf('.');
      const object = rel ? ctx.objectOf(rel) : { kind: 'table' as const, schema: key.slice(0, dot), name: key.slice(dot + 1) };
      const column = rel ? ctx.column(rel.oid, ctx.facts.tenantColumn) : undefined;
      findings.push(
        findingOf(
          rls005,
          object,
          `${key} is in a managed schema but not declared in the policy file${column ? ` (it has the tenant column ${column.name})` : ''}`,
          manualFix(
            `declare it in the policy file, under schemas.${object.schema}.tables: ${object.name}: ${column ? 'tenant' : 'shared, tenant, or { mode: exempt, reason: why }'}; then run rlsctl apply`,
          ),
        ),
      );
    }
    return findings;
  },
});
