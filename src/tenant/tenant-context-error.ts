import { RlsctlError } from './rlsctl-error.js';

/**
 * Why a tenant-scoped call was refused. Every one of these is raised before
 * the refused call sends any SQL:
 *
 * - `invalid-tenant`: the tenant value is missing or does not fit the tenant type;
 * - `invalid-options`: the setting, the type or the database handle is unusable;
 * - `no-tenant-context`: `withCurrentTenant` outside `tenantContext.run`;
 * - `nested-transaction`: `withTenant` inside another `withTenant`;
 * - `tenant-mismatch`: a call for another tenant inside a request scoped to one tenant;
 * - `handle-closed`: the client or Kysely transaction that withTenant handed
 *   over was used after its transaction ended, or `release()` was called on it
 *   (see tenant-handle.ts); nothing is sent on it.
 */
export type TenantContextErrorCode = 'invalid-tenant' | 'invalid-options' | 'no-tenant-context' | 'nested-transaction' | 'tenant-mismatch' | 'handle-closed';

/**
 * A tenant-scoped call was refused. `code` lets a web framework map it to a
 * response: `invalid-tenant` is the client's fault (400), the others are bugs
 * in the server's code (500).
 */
export class TenantContextError extends RlsctlError {
  readonly exitCode = 2 as const;
  readonly code: TenantContextErrorCode;
  constructor(code: TenantContextErrorCode, message: string, options?: { hint?: string; cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
