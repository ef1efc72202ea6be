import type { TenantType } from './tenant-type.js';
import { TenantContextError } from './tenant-context-error.js';
import { assertTenantType, describeTenantValue } from './validate-tenant.js';
import { quoteLiteral } from './quote-literal.js';

export const DEFAULT_TENANT_SETTING = 'app.tenant_id';
export const DEFAULT_TENANT_TYPE: TenantType = 'uuid';

// The same rule as the policy file's `tenant.setting` (see validate-policy.ts):
// PostgreSQL only takes custom settings with a prefix, and identifier-like
// parts keep the name safe to quote anywhere.
const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)+$/;

/**
 * Where the tenant goes. Either pass the loaded policy (`policy: await
 * loadPolicy()`), whose `tenant.setting` and `tenant.type` then apply, or name
 * them; `setting` and `type` given here win over the policy's. Without either,
 * `app.tenant_id` and `uuid`, the policy file's own defaults.
 */
export interface WithTenantOptions {
  /** A loaded policy model (or anything with its `tenant` section and `engine`). */
  policy?: {
    tenant: {
      setting: string;
      type: TenantType;
      claim?: readonly string[];
      /** `tenant.membership`: withTenant takes `{ user, tenant? }` (src/tenant/member-identity.ts). */
      membership?: { user: { setting: string; type: TenantType; claim?: string }; activeTenant: boolean };
    };
    engine?: 'postgres' | 'citus';
  };
  /** The custom setting the policies read, e.g. `app.tenant_id`. */
  setting?: string;
  /** The tenant type the value is validated against: uuid | bigint | integer | text. */
  type?: TenantType;
  /**
   * The claim path of the policy file's `tenant.claim` (`app_metadata.org_id` or its
   * segments): the setting then gets the claims JSON `{"app_metadata":{"org_id":"<tenant>"}}`.
   */
  claim?: string | readonly string[];
  /**
   * How the tenant is set: `set-config` (`set_config(setting, value, true)`, the default) or
   * `set-local` (`SET LOCAL setting = 'value'`, which Citus forwards to the shards' connections
   * when `citus.propagate_set_commands` is `local`). The default with a policy of `engine: citus` is `set-local`.
   */
  propagate?: 'set-config' | 'set-local';
  /** The user form `{ user, tenant? }`: the setting the membership lookup reads the user from (default `app.user_id`). */
  userSetting?: string;
  /** The user form: the type the user is validated against (default `uuid`). */
  userType?: TenantType;
}

/** Whether `name` is a custom setting name withTenant can set. */
export function settingName(name: unknown): name is string {
  return typeof name === 'string' && SETTING_NAME.test(name);
}

export interface TenantSettings {
  setting: string;
  type: TenantType;
  claim?: readonly string[];
  propagate: 'set-config' | 'set-local';
}

/** A claim segment, as the policy file's `tenant.claim` admits it (src/policy/validate-policy.ts). */
const CLAIM_SEGMENT = /^[A-Za-z0-9_-]{1,63}$/;

/** Resolve and check the options; throws TenantContextError('invalid-options') before any SQL. */
export function resolveTenantOptions(options: WithTenantOptions | undefined): TenantSettings {
  const setting = options?.setting ?? options?.policy?.tenant.setting ?? DEFAULT_TENANT_SETTING;
  const type = options?.type ?? options?.policy?.tenant.type ?? DEFAULT_TENANT_TYPE;
  if (!settingName(setting)) {
    throw new TenantContextError('invalid-options', `the tenant setting ${describeTenantValue(setting)} is not a valid custom setting name`, {
      hint: "a custom setting has a prefix and a dot, e.g. app.tenant_id; use the policy file's tenant.setting",
    });
  }
  assertTenantType(type);
  const rawClaim = options?.claim ?? options?.policy?.tenant.claim;
  const claim = typeof rawClaim === 'string' ? rawClaim.split('.') : rawClaim;
  if (claim !== undefined && (!Array.isArray(claim) || claim.length === 0 || !claim.every((c) => typeof c === 'string' && CLAIM_SEGMENT.test(c)))) {
    throw new TenantContextError('invalid-options', `the claim path ${describeTenantValue(rawClaim)} is not a valid claim path`, {
      hint: "names of letters, digits, _ and - joined by dots, as the policy file's tenant.claim, e.g. app_metadata.org_id",
    });
  }
  const propagate = options?.propagate ?? (options?.policy?.engine === 'citus' ? 'set-local' : 'set-config');
  if (propagate !== 'set-config' && propagate !== 'set-local') {
    throw new TenantContextError('invalid-options', `unknown propagate ${describeTenantValue(propagate)}`, { hint: 'use set-config or set-local' });
  }
  return { setting, type, ...(claim ? { claim } : {}), propagate };
}

/**
 * What goes into the setting for `tenant`: the tenant itself, or for the claim
 * model the smallest claims JSON that holds it at the claim path (a JSON string;
 * the compiled lookup reads integers from strings too, src/compile/tenant-lookup.ts).
 */
export function settingValueFor(settings: { claim?: readonly string[] }, tenant: string): string {
  if (!settings.claim) return tenant;
  let value: unknown = tenant;
  for (const key of [...settings.claim].reverse()) value = { [key]: value };
  return JSON.stringify(value);
}

/**
 * The statement that sets the tenant transaction-locally, with literals (the
 * setting matched SETTING_NAME; the tenant was validated): `set_config(...)`,
 * or for `propagate: 'set-local'` `SET LOCAL "prefix"."name" = '...'`.
 */
export function setTenantSql(settings: TenantSettings, tenant: string): string {
  return setSettingsSql([[settings.setting, settingValueFor(settings, tenant)]], settings.propagate);
}

/**
 * setTenantSql for several settings (the user form of withTenant sets the user and the
 * active tenant): one `SELECT set_config(...), ...`, or one `SET LOCAL` per setting.
 */
export function setSettingsSql(assignments: ReadonlyArray<readonly [setting: string, value: string]>, propagate: TenantSettings['propagate']): string {
  if (propagate === 'set-local')
    return assignments
      .map(
        ([setting, value]) =>
          `SET LOCAL ${setting
            .split('.')
            .map((part) => `"${part.replace(/"/g, '""')}"`)
            .join('.')} = ${quoteLiteral(value)}`,
      )
      .join('; ');
  return `SELECT ${assignments.map(([setting, value]) => `pg_catalog.set_config(${quoteLiteral(setting)}, ${quoteLiteral(value)}, true)`).join(', ')}`;
}
