import type { TenantType } from './tenant-type.js';
import { TenantContextError } from './tenant-context-error.js';
import { resolveTenantOptions, settingName, settingValueFor, type TenantSettings, type WithTenantOptions } from './tenant-options.js';
import { assertTenantType, describeTenantValue, validateTenantId, type TenantId } from './validate-tenant.js';

/**
 * The user form of withTenant, for a policy file with `tenant.membership` (docs/runtime.md,
 * "Memberships"): `withTenant(pool, { user, tenant? }, fn, options)`. The user goes into the
 * membership's user setting and, when given, the active tenant into the tenant setting, both
 * transaction-local like the tenant of the plain form. Everything is checked here, before any
 * connection is taken or SQL sent.
 */
export interface MemberIdentity {
  user: TenantId;
  /** The active tenant, for a file that names `tenant.setting` beside `membership`. */
  tenant?: TenantId;
}

export const DEFAULT_USER_SETTING = 'app.user_id';

/** The settings a unit of work sets, and the key that tells two units apart (nested-call messages). */
export interface Identity {
  assignments: Array<[setting: string, value: string]>;
  /** How the identity reads in messages: `tenant "…"` or `user "…" (tenant "…")`. */
  label: string;
  /** The tenant, when there is one: compared with the request's tenant (tenantContext). */
  tenant?: string;
  type: TenantType;
  /** How the settings are set (src/tenant/tenant-options.ts, setSettingsSql). */
  propagate: TenantSettings['propagate'];
}

export function isMemberIdentity(value: unknown): value is MemberIdentity {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && 'user' in value;
}

/** The tenant, or the user and active tenant, with every check of its form. */
export function resolveIdentity(value: unknown, options: WithTenantOptions | undefined): Identity {
  const settings = resolveTenantOptions(options);
  const membership = options?.policy?.tenant.membership;
  if (!isMemberIdentity(value)) {
    if (membership) {
      throw new TenantContextError('invalid-options', 'the policy file reads the tenants from a membership table: withTenant needs the user, not a tenant id', {
        hint: 'call withTenant(db, { user: userId }, fn, options), or { user, tenant } with the active tenant when the file names tenant.setting',
      });
    }
    const tenant = validateTenantId(value, settings.type);
    return {
      assignments: [[settings.setting, settingValueFor(settings, tenant)]],
      label: `tenant ${describeTenantValue(tenant)}`,
      tenant,
      type: settings.type,
      propagate: settings.propagate,
    };
  }
  const extra = Object.keys(value).filter((k) => k !== 'user' && k !== 'tenant');
  if (extra.length > 0) {
    throw new TenantContextError('invalid-options', `withTenant's identity takes \`user\` and \`tenant\`, not ${extra.map((k) => `\`${k}\``).join(', ')}`);
  }
  if (membership?.user.claim !== undefined) {
    throw new TenantContextError(
      'invalid-options',
      `the policy file reads the user from the claim ${membership.user.claim} of ${membership.user.setting}, which the API gateway sets (PostgREST, Supabase), not withTenant`,
      { hint: 'run the queries with the JWT claims the gateway sets, or change tenant.membership.user to { setting, type }' },
    );
  }
  const userSetting = options?.userSetting ?? membership?.user.setting ?? DEFAULT_USER_SETTING;
  if (!settingName(userSetting)) {
    throw new TenantContextError('invalid-options', `the user setting ${describeTenantValue(userSetting)} is not a valid custom setting name`, {
      hint: "a custom setting has a prefix and a dot, e.g. app.user_id; use the policy file's tenant.membership.user.setting",
    });
  }
  const userType = options?.userType ?? membership?.user.type ?? 'uuid';
  assertTenantType(userType);
  let user: string;
  try {
    user = validateTenantId(value.user, userType);
  } catch (error) {
    throw new TenantContextError('invalid-tenant', (error as Error).message.replace(/tenant id/g, 'user id').replace('for tenant type', 'for user type'));
  }
  const assignments: Identity['assignments'] = [[userSetting, user]];
  let tenant: string | undefined;
  if (value.tenant !== undefined) {
    if (membership && !membership.activeTenant) {
      throw new TenantContextError('invalid-options', 'the policy file names no tenant.setting beside tenant.membership: the active tenant would be ignored', {
        hint: 'leave out `tenant` (the user sees every tenant they are a member of), or add tenant.setting to the policy file',
      });
    }
    if (settings.setting === userSetting) {
      throw new TenantContextError('invalid-options', `the user and the active tenant cannot share the setting ${userSetting}`, {
        hint: 'name the active tenant setting with `setting` (or tenant.setting in the policy file) and the user setting with `userSetting`',
      });
    }
    tenant = validateTenantId(value.tenant, settings.type);
    assignments.push([settings.setting, settingValueFor(settings, tenant)]);
  } else if (membership?.activeTenant) {
    throw new TenantContextError(
      'invalid-tenant',
      'the policy file names tenant.setting beside tenant.membership: without an active tenant every query returns zero rows',
      {
        hint: 'pass the tenant the user acts in: withTenant(db, { user, tenant }, fn, options)',
      },
    );
  }
  const label = `user ${describeTenantValue(user)}${tenant === undefined ? '' : ` (tenant ${describeTenantValue(tenant)})`}`;
  return { assignments, label, tenant, type: settings.type, propagate: settings.propagate };
}
