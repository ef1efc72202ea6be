import { AsyncLocalStorage } from 'node:async_hooks';
import { TenantContextError } from './tenant-context-error.js';
import { assertTenantShape, describeTenantValue, type TenantId } from './validate-tenant.js';

/**
 * The tenant of the current request, carried by AsyncLocalStorage through
 * every await, callback and timer that the request's code starts, so that
 * data-access code deep down calls `withCurrentTenant(db, fn)` without the
 * tenant being passed along. Concurrent requests each see their own tenant:
 * the store follows the async call chain, not a global variable.
 */
export interface TenantContext {
  /**
   * Run `fn` (and everything it starts) as `tenantId`'s request. Refuses a
   * missing or empty tenant, and a nested `run` for another tenant: a request
   * belongs to one tenant. A nested `run` for the same tenant is allowed.
   * The type-specific validation happens when the tenant is used, still
   * before any SQL (use `validateTenantId` to answer 400 early).
   */
  run<R>(tenantId: TenantId, fn: () => R): R;
  /** The tenant of the current request, or undefined outside `run`. */
  current(): TenantId | undefined;
  /** The tenant of the current request; throws TenantContextError('no-tenant-context') outside `run`. */
  require(): TenantId;
}

interface RequestScope {
  readonly tenantId: TenantId;
}

const requestScope = new AsyncLocalStorage<RequestScope>();

/** Loose equality of two raw tenant ids: 42, 42n and '42' name the same tenant. */
function sameTenant(a: TenantId, b: TenantId): boolean {
  return String(a) === String(b);
}

export const tenantContext: TenantContext = Object.freeze({
  run<R>(tenantId: TenantId, fn: () => R): R {
    assertTenantShape(tenantId);
    const outer = requestScope.getStore();
    if (outer && !sameTenant(outer.tenantId, tenantId)) {
      throw new TenantContextError(
        'tenant-mismatch',
        `tenantContext.run for tenant ${describeTenantValue(tenantId)} inside the context of tenant ${describeTenantValue(outer.tenantId)}`,
        { hint: 'a request belongs to one tenant; run work for several tenants one after another, each in its own tenantContext.run' },
      );
    }
    return requestScope.run({ tenantId }, fn);
  },
  current(): TenantId | undefined {
    return requestScope.getStore()?.tenantId;
  },
  require(): TenantId {
    const scope = requestScope.getStore();
    if (!scope) {
      throw new TenantContextError('no-tenant-context', 'no tenant context: this code runs outside tenantContext.run', {
        hint: 'resolve the tenant once per request in a middleware and run the handler inside tenantContext.run(tenantId, handler), or pass the tenant to withTenant explicitly',
      });
    }
    return scope.tenantId;
  },
});
