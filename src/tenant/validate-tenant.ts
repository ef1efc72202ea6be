import { TENANT_TYPES, type TenantType } from './tenant-type.js';
import { TenantContextError } from './tenant-context-error.js';

/** What a tenant id may be in JavaScript: a string, or for integer tenant types also a number or a bigint. */
export type TenantId = string | number | bigint;

// The canonical hyphenated form only. PostgreSQL's uuid input also takes braces
// and hyphen-free spellings; refusing those keeps one spelling per tenant, so
// that two spellings of the same tenant never compare unequal in our checks.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DECIMAL = /^-?[0-9]+$/;
const INTEGER_RANGES = {
  bigint: { min: -(2n ** 63n), max: 2n ** 63n - 1n },
  integer: { min: -(2n ** 31n), max: 2n ** 31n - 1n },
} as const;

/** A short, printable rendering of a rejected value, for error messages (ids are not secrets, but may be long). */
export function describeTenantValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') {
    const shown = value.length > 48 ? `${value.slice(0, 45)}...` : value;
    return JSON.stringify(shown);
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return 'an array';
  return `a value of type ${typeof value}`;
}

function invalid(value: unknown, type: TenantType, why: string): TenantContextError {
  return new TenantContextError('invalid-tenant', `invalid tenant id ${describeTenantValue(value)} for tenant type ${type}: ${why}`, {
    hint:
      value === null || value === undefined || value === ''
        ? 'resolve the tenant before opening a tenant transaction; an empty setting means "no tenant" to the policies'
        : undefined,
  });
}

/**
 * Check that `type` is one of the policy file's tenant types (JavaScript
 * callers and hand-written options are not checked by the compiler).
 */
export function assertTenantType(type: unknown): asserts type is TenantType {
  if (!(TENANT_TYPES as readonly unknown[]).includes(type)) {
    throw new TenantContextError('invalid-options', `unknown tenant type ${describeTenantValue(type)}`, {
      hint: `use one of ${TENANT_TYPES.join(', ')}, as in the policy file's tenant.type`,
    });
  }
}

/**
 * Validate a tenant id against the tenant type of the policy file and return
 * the text that goes into the setting. Runs before any SQL: a value refused
 * here never reaches the database.
 *
 * - `uuid`: a string in the hyphenated 8-4-4-4-12 form, any case; returned in lower case.
 * - `bigint` / `integer`: a safe-integer number, a bigint, or a decimal string
 *   (digits with an optional leading minus), within the column type's range;
 *   returned as its plain decimal form.
 * - `text`: a non-empty string without NUL characters (PostgreSQL text cannot hold NUL).
 *
 * `null`, `undefined` and the empty string are refused for every type: an
 * empty setting means "no tenant" to the compiled policies.
 */
export function validateTenantId(value: unknown, type: TenantType = 'uuid'): string {
  assertTenantType(type);
  if (value === null || value === undefined) throw invalid(value, type, 'no tenant was given');
  if (value === '') throw invalid(value, type, 'the tenant id is empty');
  switch (type) {
    case 'uuid':
      if (typeof value !== 'string') throw invalid(value, type, 'a uuid tenant id must be a string');
      if (!UUID.test(value)) throw invalid(value, type, 'not a uuid in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx');
      return value.toLowerCase();
    case 'bigint':
    case 'integer':
      return validateInteger(value, type);
    case 'text':
      if (typeof value !== 'string') throw invalid(value, type, 'a text tenant id must be a string');
      if (value.includes('\0')) throw invalid(value, type, 'the tenant id holds a NUL character, which PostgreSQL text cannot store');
      return value;
    default: {
      const unreachable: never = type;
      throw new Error(`unhandled tenant type ${String(unreachable)}`);
    }
  }
}

function validateInteger(value: unknown, type: 'bigint' | 'integer'): string {
  let n: bigint;
  if (typeof value === 'bigint') {
    n = value;
  } else if (typeof value === 'number') {
    // Beyond 2^53 a number has already lost digits: the tenant it names is not the one meant.
    if (!Number.isSafeInteger(value)) {
      throw invalid(value, type, Number.isInteger(value) ? 'beyond 2^53 a number loses digits; pass a bigint or a decimal string' : 'not an integer');
    }
    n = BigInt(value);
  } else if (typeof value === 'string') {
    if (!DECIMAL.test(value)) throw invalid(value, type, 'not a decimal integer (digits with an optional leading minus)');
    n = BigInt(value);
  } else {
    throw invalid(value, type, 'an integer tenant id must be a number, a bigint or a decimal string');
  }
  const { min, max } = INTEGER_RANGES[type];
  if (n < min || n > max) throw invalid(value, type, `out of the range of ${type} (${min} to ${max})`);
  return n.toString();
}

/**
 * The checks that need no tenant type: used where the tenant is recorded
 * before the type is known (`tenantContext.run`). The type-specific checks
 * follow in `withCurrentTenant`, still before any SQL.
 */
export function assertTenantShape(value: unknown): asserts value is TenantId {
  if (value === null || value === undefined) {
    throw new TenantContextError('invalid-tenant', `invalid tenant id ${describeTenantValue(value)}: no tenant was given`, {
      hint: 'resolve the tenant of the request before entering its tenant context',
    });
  }
  if (value === '') throw new TenantContextError('invalid-tenant', 'invalid tenant id "": the tenant id is empty');
  const ok = typeof value === 'string' || typeof value === 'bigint' || (typeof value === 'number' && Number.isFinite(value));
  if (!ok) {
    throw new TenantContextError('invalid-tenant', `invalid tenant id ${describeTenantValue(value)}: a tenant id is a string, a number or a bigint`);
  }
}
