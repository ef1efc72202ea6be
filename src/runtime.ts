/**
 * `rlsctl/runtime`: what an application needs at run time, and nothing of the
 * CLI. Importing it loads only src/tenant/ (no libpg-query, yaml, chalk,
 * commander or rules; `kysely` only when a Kysely instance is passed), which
 * test/unit/tenant/runtime-entry.test.ts checks on the built module graph.
 */
export { withTenant, withCurrentTenant, type KyselyLike, type KyselyTransactionOf } from './tenant/with-tenant.js';
export { withTenantQuery, type TenantQuery } from './tenant/with-tenant-query.js';
export type { TenantClient } from './tenant/tenant-handle.js';
export { tenantContext, type TenantContext } from './tenant/tenant-context.js';
export { TenantContextError, type TenantContextErrorCode } from './tenant/tenant-context-error.js';
export { validateTenantId, type TenantId } from './tenant/validate-tenant.js';
export type { WithTenantOptions } from './tenant/tenant-options.js';
export type { MemberIdentity } from './tenant/member-identity.js';
export type { TenantType } from './tenant/tenant-type.js';
