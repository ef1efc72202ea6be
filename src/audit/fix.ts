import { qualify, quoteIdent, quoteLiteral } from '../compile/quote.js';
import { quoteRole } from '../compile/render-sql.js';
import { viaPredicate } from '../compile/desired-state.js';
import type { FindingFix } from '../report/finding.js';
import { commentLines, type AuditContext, type ProtectedTable } from './audit-context.js';
import type { ColumnRow, PolicyRow, RelationRow } from '../catalog/catalog-rows.js';
import { addMissingOk, dropFailOpenBranches, isTenantEquality, nullifSettingCasts, unwrapColumnCasts, wrapPerRowCalls } from './fix-expression.js';
import type { ExpressionFacts } from './analyze-expression.js';

/**
 * Fixes as data (src/report/finding.ts, FindingFix): what the rules build
 * instead of help text. A runnable fix names only what the database or the
 * policy file holds (quoted), never a placeholder; where rlsctl cannot know
 * the right SQL the fix is not runnable and its note says what to decide.
 */

/** Runnable SQL: the statements (the fail-closed choice), then each alternative as comment lines. */
export function sqlFix(statements: string[], options: { alternatives?: string[]; note?: string } = {}): FindingFix {
  const lines = [...statements];
  for (const alternative of options.alternatives ?? []) lines.push(commentLines(`or: ${alternative}`));
  const fix: FindingFix = { sql: lines.join('\n'), runnable: true };
  if (options.note) fix.note = options.note;
  return fix;
}

/** No safe SQL: what must be decided. */
export function manualFix(note: string): FindingFix {
  return { sql: null, runnable: false, note };
}

/** The app roles for a TO clause, quoted; undefined when no app role exists in the database. */
export function appRolesSql(ctx: AuditContext): string | undefined {
  return ctx.appRoles.length > 0 ? ctx.appRoles.map(quoteRole).join(', ') : undefined;
}

export const NO_APP_ROLE = 'no app role exists in the database: say which roles the application runs as (--app-role, or roles.app in the policy file)';

/**
 * A setting that holds a JSON document (the claims of a JWT, as PostgREST and
 * Supabase set `request.jwt.claims`): its text is not a tenant id, and a cast
 * of it to uuid raises an error on every query.
 */
export function isJsonSetting(name: string): boolean {
  return /(^|\.)claims$/i.test(name) || /(^|\.)jwt$/i.test(name);
}

/** The cast of the tenant setting's text to the type of the tenant column; undefined for a type rlsctl does not generate. */
function castFor(type: string): string | undefined {
  return ({ uuid: '::uuid', int8: '::bigint', int4: '::integer', int2: '::smallint', text: '', varchar: '' } as Record<string, string>)[type];
}

export type TenantPredicate = { sql: string } | { reason: string };

/**
 * The tenant predicate of a table, in the database's own source: the
 * `column = <tenant>` of an existing policy on the table (or, for the same
 * column name and type, on another table in scope) when one is exactly that;
 * else the one rlsctl generates from the tenant setting the facts name, cast
 * to the column's type; else why none can be written.
 */
export function tenantPredicate(ctx: AuditContext, table: ProtectedTable | undefined, rel: RelationRow): TenantPredicate {
  if (table?.via) return { sql: viaPredicate(table.via, rel.name) };
  const columnName = table?.columnName ?? (ctx.column(rel.oid, ctx.facts.tenantColumn) ? ctx.facts.tenantColumn : undefined);
  const column = columnName ? ctx.column(rel.oid, columnName) : undefined;
  if (!column) return { reason: `${ctx.label(rel)} has no tenant column${columnName ? ` ${columnName}` : ''}: decide how its rows belong to a tenant` };
  const own = (policies: PolicyRow[]) =>
    [...policies]
      .sort((a, b) => Number(a.permissive) - Number(b.permissive))
      .flatMap((p) => [p.using, p.check])
      .find((text) => text !== undefined && clean(ctx, text) && isTenantEquality(text, column.name));
  const mine = own(ctx.policiesOf(rel.oid));
  if (mine) return { sql: mine };
  // Another table's, for the same column: searched once per column name and type per audit.
  let byColumn = elsewhere.get(ctx);
  if (!byColumn) elsewhere.set(ctx, (byColumn = new Map()));
  const key = `${column.name}\0${column.type}`;
  if (!byColumn.has(key)) {
    let found: string | undefined;
    for (const other of ctx.protectedTables.values()) {
      if (other.column?.name !== column.name || other.column.type !== column.type) continue;
      found = own(ctx.policiesOf(other.rel.oid));
      if (found) break;
    }
    byColumn.set(key, found);
  }
  const found = byColumn.get(key);
  if (found) return { sql: found };
  const setting = ctx.facts.setting;
  if (!setting) return { reason: 'no tenant setting is known (no policy reads one): say it with --tenant-setting or in the policy file' };
  if (isJsonSetting(setting))
    return { reason: `the tenant setting ${setting} holds a JSON document: decide which claim carries the tenant, and write the predicate from it` };
  const cast = castFor(column.type);
  if (cast === undefined) return { reason: `the tenant column ${column.name} has type ${column.type}: write the predicate with the cast it needs` };
  return {
    sql: `${quoteIdent(column.name)} = (SELECT NULLIF(pg_catalog.current_setting(${quoteLiteral(setting)}, true), '')${cast})`,
  };
}

