import type { Finding, FindingObject } from '../../report/finding.js';
import { GUARD_SQL } from '../../compile/partition-trigger.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { manualFix, sqlFix } from '../fix.js';

export const rls006 = defineRule({
  code: 'RLS006',
  name: 'policy-drift',
  severity: 'warning',
  title: 'The database differs from what the policy file compiles to',
  description:
    'The live RLS flags, policies or tenant indexes differ from what the policy file compiles to, as computed by the planner that `rlsctl plan` and `rlsctl apply` use: each statement apply would run is a difference. Someone changed the database by hand, or the file changed and was not applied: what was reviewed is not what runs.',
  remediation:
    'Run `rlsctl plan` to see the statements, then `rlsctl apply` to bring the database to the file (or change the file to match, if the database is right).',
  needsPolicyFile: true,
  check(ctx) {
    const findings: Finding[] = [];
    const plan = ctx.plan;
    if (!plan) return findings;
    for (const s of plan.statements) {
      // The partition trigger's guard is how the plan runs, not a difference.
      if (s.sql === GUARD_SQL) continue;
      const t = s.target;
      const object: FindingObject =
        t.kind === 'table'
          ? ctx.relationsByKey.get(`${t.schema}.${t.name}`)
            ? ctx.objectOf(ctx.relationsByKey.get(`${t.schema}.${t.name}`)!)
            : { kind: 'table', schema: t.schema, name: t.name }
          : t.kind === 'function'
            ? { kind: 'function', schema: t.schema, name: t.name }
            : { kind: t.kind, schema: t.schema, table: t.table, name: t.name };
      findings.push(findingOf(rls006, object, `differs from the policy file: apply would ${s.summary}`, sqlFix([s.sql]), slug(s.summary)));
    }
    // Differences the plan does not repair without --prune (policies the file does not declare).
    for (const d of plan.drift) {
      findings.push(
        findingOf(
          rls006,
          { kind: 'policy', schema: d.schema, table: d.table, name: d.policy },
          d.message,
          manualFix('declare the policy in the policy file, or drop it with rlsctl apply --prune'),
          'undeclared',
        ),
      );
    }
    return findings;
  },
});

/** A stable, short detail for the fingerprint: what the statement does, without the object (already in it). */
function slug(summary: string): string {
  return summary
    .split(/[:(]/)[0]
    .toLowerCase()
    .trim()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}
