import { qualify, quoteIdent } from '../compile/quote.js';
import type { RuleMeta } from '../report/finding.js';
import { applicablePolicies, idealPredicate, isCorrelated, policyRewrite, tableLabel } from './policy-fix.js';
import { relationKey, type ExplainCatalog, type TenantRelation } from './read-explain-catalog.js';
import { viewBypassReason, type ViewFact } from './read-view-facts.js';
import type { ExplainRuleContext } from './rules/rule.js';
import { hasLeadingIndex, queryColumnUses, suggestIndex } from './suggest-index.js';
import { analyzeTenantPredicate, type PredicateAnalysis } from './tenant-predicate.js';
import { bitmapBounded, collectScans, comparedColumns, condBoundsColumns, type ScanNode } from './walk-plan.js';

/**
 * How a tenant table is read in the plan with sequential scans disabled, the
 * judgement EXP001 (read in full) and EXP002 (an index, but the tenant
 * predicate only a filter) share: which scans are not bounded by the tenant
 * column, and what the finding says and fixes about one.
 */

/** True when the scan is an index seek whose index condition binds the lead columns with `=`. */
export function boundedByLead(scan: ScanNode, relation: TenantRelation): boolean {
  const bounds = (cond: string) => condBoundsColumns(cond, scan.alias, relation.lead);
  return scan.access === 'index' && (scan.bitmap ? bitmapBounded(scan.bitmap, bounds) : scan.indexConds.some(bounds));
}

/** `(alias.col)::type` as EXPLAIN prints an implicit cast of a column (varchar compared as text): the column itself. */
function stripColumnCasts(cond: string): string {
  const ident = '(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)';
  return cond.replace(new RegExp(`\\((${ident}\\.${ident})\\)::(?:"[^"]+"|[a-z_][a-z0-9_ ]*)(?:\\(\\d+(?:,\\d+)?\\))?(?:\\[\\])?`, 'g'), '$1');
}

/** An index scan that reads at most one row: every column of a unique index bound by `=` (through an implicit cast too). */
export function isUniqueLookup(scan: ScanNode, catalog: ExplainCatalog, relation: TenantRelation): boolean {
  if (scan.indexNames.length !== 1 || scan.indexConds.length !== 1) return false;
  const index = catalog.indexes.get(relationKey(scan.schema, scan.indexNames[0]));
  if (!index || !index.unique || index.partial || index.columns.some((c) => c === null)) return false;
  // `= ANY (array)` compares with many values: not a single-row lookup.
  const bound = comparedColumns(stripColumnCasts(scan.indexConds[0]).replace(/=\s*ANY\b/g, '@ANY'), scan.alias, relation.columns)
    .filter((c) => c.op === 'eq')
    .map((c) => c.column);
  return index.columns.every((c) => bound.includes(c!));
}

export interface UnboundedScan {
  scan: ScanNode;
  relation: TenantRelation;
  predicate: PredicateAnalysis;
}

/**
 * The scans of tenant tables in the plan with sequential scans disabled
 * that are not bounded by the tenant column. Not counted: a unique-key
 * lookup (at most one row), and a scan whose tenant predicate has the
 * indexable shape on a relation where the probe shows an index serving it —
 * the planner chose another path on today's statistics, which decide
 * nothing about the schema (docs/explain.md, "The verdict does not depend on statistics").
 */
export function unboundedScans(ctx: Pick<ExplainRuleContext, 'catalog' | 'plans'> & { served?: ExplainRuleContext['served'] }): UnboundedScan[] {
  let all = judged.get(ctx.plans);
  if (!all) {
    all = [];
    for (const scan of collectScans(ctx.plans.noSeqScan)) {
      const relation = ctx.catalog.relations.get(relationKey(scan.schema, scan.relation));
      if (!relation || boundedByLead(scan, relation)) continue;
      if (scan.access === 'index' && isUniqueLookup(scan, ctx.catalog, relation)) continue;
      all.push({ scan, relation, predicate: analyzeTenantPredicate(scan.filter, relation.lead, scan.alias, { planText: true }) });
    }
    judged.set(ctx.plans, all);
  }
  return all.filter(({ scan, relation, predicate }) => !(!relation.table.via && predicate.shape === 'sargable' && ctx.served?.(scan)));
}

