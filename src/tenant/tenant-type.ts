/** The tenant types of the policy file (`tenant.type`); src/policy/model.ts re-exports them. */
export const TENANT_TYPES = ['uuid', 'bigint', 'integer', 'text'] as const;
export type TenantType = (typeof TENANT_TYPES)[number];