const elsewhere = new WeakMap<AuditContext, Map<string, string | undefined>>();

/** An expression with none of the defects the expression rules report. */
function clean(ctx: AuditContext, text: string): boolean {
  const f = ctx.analyze(text);
  return (
    !!f &&
    !f.unparsable &&
    !f.alwaysTrue &&
    f.failOpenBranches.length === 0 &&
    f.castsWithoutNullif.length === 0 &&
    f.settingsWithoutMissingOk.length === 0 &&
    f.perRowCalls.length === 0
  );
}

/** A policy name not taken on the relation: `base`, else `base_2`, `base_3`... */
export function freePolicyName(ctx: AuditContext, rel: RelationRow, base: string): string {
  const taken = new Set(ctx.policiesOf(rel.oid).map((p) => p.name));
  if (!taken.has(base)) return base;
  for (let i = 2; ; i++) if (!taken.has(`${base}_${i}`)) return `${base}_${i}`;
}

/** The restrictive tenant guard rlsctl generates, with the table's tenant predicate; undefined with the reason when none can be written. */
export function guardStatement(ctx: AuditContext, table: ProtectedTable): { sql: string } | { reason: string } {
  const predicate = tenantPredicate(ctx, table, table.rel);
  if (!('sql' in predicate)) return predicate;
  const roles = appRolesSql(ctx);
  if (!roles) return { reason: NO_APP_ROLE };
  return {
    sql: `CREATE POLICY ${quoteIdent(freePolicyName(ctx, table.rel, 'rlsctl_tenant_guard'))} ON ${ctx.sql(table.rel)} AS RESTRICTIVE FOR ALL TO ${roles}\n  USING (${predicate.sql})\n  WITH CHECK (${predicate.sql});`,
  };
}

/** The tenant policies rlsctl generates for a table with none: the restrictive guard and the permissive access. */
export function tenantPolicyStatements(ctx: AuditContext, table: ProtectedTable): { sql: string[] } | { reason: string } {
  const guard = guardStatement(ctx, table);
  if (!('sql' in guard)) return guard;
  const predicate = tenantPredicate(ctx, table, table.rel) as { sql: string };
  return {
    sql: [
      guard.sql,
      `CREATE POLICY ${quoteIdent(freePolicyName(ctx, table.rel, 'rlsctl_tenant_access'))} ON ${ctx.sql(table.rel)} AS PERMISSIVE FOR ALL TO ${appRolesSql(ctx)!}\n  USING (${predicate.sql})\n  WITH CHECK (${predicate.sql});`,
    ],
  };
}

const COMMAND_SQL: Record<string, string> = { all: 'ALL', select: 'SELECT', insert: 'INSERT', update: 'UPDATE', delete: 'DELETE' };

/** CREATE POLICY for a copy of `policy` on `rel` (a partition of its table). */
export function copyPolicySql(rel: RelationRow, policy: PolicyRow): string {
  const roles = policy.roles.map(quoteRole).join(', ');
  const parts = [
    `CREATE POLICY ${quoteIdent(policy.name)} ON ${qualify(rel.schema, rel.name)} AS ${policy.permissive ? 'PERMISSIVE' : 'RESTRICTIVE'} FOR ${COMMAND_SQL[policy.command] ?? 'ALL'} TO ${roles}`,
  ];
  if (policy.using !== undefined) parts.push(`  USING (${policy.using})`);
  if (policy.check !== undefined) parts.push(`  WITH CHECK (${policy.check})`);
  return parts.join('\n') + ';';
}

/**
 * ALTER POLICY with each clause the policy has rewritten by `rewrite` (a
 * clause it does not have is never added: an INSERT policy has no USING, a
 * SELECT or DELETE policy no WITH CHECK). Undefined when a rewrite fails.
 */