/** The unbounded scans of each planned query, judged once (the probe, EXP001 and EXP002 each ask). */
const judged = new WeakMap<object, UnboundedScan[]>();

const SHAPE_REASON: Record<Exclude<PredicateAnalysis['shape'], 'sargable' | 'absent'>, (culprit?: string) => string> = {
  or: () => 'its tenant comparison sits under an OR, so no index condition can come of it (and an OR beside the tenant comparison is how a policy fails open)',
  'per-row-function': (culprit) =>
    `its tenant filter calls ${culprit ?? 'a function'} for every row it reads (a volatile function, or one not wrapped in a scalar sub-select, is not evaluated once and cannot be an index condition)`,
  subplan: () => 'its tenant value comes from a SubPlan that runs for every row it reads',
  'wrapped-column': () => 'its tenant column is cast or passed to a function in the filter, so no index on the column can serve it',
};

/** The views the query names (by name, and by schema when it gives one). */
export function viewsOfQuery(stmt: unknown, views: Map<string, ViewFact>): ViewFact[] {
  const found = new Map<string, ViewFact>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (!node || typeof node !== 'object') return;
    const rv = (node as { RangeVar?: { schemaname?: string; relname?: string } }).RangeVar;
    if (rv?.relname)
      for (const v of views.values())
        if (v.name === rv.relname && (rv.schemaname === undefined || v.schema === rv.schemaname)) found.set(`${v.schema}.${v.name}`, v);
    for (const v of Object.values(node)) visit(v);
  };
  visit(stmt);
  return [...found.values()];
}

/** Why the relation's policies do not apply to this query: it reads the table through a view whose owner bypasses them. */
export function bypassingView(ctx: Pick<ExplainRuleContext, 'stmt' | 'views'>, relation: TenantRelation): { view: ViewFact; reason: string } | undefined {
  for (const view of viewsOfQuery(ctx.stmt, ctx.views)) {
    const reason = viewBypassReason(ctx.views, view, relation.table);
    if (reason) return { view, reason };
  }
  return undefined;
}

