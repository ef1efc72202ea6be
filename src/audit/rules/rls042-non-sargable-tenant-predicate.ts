import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { manualFix, repairPolicyStatement, sqlFix } from '../fix.js';
import { anyClause, clauses, policyObject } from './policy-rule-helpers.js';

/** Casts PostgreSQL inserts itself for a varchar column compared with text: binary-compatible, still indexable. */
/** By catalog type name (a Map: a type may be named `constructor`). */
const RELABEL = new Map<string, Set<string>>([
  ['varchar', new Set(['::text'])],
  ['bpchar', new Set(['::text', '::bpchar'])],
  ['text', new Set(['::text'])],
]);

export const rls042 = defineRule({
  code: 'RLS042',
  name: 'non-sargable-tenant-predicate',
  severity: 'warning',
  title: 'The tenant column is wrapped in a cast or function in a policy',
  description:
    'A policy applies a cast or a function to the tenant column (tenant_id::text = current_setting(...), lower(tenant_id) = ...). A btree index on the tenant column cannot serve that predicate, so every query reads the whole table, whatever indexes exist.',
  remediation: "Leave the column bare and cast the setting instead: tenant_id = (SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid).",
  check(ctx) {
    const findings: Finding[] = [];
    for (const table of ctx.tenantTables()) {
      const column = table.columnName;
      if (!column) continue;
      const type = table.column?.type ?? '';
      for (const policy of ctx.policiesOf(table.rel.oid)) {
        if (!anyClause(ctx, policy, 'wrappedColumns')) continue;
        const wrapped = clauses(ctx, policy)
          .flatMap((c) => c.facts.wrappedColumns)
          .filter((w) => w.column === column && !RELABEL.get(type)?.has(w.wrapper));
        if (wrapped.length === 0) continue;
        const how = [...new Set(wrapped.map((w) => (w.wrapper.startsWith('::') ? `${column}${w.wrapper}` : w.wrapper.replace('()', `(${column})`))))].join(
          ', ',
        );
        // The cast moves to the other side, in the policy's own expression; a function of the column is not moved.
        const alter = repairPolicyStatement(
          ctx,
          table.rel,
          policy,
          (f) => !f.wrappedColumns.some((w) => w.column === column && !RELABEL.get(type)?.has(w.wrapper)),
        );
        findings.push(
          findingOf(
            rls042,
            policyObject(table.rel, policy),
            `policy ${policy.name} on ${ctx.label(table.rel)} compares ${how}: no index on ${column} can serve it`,
            alter
              ? sqlFix([alter])
              : manualFix(
                  `compare the bare column ${column} in policy ${policy.name} on ${ctx.label(table.rel)}, and cast the other side to the column's type (${type}) instead`,
                ),
          ),
        );
      }
    }
    return findings;
  },
});