export function alterPolicyStatement(
  ctx: AuditContext,
  rel: RelationRow,
  policy: PolicyRow,
  rewrite: (text: string) => string | undefined,
): string | undefined {
  const parts = [`ALTER POLICY ${quoteIdent(policy.name)} ON ${ctx.sql(rel)}`];
  for (const [clause, text] of [
    ['USING', policy.using],
    ['WITH CHECK', policy.check],
  ] as const) {
    if (text === undefined) continue;
    const next = rewrite(text);
    if (next === undefined) return undefined;
    if (next !== text) parts.push(`  ${clause} (${next})`);
  }
  return parts.length > 1 ? parts.join('\n') + ';' : undefined;
}

/** The cast the other side of a tenant comparison gets (RLS042), by the tenant column's catalog type name. */
const CAST_TYPES = new Map<string, string>([
  ['uuid', 'uuid'],
  ['int8', 'bigint'],
  ['int4', 'integer'],
  ['int2', 'smallint'],
]);

/**
 * A policy expression with every defect the expression rules report repaired
 * in its own source, in one order (missing_ok, the cast off the tenant column,
 * NULLIF before casts, fail-open branches dropped, calls wrapped): each rule
 * about the policy then prints the same ALTER POLICY, and the fix script,
 * which writes a statement once, runs it once. A step that cannot edit the
 * text safely is left out; the rule then sees its defect left and says the
 * fix is not runnable.
 */
export function repairExpression(ctx: AuditContext, rel: RelationRow, text: string): string {
  // The copies of a policy on many partitions share their text: repaired once per audit.
  const table = ctx.protectedTables.get(rel.oid) ?? ctx.protectedPartitions.get(rel.oid);
  const column = table?.columnName ? ctx.column(rel.oid, table.columnName) : undefined;
  const key = `${column?.name ?? ''}\0${column?.type ?? ''}\0${text}`;
  let cache = repaired.get(ctx);
  if (!cache) repaired.set(ctx, (cache = new Map()));
  let out = cache.get(key);
  if (out === undefined) cache.set(key, (out = repair(ctx, column, text)));
  return out;
}

const repaired = new WeakMap<AuditContext, Map<string, string>>();

function repair(ctx: AuditContext, column: ColumnRow | undefined, text: string): string {
  let current = text;
  const step = (needed: (f: ExpressionFacts) => boolean, rewrite: (text: string, f: ExpressionFacts) => string | undefined) => {
    const facts = ctx.analyze(current);
    if (!facts || facts.unparsable || !needed(facts)) return;
    const next = rewrite(current, facts);
    if (next !== undefined && ctx.analyze(next)?.unparsable === false) current = next;
  };
  step(
    (f) => f.settingsWithoutMissingOk.length > 0,
    (t) => addMissingOk(t),
  );
  const cast = column ? CAST_TYPES.get(column.type) : undefined;
  if (column && cast)
    step(
      (f) => f.wrappedColumns.some((w) => w.column === column.name && w.wrapper.startsWith('::')),
      (t) => unwrapColumnCasts(t, column.name, cast),
    );
  step(
    (f) => f.castsWithoutNullif.length > 0,
    (t) => nullifSettingCasts(t),
  );
  // The branch itself is a fail-open test: it counts as one as an OR's branch, and not inside an AND (which
  // counts only the fail-open ORs nested within it).
  const failsOpen = (branch: string) =>
    (ctx.analyze(`(${branch}) OR false`)?.failOpenBranches.length ?? 0) > (ctx.analyze(`(${branch}) AND true`)?.failOpenBranches.length ?? 0);
  step(
    (f) => f.failOpenBranches.length > 0,
    (t) => dropFailOpenBranches(t, failsOpen),
  );
  step(
    (f) => f.perRowCalls.length > 0,
    (t, f) => wrapPerRowCalls(t, new Set(f.perRowCalls)),
  );
  return current;
}

/** ALTER POLICY with the policy's clauses repaired (repairExpression), when `solved` holds of each repaired clause; else undefined. */
export function repairPolicyStatement(ctx: AuditContext, rel: RelationRow, policy: PolicyRow, solved: (facts: ExpressionFacts) => boolean): string | undefined {
  return alterPolicyStatement(ctx, rel, policy, (text) => {
    const next = repairExpression(ctx, rel, text);
    const facts = ctx.analyze(next);
    return facts && !facts.unparsable && solved(facts) ? next : undefined;
  });
}
