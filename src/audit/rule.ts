import type { Finding, RuleMeta } from '../report/finding.js';
import type { AuditContext } from './audit-context.js';

/**
 * An audit rule: the static half (code, name, severity, title, description,
 * remediation: what SARIF and the docs show) apart from `check`, which turns
 * the indexed catalog into findings whose message names the object.
 * Codes are stable and never reused (test/rules/registry.test.ts).
 */
export interface AuditRule extends RuleMeta {
  /** Rules that only make sense with a policy file (RLS005, RLS006, RLS007). */
  needsPolicyFile?: boolean;
  check(ctx: AuditContext): Finding[];
}

export function defineRule(rule: AuditRule): AuditRule {
  return rule;
}
