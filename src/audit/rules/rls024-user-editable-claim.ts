import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { manualFix } from '../fix.js';
import { clauses, policiesInScope, policyObject } from './policy-rule-helpers.js';

export const rls024 = defineRule({
  code: 'RLS024',
  name: 'user-editable-claim',
  severity: 'error',
  title: 'Policy reads a JWT claim the user can edit',
  description:
    "A policy reads a path under `user_metadata` of the JWT claims (auth.jwt() or request.jwt.claims). In Supabase the user writes user_metadata themselves (supabase.auth.updateUser({ data })), and the next token carries it: a user who sets `org_id` there reads and writes that tenant's rows.",
  remediation:
    'Read the tenant from a claim only the server sets: `app_metadata` (tenant.claim: app_metadata.org_id), a custom claim of the auth hook, or a membership table; set it server-side.',
  check(ctx) {
    const findings: Finding[] = [];
    for (const { rel, policy } of policiesInScope(ctx)) {
      const which = clauses(ctx, policy)
        .filter((c) => c.facts.readsUserMetadata)
        .map((c) => c.clause);
      if (which.length === 0) continue;
      findings.push(
        findingOf(
          rls024,
          policyObject(rel, policy),
          `policy ${policy.name} on ${ctx.label(rel)} reads user_metadata of the JWT claims in ${which.join(' and ')}: the user can write it and choose the rows the policy admits`,
          manualFix(
            'read the tenant from a claim only the server sets (app_metadata, or a custom claim of the auth hook) and put it into that claim server-side; with a policy file: tenant: { claim: app_metadata.org_id }, then rlsctl apply',
          ),
        ),
      );
    }
    return findings;
  },
});
