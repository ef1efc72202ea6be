import type { RuleMeta } from '../../report/finding.js';
import type { TenantFacts } from '../../facts/resolve-facts.js';
import type { ExplainQuery } from '../explain-types.js';
import type { PlannableKind } from '../inspect-query.js';
import type { PlannedQuery } from '../plan-query.js';
import type { ExplainCatalog, TenantRelation } from '../read-explain-catalog.js';
import type { PlanRole } from '../scan-security.js';
import type { IndexSuggestion } from '../suggest-index.js';
import type { ScanNode } from '../walk-plan.js';

/**
 * An explain rule (docs/rules/EXP00N.md): its metadata and, for the rules
 * judged on a plan, the check that reports through `ctx.report`. Each rule
 * has a file of its own under src/explain/rules/ and an entry in registry.ts.
 */
export interface ExplainRule extends RuleMeta {
  check?(ctx: ExplainRuleContext): void;
}

/** What a rule sees of one planned query. */
export interface ExplainRuleContext {
  catalog: ExplainCatalog;
  facts: TenantFacts;
  query: ExplainQuery;
  kind: PlannableKind;
  /** The query's parse tree (libpg-query), after the sqlc parameters were translated. */
  stmt: unknown;
  plans: PlannedQuery;
  /** The role whose policies are matched (the name findings give it). */
  role: string;
  /** The role as the row-security model sees it, and the views of the database (scan-security.ts). */
  who: PlanRole;
  /** Whether the statement names a relation (`schema.name`; a bare name matches any schema). */
  named: (qualified: string) => boolean;
  /**
   * Whether an index serves the tenant predicate of the scanned relation,
   * as the planner showed on the probe (run-explain.ts, "probe"); undefined
   * when the probe could not be planned.
   */
  served(scan: ScanNode): boolean | undefined;
  report(rule: RuleMeta, relation: TenantRelation, scan: ScanNode, headline: string, help: string, suggestion?: IndexSuggestion, conds?: string): void;
}

export function defineExplainRule(rule: ExplainRule): ExplainRule {
  return rule;
}