/** Report one unbounded scan under `rule`: the message says why, the help what to change. */
export function reportUnbounded(ctx: ExplainRuleContext, rule: RuleMeta, { scan, relation, predicate }: UnboundedScan): void {
  const { facts, role } = ctx;
  const where = tableLabel(scan, relation);
  const how =
    scan.access === 'seq'
      ? `${scan.nodeType} on ${where}, even with sequential scans disabled`
      : scan.access === 'full-index'
        ? `${scan.nodeType} on ${where} reads the whole index ${scan.indexNames.join(', ')} (no index condition), even with sequential scans disabled`
        : `${scan.nodeType} on ${where} using ${scan.indexNames.join(', ')}: the tenant predicate is not an index condition`;
  const conds = [scan.indexConds.length > 0 ? `Index Cond: ${scan.indexConds.join(' / ')}` : '', scan.filter ? `Filter: ${scan.filter}` : '']
    .filter(Boolean)
    .join('; ');
  const uses = queryColumnUses(ctx.stmt, relation.table.schema, new Set([relation.table.name, scan.relation]), relation.columns);
  const suggestion = suggestIndex(relation, uses, scan.filter, scan.alias);
  const target = qualify(relation.table.schema, relation.table.name);
  const leading = hasLeadingIndex(relation);

  if (relation.table.via) {
    const via = relation.table.via;
    const message = `${how}; the tenant of ${relation.table.schema}.${relation.table.name} comes via ${via.parentSchema}.${via.parentName}, and the scan is not bounded by ${via.columns.join(', ')}`;
    const parent = qualify(via.parentSchema, via.parentName);
    const help = leading
      ? [
          `-- ${target} has no tenant column: a read of all of the tenant's rows cannot be an index seek on it.`,
          `-- Read it through ${parent}: the tenant's rows of ${parent} are an index seek, and each of theirs one on ${quoteIdent(leading.name)}, e.g.`,
          `--   SELECT ... FROM ${parent} p JOIN ${target} c ON ${via.columns.map((c, i) => `c.${quoteIdent(c)} = p.${quoteIdent(via.references[i])}`).join(' AND ')}`,
          `-- or give it a tenant column of its own and declare it mode tenant.`,
        ].join('\n')
      : suggestion.sql;
    ctx.report(rule, relation, scan, message, help, leading ? undefined : suggestion, conds);
    return;
  }

  const column = relation.lead[0];
  const policies = applicablePolicies(relation, role, ctx.kind);
  if (predicate.shape === 'absent' && !predicate.unparsed) {
    const bypass = bypassingView(ctx, relation);
    if (bypass) {
      const view = qualify(bypass.view.schema, bypass.view.name);
      const message = `${how}, and with no tenant filter on it at all: ${bypass.reason}, so the policies of ${relation.table.schema}.${relation.table.name} do not apply (rlsctl audit RLS050)`;
      const help =
        ctx.catalog.major >= 15
          ? `ALTER VIEW ${view} SET (security_invoker = true);\n-- the view then reads ${target} as its reader, whose policies apply; see rlsctl audit (RLS050)`
          : `-- PostgreSQL ${ctx.catalog.major} has no security_invoker: give ${view} to an owner that is subject to the policies of ${target} (no BYPASSRLS, not its owner unless the table forces row level security), e.g.\nALTER VIEW ${view} OWNER TO ${quoteIdent(role)};\n-- see rlsctl audit (RLS050)`;
      ctx.report(rule, relation, scan, message, help, undefined, conds);
      return;
    }
    const message = `${how}, and with no tenant filter on it at all: row level security does not filter ${where} for ${role}`;
    const help =
      policies.length === 0
        ? `ALTER TABLE ${target} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;\nCREATE POLICY rlsctl_tenant_guard ON ${target} AS RESTRICTIVE FOR ALL TO ${quoteIdent(role)} USING (${idealPredicate(facts, column)}) WITH CHECK (${idealPredicate(facts, column)});\n-- see rlsctl audit (RLS001, RLS010) for why the policies do not apply${facts.source === 'policy-file' ? '; rlsctl apply writes them from the policy file' : ''}`
        : `-- ${quoteIdent(role)} has policies on ${target} but they do not apply: is row level security enabled and forced, and does ${quoteIdent(role)} bypass it? See rlsctl audit (RLS001, RLS002, RLS010).\n${suggestion.sql}`;
    ctx.report(rule, relation, scan, message, help, undefined, conds);
    return;
  }
  if (predicate.shape !== 'sargable' && predicate.shape !== 'absent') {
    const offending = policies.filter((p) => {
      const shape = analyzeTenantPredicate(p.using ?? undefined, relation.lead, relation.table.name).shape;
      return (shape !== 'sargable' && shape !== 'absent') || (predicate.shape === 'subplan' && isCorrelated(p, relation));
    });
    const message = `${how}: ${SHAPE_REASON[predicate.shape](predicate.culprit)}`;
    const help =
      offending.length > 0 ? policyRewrite(facts, relation, offending, column) : `-- rewrite the tenant predicate as: ${idealPredicate(facts, column)}`;
    ctx.report(rule, relation, scan, message, help, undefined, conds);
    return;
  }
  // The tenant predicate could be an index condition: an index is what is missing.
  const lead = relation.lead.join(', ');
  const message = suggestion.existing
    ? `${how}; an index with the suggested columns exists (${suggestion.existing.name}) but the planner does not use it for this query`
    : leading
      ? `${how}: ${leading.name} leads with ${lead}, but the planner cannot use it for this tenant predicate`
      : `${how}: no index leads with ${lead} and serves this query`;
  const help = suggestion.existing
    ? `-- check that the query compares ${suggestion.columns.map(quoteIdent).join(', ')} with values of the columns' own types, so that the index applies\n-- suggested: ${suggestion.sql}`
    : `${suggestion.sql}${facts.source === 'policy-file' ? `\n-- or declare it in the policy file: ${relation.table.schema}.${relation.table.name} indexes: [${suggestion.columns.slice(relation.lead.length).join(', ')}]` : ''}`;
  ctx.report(rule, relation, scan, message, help, suggestion.existing ? undefined : suggestion, conds);
}
