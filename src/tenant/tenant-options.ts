import type { TenantType } from './tenant-type.js';
import { TenantContextError } from './tenant-context-error.js';
import { assertTenantType, describeTenantValue } from './validate-tenant.js';

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
  /** A loaded policy model (or anything with its `tenant` section). */
  policy?: {
    tenant: {
      setting: string;
      type: TenantType;
      /** `tenant.membership`: withTenant takes `{ user, tenant? }` (src/tenant/member-identity.ts). */
      membership?: { user: { setting: string; type: TenantType; claim?: string }; activeTenant: boolean };
    };
  };
  /** The custom setting the policies read, e.g. `app.tenant_id`. */
  setting?: string;
  /** The tenant type the value is validated against: uuid | bigint | integer | text. */
  type?: TenantType;
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
}

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
  return { setting, type };
}
