import { qualify, quoteIdent } from '../../compile/quote.js';
import { relationKey } from '../read-explain-catalog.js';
import { idealPredicate, isCorrelated, policyReads, policyRewrite, readsRelation, tableLabel } from '../policy-fix.js';
import { readByNamedViews, rowSecurityAt, rowSecurityOf } from '../scan-security.js';
import { collectScans, type PlanNode } from '../walk-plan.js';
import { defineExplainRule } from './rule.js';

export const exp003 = defineExplainRule({
  code: 'EXP003',
  name: 'per-row-policy-subplan',
  severity: 'warning',
  title: 'A policy sub-query runs once per row',
  description:
    'A sub-query of a row-level security policy is planned as a SubPlan that runs for every row the scan reads, instead of an InitPlan that runs once per statement (or a hashed SubPlan that runs once and is probed per row).',
  remediation:
    'Make the policy look up the tenant once: compare the tenant column with an uncorrelated scalar sub-select, `tenant_id = (SELECT ...)`, and keep references to the row being checked out of the sub-query.',
  /**
   * Per-row SubPlans in either plan, each attributed to where it comes from:
   * the query's own sub-queries, a policy of the scanned table (a sub-query
   * of it reads what the SubPlan reads), or a view's definition (no policy
   * names what it reads, a view of the query does). Only a policy's is
   * reported; where nothing names what it reads (a policy reading it through
   * a function), the policies with sub-queries are named as before. Where
   * row security does not apply to the scan (src/rls/row-security-subjects.ts:
   * the role, or the owner of a view it is read through, bypasses it, or it
   * is off), no policy is blamed at all.
   */
  check(ctx) {
    const inQuerySubLinks = subLinkRelations(ctx.stmt);
    const viewReads = readByNamedViews(ctx.who.views, ctx.named);
    for (const plan of [ctx.plans.noSeqScan, ctx.plans.asIs]) {
      for (const scan of collectScans(plan)) {
        const relation = ctx.catalog.relations.get(relationKey(scan.schema, scan.relation));
        if (!relation) continue;
        for (const sp of scan.subPlans) {
          if (sp.hashed) continue;
          const inner = relationsIn(sp.node);
          // A SubPlan that only reads relations the query's own sub-queries name is the query's, not a policy's.
          if (inQuerySubLinks && (inner.length === 0 || inner.every(inQuerySubLinks))) continue;
          // The policies that apply to the scan, as the row-security model says: none where it does not apply.
          const at = rowSecurityOf(ctx.catalog, ctx.who, relation, scan, ctx.named);
          const { verdict, policies: applying } = rowSecurityAt(at, ctx.who, ctx.kind);
          if (verdict && !verdict.applies) continue;
          const on = at.security ?? relation.table;
          const withSubqueries = applying.filter((p) => /\bSELECT\b/i.test(p.using ?? ''));
          let policies;
          const reading = withSubqueries.filter((p) => inner.some((q) => readsRelation(policyReads(p), q)));
          if (reading.length > 0) {
            // The policies whose sub-queries read a relation the SubPlan reads.
            policies = reading;
          } else if (inner.length > 0 && inner.some(viewReads)) {
            // No policy names what it reads, and a view of the query does: the view's own sub-query.
            continue;
          } else {
            // Prefer the policies whose sub-query refers to the row being checked: those are the per-row ones.
            const correlated = withSubqueries.filter((p) => isCorrelated(p, on));
            policies = correlated.length > 0 ? correlated : withSubqueries;
          }
          const where = tableLabel(scan, relation);
          const names = policies.map((p) => p.name).join(', ');
          const message = `${sp.name} (${sp.node['Node Type']}${inner.length > 0 ? ` on ${inner.join(', ')}` : ''}) runs for every row the ${scan.nodeType} on ${where} reads${names ? `: a sub-query of the polic${policies.length === 1 ? 'y' : 'ies'} ${names}` : ''}, instead of once as an InitPlan`;
          const via = relation.table.via;
          const help = via
            ? `-- the tenant of ${qualify(relation.table.schema, relation.table.name)} comes via ${qualify(via.parentSchema, via.parentName)}: each row's parent is looked up per row. Filter by ${via.columns.map(quoteIdent).join(', ')} so that few rows are read, or give the table a tenant column of its own (mode tenant) so that the check is one comparison`
            : policies.length > 0
              ? policyRewrite(ctx.facts, on, policies, relation.lead[0])
              : `-- compare ${quoteIdent(relation.lead[0])} with an uncorrelated scalar sub-select: ${idealPredicate(ctx.facts, relation.lead[0])}`;
          ctx.report(exp003, relation, scan, message, help);
        }
      }
    }
  },
});

/** Relations scanned in a plan subtree, `schema.name`. */
function relationsIn(node: PlanNode): string[] {
  const names = new Set<string>();
  const visit = (n: PlanNode) => {
    if (n['Relation Name']) names.add(`${n.Schema ? `${n.Schema}.` : ''}${n['Relation Name']}`);
    for (const c of n.Plans ?? []) visit(c);
  };
  visit(node);
  return [...names];
}

/**
 * Whether a relation (`schema.name`, as the plan names it) is named inside
 * one of the query's own sub-queries; undefined when the query has none.
 */
function subLinkRelations(stmt: unknown): ((qualified: string) => boolean) | undefined {
  let found: Set<string> | undefined;
  const visit = (node: unknown, inSubLink: boolean): void => {
    if (Array.isArray(node)) {
      for (const n of node) visit(n, inSubLink);
      return;
    }
    if (!node || typeof node !== 'object') return;
    const obj = node as Record<string, unknown>;
    if (obj.SubLink) {
      found ??= new Set();
      visit(obj.SubLink, true);
      return;
    }
    const rv = obj.RangeVar as { schemaname?: string; relname?: string } | undefined;
    if (inSubLink && rv?.relname) found!.add(rv.schemaname ? `${rv.schemaname}.${rv.relname}` : rv.relname);
    for (const v of Object.values(obj)) visit(v, inSubLink);
  };
  visit(stmt, false);
  if (!found) return undefined;
  const names = found;
  // A bare name in the query matches the relation of that name in any schema.
  return (qualified) => names.has(qualified) || names.has(qualified.slice(qualified.indexOf('.') + 1));
}
