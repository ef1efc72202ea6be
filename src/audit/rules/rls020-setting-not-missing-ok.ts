import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { manualFix, repairPolicyStatement, sqlFix } from '../fix.js';
import { anyClause, clauses, policiesInScope, policyObject } from './policy-rule-helpers.js';

export const rls020 = defineRule({
  code: 'RLS020',
  name: 'setting-not-missing-ok',
  severity: 'error',
  title: 'current_setting() without missing_ok',
  description:
    'A policy reads a custom setting with the one-argument form current_setting(name). In a session that never set it, PostgreSQL raises "unrecognized configuration parameter" instead of returning NULL, so every query of the table fails until a tenant is set: a background job, a migration or a health check becomes an outage, and the usual "fix" of setting a dummy tenant is worse.',
  remediation:
    "Pass missing_ok: current_setting('app.tenant_id', true), which returns NULL when the setting does not exist; combine it with NULLIF(..., '') and a scalar sub-select, as rlsctl generates it.",
  check(ctx) {
    const findings: Finding[] = [];
    for (const { rel, policy } of policiesInScope(ctx)) {
      if (!anyClause(ctx, policy, 'settingsWithoutMissingOk')) continue;
      // Built-in settings always exist: only custom (dotted) names, or names computed at run time, can be missing.
      const custom = [...new Set(clauses(ctx, policy).flatMap((c) => c.facts.settingsWithoutMissingOk))].filter((n) => n.includes('.') || n.startsWith('('));
      if (custom.length === 0) continue;
      const alter = repairPolicyStatement(ctx, rel, policy, (f) => f.settingsWithoutMissingOk.length === 0);
      findings.push(
        findingOf(
          rls020,
          policyObject(rel, policy),
          `policy ${policy.name} on ${ctx.label(rel)} reads ${custom.join(', ')} with current_setting() and no missing_ok: queries raise an error in a session that never set it`,
          alter
            ? sqlFix([alter])
            : manualFix(`pass missing_ok (current_setting(name, true)) at each current_setting call of policy ${policy.name} on ${ctx.label(rel)}`),
        ),
      );
    }
    return findings;
  },
});
