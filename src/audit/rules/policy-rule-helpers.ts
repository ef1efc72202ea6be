import { quoteIdent } from '../../compile/quote.js';
import { viaPredicate } from '../../compile/desired-state.js';
import type { PolicyRow, RelationRow } from '../../catalog/catalog-rows.js';
import type { AuditContext, PolicyClause, ProtectedTable } from '../audit-context.js';
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

/** `ALTER POLICY name ON table USING (...) WITH CHECK (...)` with the fixed expressions. */
export function alterPolicySql(ctx: AuditContext, rel: RelationRow, policy: PolicyRow, fix: (text: string) => string): string {
  const parts = [`ALTER POLICY ${quoteIdent(policy.name)} ON ${ctx.sql(rel)}`];
  if (policy.using !== undefined) parts.push(`  USING (${fix(policy.using)})`);
  if (policy.check !== undefined) parts.push(`  WITH CHECK (${fix(policy.check)})`);
  return parts.join('\n') + ';';
}

/** Strip one pair of outer parentheses that pg_get_expr puts around a whole expression. */
export function bare(text: string): string {
  const t = text.trim();
  if (!t.startsWith('(') || !t.endsWith(')')) return t;
  let depth = 0;
  for (let i = 0; i < t.length; i++) {
    if (t[i] === '(') depth++;
    else if (t[i] === ')') depth--;
    if (depth === 0 && i < t.length - 1) return t;
  }
  return t.slice(1, -1);
}

/** The roles a policy rule judges a policy for: the app roles it applies to, or (no app role known) the roles it names. */
export function rolesToCheck(ctx: AuditContext, policy: PolicyRow): string[] {
  if (ctx.appRoles.length > 0) return ctx.appRoles.filter((r) => ctx.policyAppliesTo(policy, r));
  return policy.roles;
}

/** The restrictive tenant guard rlsctl generates, for help text. */
export function guardSql(ctx: AuditContext, table: ProtectedTable): string {
  const via = table.via;
  const predicate = table.columnName
    ? ctx.tenantPredicateSql(table.columnName)
    : via
      ? viaPredicate(via, table.rel.name)
      : ctx.tenantPredicateSql(ctx.facts.tenantColumn);
  return `CREATE POLICY rlsctl_tenant_guard ON ${ctx.sql(table.rel)} AS RESTRICTIVE FOR ALL TO ${ctx.appRolesSql()}\n  USING (${predicate})\n  WITH CHECK (${predicate});`;
}
