import { qualify, quoteIdent } from '../compile/quote.js';
import type { RuleMeta } from '../report/finding.js';
import { idealPredicate, isCorrelated, policyRewrite, tableLabel } from './policy-fix.js';
import { relationKey, type ExplainCatalog, type TenantRelation } from './read-explain-catalog.js';
import { bypassHelp, policyNamesRoleOf, readingView, rowSecurityAt, rowSecurityOf } from './scan-security.js';
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
  // Whose row security the scan meets, and whether it applies at all: src/rls/row-security-subjects.ts decides.
  const at = rowSecurityOf(ctx.catalog, ctx.who, relation, scan, ctx.named);
  const security = at.security;
  const on = security ?? relation.table;
  const { verdict, policies } = rowSecurityAt(at, ctx.who, ctx.kind);
  if (predicate.shape === 'absent' && !predicate.unparsed) {
    const reader = readingView(at.views, ctx.catalog.major);
    const why = !verdict || verdict.applies ? '' : `: ${verdict.reason.message}`;
    const through = reader && verdict?.bypass ? `, so the policies of ${on.schema}.${on.name} do not apply (rlsctl audit RLS050)` : '';
    const message = `${how}, and with no tenant filter on it at all: row level security does not filter ${where} for ${role}${why}${through}`;
    const onSql = qualify(on.schema, on.name);
    const help = verdict?.bypass
      ? bypassHelp(verdict, onSql, at.views, ctx.catalog.major)
      : verdict?.reason.code === 'rls-disabled' && security!.policies.some((p) => policyNamesRoleOf(p, ctx.who))
        ? `-- ${quoteIdent(role)} has policies on ${onSql} but they do not apply: ${verdict.reason.message}\nALTER TABLE ${onSql} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;`
        : policies.length === 0
          ? `ALTER TABLE ${onSql} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;\nCREATE POLICY rlsctl_tenant_guard ON ${onSql} AS RESTRICTIVE FOR ALL TO ${quoteIdent(role)} USING (${idealPredicate(facts, column)}) WITH CHECK (${idealPredicate(facts, column)});\n-- see rlsctl audit (RLS001, RLS010) for why the policies do not apply${facts.source === 'policy-file' ? '; rlsctl apply writes them from the policy file' : ''}`
          : `-- ${quoteIdent(role)} has policies on ${onSql} but they do not apply: is row level security enabled and forced, and does ${quoteIdent(role)} bypass it? See rlsctl audit (RLS001, RLS002, RLS010).\n${suggestion.sql}`;
    ctx.report(rule, relation, scan, message, help, undefined, conds);
    return;
  }
  if (predicate.shape !== 'sargable' && predicate.shape !== 'absent') {
    const offending = policies.filter((p) => {
      const shape = analyzeTenantPredicate(p.using ?? undefined, relation.lead, on.name).shape;
      return (shape !== 'sargable' && shape !== 'absent') || (predicate.shape === 'subplan' && isCorrelated(p, on));
    });
    const message = `${how}: ${SHAPE_REASON[predicate.shape](predicate.culprit)}`;
    const help = offending.length > 0 ? policyRewrite(facts, on, offending, column) : `-- rewrite the tenant predicate as: ${idealPredicate(facts, column)}`;
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
