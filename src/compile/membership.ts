import type pg from 'pg';
import { readMemberFunctionState } from '../catalog/read-catalog.js';
import type { MemberFunctionState } from '../catalog/catalog-rows.js';
import type { Membership, PolicyModel } from '../policy/model.js';
import { indexName, type IndexSpec } from './desired-state.js';
import { qualify, quoteIdent, quoteLiteral } from './quote.js';
import { bareLookup } from './tenant-lookup.js';
import type { Statement } from './statement.js';

/**
 * `tenant.membership` (docs/policy-file.md, "Memberships"): a user sees the rows of every tenant
 * they are a member of, or, with `tenant.setting`, of the one active tenant if they are a member.
 *
 * The tenant predicate is `tenant_col = ANY ((SELECT <schema>.rlsctl_member_tenants())::uuid[])`: the
 * scalar sub-select makes the planner run the lookup once per statement (an InitPlan), and
 * `= ANY` of an array parameter is a btree index condition on the tenant column. The helper is a
 * STABLE SECURITY DEFINER SQL function owned by the owner of the membership table (whoever applies
 * the file: apply and the compiled script give it to that role), with its search_path pinned: it reads the membership table as that owner,
 * so the table's own row level security, if any (enabled, not forced: the validator refuses a
 * declared tenant or shared membership table), is never entered from a tenant table's policy,
 * and a policy on the membership table that reads it again cannot recurse. EXECUTE is revoked
 * from PUBLIC and granted to the app roles. Its index, (user_column, tenant_column), makes the
 * lookup an index seek.
 */

export const MEMBER_FUNCTION = 'rlsctl_member_tenants';
const SEARCH_PATH = 'pg_catalog, pg_temp';

/** The helper function as SQL, schema-qualified: it lives in the membership table's schema. */
export function memberFunctionSql(m: Membership): string {
  return `${qualify(m.schema, MEMBER_FUNCTION)}()`;
}

/**
 * The cast makes the parenthesised sub-select an array expression: `= ANY ((SELECT ...))` alone
 * reads as ANY of a sub-query's rows, which compares the column with the array itself.
 */
export function membershipPredicate(model: PolicyModel, column: string): string {
  return `${quoteIdent(column)} = ANY ((SELECT ${memberFunctionSql(model.tenant.membership!)})::${model.tenant.type}[])`;
}

/**
 * The user as SQL: a setting, or a claim inside the setting's JSON, read as the tenant of
 * `tenant.claim` is (src/compile/tenant-lookup.ts). A missing setting, claim or empty value, and a
 * claim that is not of the user type's form, are NULL, which matches no membership; malformed JSON
 * in the setting raises an error (docs/policy-file.md, "Memberships").
 */
export function memberUserSql(m: Membership): string {
  const { setting, type, claim } = m.user;
  return bareLookup({ setting, type, claim: claim?.split('.') });
}

/** The body of the helper function (deterministic: plan compares it with prosrc). */
export function memberFunctionBody(model: PolicyModel): string {
  const m = model.tenant.membership!;
  const tc = `m.${quoteIdent(m.tenantColumn)}`;
  const type = model.tenant.type;
  return [
    '',
    `  SELECT COALESCE(pg_catalog.array_agg(${tc}::${type}), ARRAY[]::${type}[])`,
    `    FROM ${qualify(m.schema, m.table)} AS m`,
    `   WHERE m.${quoteIdent(m.userColumn)} = ${memberUserSql(m)}`,
    ...(m.activeTenant ? [`     AND ${tc} = ${bareLookup({ setting: model.tenant.setting, type, claim: model.tenant.claim })}`] : []),
    '',
  ].join('\n');
}

/** A dollar-quote tag that does not occur in the text. */
function dollarTag(text: string, base = 'rlsctl_fn'): string {
  let tag = `$${base}$`;
  for (let i = 1; text.includes(tag); i++) tag = `$${base}${i}$`;
  return tag;
}

