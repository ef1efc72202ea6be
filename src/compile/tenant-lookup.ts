import type { Engine, PolicyModel, TenantType } from '../policy/model.js';
import { quoteIdent, quoteLiteral } from './quote.js';

/**
 * The one place that writes how a policy reads the current tenant. Compile
 * (src/compile/desired-state.ts, and through it the partition trigger), audit's
 * expected predicate (src/audit/audit-context.ts), explain and verify all ask
 * here, so that what they expect is what compile wrote.
 *
 * - The setting model: `NULLIF(current_setting(setting, true), '')::type`.
 *   `missing_ok = true` gives NULL instead of an error when the setting was
 *   never set; NULLIF turns the empty string an ended transaction-local setting
 *   reads as into NULL, so the cast cannot fail and the comparison admits no row.
 * - The claim model (`tenant.claim`): the setting holds JSON (PostgREST's
 *   `request.jwt.claims`) and the tenant is the text at the claim path. The
 *   text is cast only when it has the exact form of the type (a regular
 *   expression, and for integers their range), so a missing claim, a claim of
 *   another type or form, a JSON number for a uuid, an object or an array all
 *   read as NULL and admit no row. Malformed JSON in the setting cannot be
 *   caught on PostgreSQL 14 (pg_input_is_valid is 16+): the `::jsonb` cast
 *   raises `invalid input syntax for type json`, and the statement fails
 *   rather than returning rows (docs/policy-file.md, `tenant.claim`).
 * - engine postgres: the lookup is wrapped in a scalar sub-select, which the
 *   planner runs once per statement as an InitPlan and uses as an index condition.
 * - engine citus: Citus refuses sub-queries in policies on distributed tables,
 *   so the lookup is the bare expression. Every function in it is STABLE or
 *   IMMUTABLE, so PostgreSQL still uses the comparison as an index condition,
 *   evaluated once per index scan rather than per row (docs/scale-out.md).
 */

export interface TenantLookup {
  setting: string;
  type: TenantType;
  /** The claim path inside the setting's JSON; absent for the setting model. */
  claim?: readonly string[];
  engine?: Engine;
}

export function tenantLookupOf(model: Pick<PolicyModel, 'tenant' | 'engine'>): TenantLookup {
  return { setting: model.tenant.setting, type: model.tenant.type, claim: model.tenant.claim, engine: model.engine };
}

const CAST: Record<TenantType, string> = { uuid: '::uuid', bigint: '::bigint', integer: '::integer', text: '' };

/** The exact text forms a claim's value is cast from; anything else reads as NULL. */
const CLAIM_FORM: Record<Exclude<TenantType, 'text'>, { pattern: string; range?: [string, string] }> = {
  uuid: { pattern: '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$' },
  bigint: { pattern: '^-?[0-9]{1,19}$', range: ['-9223372036854775808', '9223372036854775807'] },
  integer: { pattern: '^-?[0-9]{1,10}$', range: ['-2147483648', '2147483647'] },
};

/** The setting's text, NULL when unset or empty. */
function settingText(setting: string): string {
  return `NULLIF(pg_catalog.current_setting(${quoteLiteral(setting)}, true), '')`;
}

/**
 * The tenant as an expression without sub-query, NULL when it is not set or not of the type's form.
 * The membership lookup reads its user and active tenant with it too (src/compile/membership.ts).
 */
export function bareLookup(lookup: TenantLookup): string {
  if (!lookup.claim) return `${settingText(lookup.setting)}${CAST[lookup.type]}`;
  const path = `ARRAY[${lookup.claim.map(quoteLiteral).join(', ')}]`;
  const json = `(${settingText(lookup.setting)}::jsonb #> ${path})`;
  const text = `(${settingText(lookup.setting)}::jsonb #>> ${path})`;
  if (lookup.type === 'text') return `CASE WHEN pg_catalog.jsonb_typeof(${json}) = 'string' THEN NULLIF(${text}, '') END`;
  const form = CLAIM_FORM[lookup.type];
  const cast = `${text}${CAST[lookup.type]}`;
  // CASE guards the cast: its branches run only when their condition holds,
  // and nothing here is constant, so the planner cannot fold the cast early.
  const inRange = form.range ? `CASE WHEN ${text}::numeric BETWEEN ${form.range[0]} AND ${form.range[1]} THEN ${cast} END` : cast;
  return `CASE WHEN ${text} ~ ${quoteLiteral(form.pattern)} THEN ${inRange} END`;
}

/** The current tenant as a policy reads it (see the comment at the top). */
export function currentTenantSql(lookup: TenantLookup): string {
  const bare = bareLookup(lookup);
  return lookup.engine === 'citus' ? bare : `(SELECT ${bare})`;
}

/** `column = current tenant`: the tenant predicate of a table that carries the tenant column. */
export function tenantEqualsSql(column: string, lookup: TenantLookup): string {
  return `${quoteIdent(column)} = ${currentTenantSql(lookup)}`;
}

/** What goes into the setting for a tenant (the claims JSON of the claim model): the runtime's own rule. */
export { settingValueFor } from '../tenant/tenant-options.js';
