import type { PolicyRow, RelationRow } from '../../catalog/catalog-rows.js';
import type { AuditContext, PolicyClause } from '../audit-context.js';
import type { FindingObject } from '../../report/finding.js';

/**
 * The policies the expression rules look at: every policy on a table in the
 * schemas in scope (tenant or not: a fail-open or erroring expression is a
 * hole wherever it is), partitions included, exempt tables excluded.
 */
export function policiesInScope(ctx: AuditContext): ReadonlyArray<{ rel: RelationRow; policy: PolicyRow }> {
  let list = inScope.get(ctx);
  if (!list) {
    list = [];
    for (const policy of ctx.catalog.policies) {
      const rel = ctx.relations.get(policy.relOid);
      if (!rel || !ctx.scopeSchemas.has(rel.schema) || ctx.exempt.has(rel.oid)) continue;
      list.push({ rel, policy });
    }
    inScope.set(ctx, list);
  }
  return list;
}

/** The list of policiesInScope, built once per audit (five rules walk it). */
const inScope = new WeakMap<AuditContext, Array<{ rel: RelationRow; policy: PolicyRow }>>();

export function policyObject(rel: RelationRow, policy: PolicyRow): FindingObject {
  return { kind: 'policy', schema: rel.schema, table: rel.name, name: policy.name };
}

/** Both clauses of a policy, analysed. */
export function clauses(ctx: AuditContext, policy: PolicyRow): PolicyClause[] {
  return ctx.policyClauses(policy);
}

/** True when some clause of the policy has a non-empty list for `key`: the cheap test before building a finding. */
export function anyClause(
  ctx: AuditContext,
  policy: PolicyRow,
  key: 'settingsWithoutMissingOk' | 'castsWithoutNullif' | 'failOpenBranches' | 'perRowCalls' | 'wrappedColumns',
): boolean {
  for (const c of ctx.policyClauses(policy)) if (c.facts[key].length > 0) return true;
  return false;
}

/** The roles a policy rule judges a policy for: the app roles it applies to, or (no app role known) the roles it names. */
export function rolesToCheck(ctx: AuditContext, policy: PolicyRow): string[] {
  if (ctx.appRoles.length > 0) return ctx.appRoles.filter((r) => ctx.policyAppliesTo(policy, r));
  return policy.roles;
}
