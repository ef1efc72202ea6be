import type { PolicyInvalid } from '../errors.js';
import type { Finding, RuleMeta } from '../report/finding.js';

/**
 * The rule of the policy-file family (docs/rules/POL001.md): every problem of a policy file that
 * validate, and every command that reads the file, reports. Its registry is this list.
 */
export const POLICY_RULE: RuleMeta = {
  code: 'POL001',
  name: 'invalid-policy-file',
  severity: 'error',
  title: 'The policy file is invalid',
  description: 'The policy file does not follow format version 1: a key, a value, an identifier or an expression is wrong.',
  remediation: 'Fix the file at the location given; the message says what is expected there.',
};

/** Policy-file problems as findings, so validate reports like every other checking command. */
export function policyFindings(error: PolicyInvalid): Finding[] {
  return error.diagnostics.map((d) => ({
    rule: POLICY_RULE.code,
    name: POLICY_RULE.name,
    severity: 'error' as const,
    message: d.message,
    object: { kind: 'policy_file' as const, name: d.location.file },
    help: d.hint,
    fingerprint: `${POLICY_RULE.code}:${d.location.file}:${d.location.line}:${d.location.column}`,
    location: d.location,
  }));
}

/** Every rule of the policy-file family, in code order. */
export const POLICY_RULES: readonly RuleMeta[] = [POLICY_RULE];
