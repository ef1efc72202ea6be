import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { manualFix, repairPolicyStatement, sqlFix } from '../fix.js';
import { anyClause, clauses, policiesInScope, policyObject } from './policy-rule-helpers.js';

export const rls041 = defineRule({
  code: 'RLS041',
  name: 'per-row-setting-call',
  severity: 'warning',
  title: 'Setting lookup or function call not wrapped in a scalar sub-select',
  description:
    'A policy calls current_setting() or another function whose arguments do not depend on the row, outside a scalar sub-select. PostgreSQL then evaluates the call for every row it checks; wrapped as (SELECT ...), the planner runs it once per statement as an InitPlan and can use its value as an index condition.',
  remediation: "Wrap the call in a scalar sub-select: (SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid), (SELECT auth.uid()).",
  check(ctx) {
    const findings: Finding[] = [];
    // Citus refuses sub-queries in the policies of distributed tables: with
    // `engine: citus` the bare STABLE lookup is the form to use (docs/scale-out.md).
    if (ctx.facts.engine === 'citus') return findings;
    for (const { rel, policy } of policiesInScope(ctx)) {
      if (!anyClause(ctx, policy, 'perRowCalls')) continue;
      const calls = [...new Set(clauses(ctx, policy).flatMap((c) => c.facts.perRowCalls))];
      if (calls.length === 0) continue;
      // Each call wrapped where it stands, in the policy's own expression (schema-qualified names kept).
      const alter = repairPolicyStatement(ctx, rel, policy, (f) => f.perRowCalls.length === 0);
      findings.push(
        findingOf(
          rls041,
          policyObject(rel, policy),
          `policy ${policy.name} on ${ctx.label(rel)} calls ${calls.map((c) => `${c}()`).join(', ')} outside a scalar sub-select: evaluated once per row instead of once per statement`,
          alter
            ? sqlFix([alter])
            : manualFix(
                `wrap each of ${calls.map((c) => `${c}()`).join(', ')} in policy ${policy.name} on ${ctx.label(rel)} in a scalar sub-select, (SELECT call)`,
              ),
        ),
      );
    }
    return findings;
  },
});
