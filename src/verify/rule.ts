import type { TenantFacts } from '../facts/resolve-facts.js';
import type { RuleMeta } from '../report/finding.js';
import type { Target } from './target.js';
import type { VerifyCatalog } from './verify-catalog.js';

/**
 * A verify rule: the static half (code, name, severity, title, description,
 * remediation: what SARIF and docs/rules/ show) beside how its finding reads:
 * `message` turns what the probes collected into the per-object message, and
 * `help` is the fix for that object. The rule's file also holds the probe
 * that tries to break it, where one probe decides one rule (VER001, VER004 to
 * VER006; the no-tenant probe of prober.ts decides VER002 and VER003 at once);
 * the finding book (finding-book.ts) collects what the probes find.
 * Codes are stable and never reused.
 */

export type VerifyRuleCode = 'VER001' | 'VER002' | 'VER003' | 'VER004' | 'VER005' | 'VER006' | 'VER010';

/** What the probes collected for one finding (one rule, object and role), in the finding book. */
export interface Evidence {
  role?: string;
  /** One detail per way the rule was broken (update vs move), in order. */
  details: Map<string, string>;
  /** VER002 / VER003: the no-tenant states it happened in. */
  states: string[];
  statement?: string;
  /** VER003: the error in each state. */
  errors: Map<string, string>;
}

/** What a rule's help is made from: the object, the role, and the tenant setting as the policies should read it. */
export interface HelpInput {
  target: Target;
  role?: string;
  setting: string;
  facts: TenantFacts;
  catalog: VerifyCatalog;
}

export interface VerifyRule extends RuleMeta {
  code: VerifyRuleCode;
  /** A row crossed the tenant boundary (VerifyResult.leaks counts these findings). */
  leak: boolean;
  /** The finding's message; `label` names the object (target.ts, labelOf). */
  message(evidence: Evidence, label: string): string;
  /** The fix for this object, or undefined when there is none to give. */
  help(input: HelpInput): string | undefined;
}

export function defineVerifyRule(rule: VerifyRule): VerifyRule {
  return rule;
}

/** The message of most rules: each way the rule was broken, with its statement. */
export function detailsMessage(evidence: Evidence): string {
  return [...evidence.details.values()].join('; ');
}
