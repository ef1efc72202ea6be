import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { manualFix, repairPolicyStatement, sqlFix } from '../fix.js';
import { anyClause, clauses, policiesInScope, policyObject } from './policy-rule-helpers.js';

export const rls021 = defineRule({
  code: 'RLS021',
  name: 'empty-setting-cast',
  severity: 'error',
  title: "Setting cast without NULLIF(..., '')",
  description:
    "A policy casts the text of a setting to another type (uuid, bigint...) with no NULLIF(..., '') in between. After a transaction that set the tenant with SET LOCAL or set_config(..., true) ends, the setting still exists in the session and reads as an empty string, and ''::uuid raises an error: the next query on that pooled connection fails instead of returning no rows.",
  remediation:
    "Wrap the lookup: (SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid), so an unset or ended tenant is NULL and matches no row.",
  check(ctx) {
    const findings: Finding[] = [];
    for (const { rel, policy } of policiesInScope(ctx)) {
      if (!anyClause(ctx, policy, 'castsWithoutNullif')) continue;
      const casts = clauses(ctx, policy).flatMap((c) => c.facts.castsWithoutNullif);
      if (casts.length === 0) continue;
      const what = [...new Set(casts.map((c) => `${c.setting ?? 'a setting'}::${c.type}`))].join(', ');
      // The policy's own expression, with NULLIF(..., '') between each setting and its cast: its tenant source kept.
      const alter = repairPolicyStatement(ctx, rel, policy, (f) => f.castsWithoutNullif.length === 0);
      findings.push(
        findingOf(
          rls021,
          policyObject(rel, policy),
          `policy ${policy.name} on ${ctx.label(rel)} casts ${what} without NULLIF(..., ''): queries fail once a transaction-local tenant has ended`,
          alter
            ? sqlFix([alter])
            : manualFix(
                `put NULLIF(..., '') between each setting and its cast in policy ${policy.name} on ${ctx.label(rel)}: NULLIF(current_setting(name, true), '')::type`,
              ),
        ),
      );
    }
    return findings;
  },
});
