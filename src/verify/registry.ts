import type { VerifyRule, VerifyRuleCode } from './rule.js';
import { ver001 } from './rules/ver001-cross-tenant-read.js';
import { ver002 } from './rules/ver002-unset-context-visible.js';
import { ver003 } from './rules/ver003-unset-context-error.js';
import { ver004 } from './rules/ver004-cross-tenant-insert.js';
import { ver005 } from './rules/ver005-cross-tenant-update.js';
import { ver006 } from './rules/ver006-cross-tenant-delete.js';
import { ver010 } from './rules/ver010-probe-skipped.js';

export type { VerifyRule, VerifyRuleCode } from './rule.js';

/**
 * The rules of `rlsctl verify`, in code order. VER001–VER006 are the spec's
 * (cli.md, "verify rules"); VER010 is verify's own info finding for a probe
 * that could not be run or could not decide, so that nothing is skipped
 * silently. Codes are never reused.
 */
export const VERIFY_RULES: readonly VerifyRule[] = [ver001, ver002, ver003, ver004, ver005, ver006, ver010];

/** The rules whose findings are leaks: a row crossed the tenant boundary. */
export const LEAK_RULES: ReadonlySet<string> = new Set(VERIFY_RULES.filter((r) => r.leak).map((r) => r.code));

export function verifyRule(code: VerifyRuleCode): VerifyRule {
  const rule = VERIFY_RULES.find((r) => r.code === code);
  if (!rule) throw new Error(`unknown verify rule ${code}`);
  return rule;
}