export function createMemberFunctionSql(model: PolicyModel): string {
  const m = model.tenant.membership!;
  const fn = memberFunctionSql(m);
  const body = memberFunctionBody(model);
  const tag = dollarTag(body);
  const roles = model.roles.app.map((r) => (r === 'public' ? 'PUBLIC' : quoteIdent(r))).join(', ');
  // The owner of the membership table, known when the SQL runs: the function reads the table as it.
  const owner = `(SELECT pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class c WHERE c.oid = ${quoteLiteral(qualify(m.schema, m.table))}::pg_catalog.regclass)`;
  const alter = `BEGIN EXECUTE pg_catalog.format('ALTER FUNCTION %s OWNER TO %I', ${quoteLiteral(fn)}::pg_catalog.regprocedure, ${owner}); END`;
  const doTag = dollarTag(alter, 'rlsctl_owner');
  return [
    `CREATE OR REPLACE FUNCTION ${fn} RETURNS ${model.tenant.type}[]`,
    `  LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = ${SEARCH_PATH}`,
    `  AS ${tag}${body}${tag};`,
    `DO ${doTag} ${alter} ${doTag};`,
    `REVOKE ALL ON FUNCTION ${fn} FROM PUBLIC;`,
    `GRANT EXECUTE ON FUNCTION ${fn} TO ${roles};`,
  ].join('\n');
}

/** The index the lookup seeks on: (user_column, tenant_column) of the membership table. */
export function membershipIndex(m: Membership): IndexSpec {
  const columns = [m.userColumn, m.tenantColumn];
  return { schema: m.schema, table: m.table, columns, unique: false, name: indexName(m.table, columns) };
}

/** One line for the compiled script's header. */
export function describeMembership(model: PolicyModel): string {
  const m = model.tenant.membership!;
  const user = `${m.user.setting}${m.user.claim === undefined ? '' : ` claim ${m.user.claim}`} (${m.user.type})`;
  const active = m.activeTenant ? `, active tenant from ${model.tenant.setting}${model.tenant.claim ? ` claim ${model.tenant.claim.join('.')}` : ''}` : '';
  return `Memberships ${m.schema}.${m.table} (${m.userColumn}, ${m.tenantColumn}) of tenants (${model.tenant.type}), the user from ${user}${active}`;
}

/** The membership index, for a file with `tenant.membership`. */
export function membershipIndexes(model: PolicyModel): IndexSpec[] {
  return model.tenant.membership ? [membershipIndex(model.tenant.membership)] : [];
}

export function memberFunctionStatement(model: PolicyModel, replace = false): Statement {
  const m = model.tenant.membership!;
  return {
    sql: createMemberFunctionSql(model),
    target: { kind: 'function', schema: m.schema, name: MEMBER_FUNCTION },
    hazards: replace ? ['AUTHZ_WIDENS'] : [],
    reasons: replace
      ? { AUTHZ_WIDENS: `the membership lookup changes: who is a member of which tenant is read from ${m.schema}.${m.table} as the file now says` }
      : undefined,
    phase: 'transaction',
    summary: `${replace ? 'replace' : 'create'} function ${m.schema}.${MEMBER_FUNCTION}(): the tenants the user is a member of (${m.schema}.${m.table}), once per statement`,
  };
}

/** What the database holds of the helper function. */
export type { MemberFunctionState } from '../catalog/catalog-rows.js';

export async function readMemberFunction(client: pg.ClientBase, model: PolicyModel): Promise<MemberFunctionState | undefined> {
  const m = model.tenant.membership;
  if (!m) return undefined;
  return readMemberFunctionState(client, { schema: m.schema, name: MEMBER_FUNCTION, roles: model.roles.app, table: qualify(m.schema, m.table) });
}

/** The statement that brings the helper function to what the file asks, or none when it is current. */
export function planMemberFunction(model: PolicyModel, state: MemberFunctionState | undefined): Statement[] {
  if (!model.tenant.membership) return [];
  const current =
    state !== undefined &&
    state.source === memberFunctionBody(model) &&
    state.config.length === 1 &&
    state.config[0] === `search_path=${SEARCH_PATH}` &&
    state.securityDefiner &&
    state.volatility === 's' &&
    state.returns === `${model.tenant.type}[]` &&
    state.ownedByTableOwner &&
    (!state.publicExecute || model.roles.app.includes('public')) &&
    model.roles.app.every((r) => r === 'public' || state.executors.includes(r));
  if (current) return [];
  return [memberFunctionStatement(model, state !== undefined && state.source !== memberFunctionBody(model))];
}
