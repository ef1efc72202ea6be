import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { manualFix, repairPolicyStatement, sqlFix } from '../fix.js';
import { anyClause, clauses, policiesInScope, policyObject } from './policy-rule-helpers.js';

export const rls022 = defineRule({
  code: 'RLS022',
  name: 'fail-open-context',
  severity: 'error',
  title: 'Policy admits every row when no tenant is set',
  description:
    "A policy has an OR branch that holds when the tenant setting is unset or empty (current_setting(...) IS NULL, = '', COALESCE(..., '') = ''). Meant for admin tools or jobs, it means that any connection that forgot to set the tenant, or whose transaction-local tenant has ended, sees every tenant's rows: the exact failure row level security is there to prevent.",
  remediation:
    'Remove the branch. Give tools that must see every tenant a separate role (declared as a bypass role, or with its own policy TO that role), never a missing tenant.',
  check(ctx) {
    const findings: Finding[] = [];
    for (const { rel, policy } of policiesInScope(ctx)) {
      if (!anyClause(ctx, policy, 'failOpenBranches')) continue;
      const hits = clauses(ctx, policy).filter((c) => c.facts.failOpenBranches.length > 0);
      if (hits.length === 0) continue;
      const what = hits.map((c) => `${c.clause} admits every row when ${c.facts.failOpenBranches[0]}`).join('; ');
      // The policy's own expression without its fail-open branches: what it admits with a tenant set stays.
      const alter = repairPolicyStatement(ctx, rel, policy, (f) => f.failOpenBranches.length === 0);
      findings.push(
        findingOf(
          rls022,
          policyObject(rel, policy),
          `policy ${policy.name} on ${ctx.label(rel)} fails open: ${what}`,
          alter
            ? sqlFix([alter], {
                note: 'tools that must see every tenant get a role of their own (a declared bypass role, or a policy TO that role), never a missing tenant',
              })
            : manualFix(`remove the branch of policy ${policy.name} on ${ctx.label(rel)} that holds when no tenant is set`),
        ),
      );
    }
    return findings;
  },
});
