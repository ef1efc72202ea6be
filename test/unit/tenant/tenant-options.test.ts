import { describe, expect, it } from 'vitest';
import { TenantContextError } from '../../../src/tenant/tenant-context-error.js';
import { resolveTenantOptions } from '../../../src/tenant/tenant-options.js';
import { beginTenantSql } from '../../../src/tenant/with-tenant.js';

describe('resolveTenantOptions', () => {
  const policy = { tenant: { setting: 'acme.org_id', type: 'bigint' as const } };

  it('defaults to the policy file defaults, app.tenant_id and uuid', () => {
    expect(resolveTenantOptions(undefined)).toEqual({ setting: 'app.tenant_id', type: 'uuid' });
    expect(resolveTenantOptions({})).toEqual({ setting: 'app.tenant_id', type: 'uuid' });
  });

  it("takes the loaded policy's tenant section", () => {
    expect(resolveTenantOptions({ policy })).toEqual({ setting: 'acme.org_id', type: 'bigint' });
  });

  it("lets setting and type given explicitly win over the policy's", () => {
    expect(resolveTenantOptions({ policy, setting: 'x.y' })).toEqual({ setting: 'x.y', type: 'bigint' });
    expect(resolveTenantOptions({ policy, type: 'text' })).toEqual({ setting: 'acme.org_id', type: 'text' });
  });

  it('refuses a setting that PostgreSQL would not take as a custom setting, and an unknown type', () => {
    for (const setting of ['tenant_id', '', 'app.', '.x', "app.x'; --", 'app.tenant id', 42]) {
      const run = () => resolveTenantOptions({ setting: setting as string });
      expect(run).toThrow(TenantContextError);
      expect(run).toThrow(/not a valid custom setting name/);
    }
    expect(() => resolveTenantOptions({ type: 'number' as never })).toThrow(/unknown tenant type/);
  });
});

const SET_CONFIG = { setting: 'app.tenant_id', type: 'uuid', propagate: 'set-config' } as const;

describe('beginTenantSql', () => {
  it('opens the transaction and sets the tenant transaction-locally in one query', () => {
    expect(beginTenantSql(SET_CONFIG, '00000000-0000-4000-8000-00000000000a')).toBe(
      "BEGIN; SELECT pg_catalog.set_config('app.tenant_id', '00000000-0000-4000-8000-00000000000a', true)",
    );
  });

  it('escapes quotes and backslashes of a text tenant', () => {
    expect(beginTenantSql(SET_CONFIG, "o'brien\\")).toBe("BEGIN; SELECT pg_catalog.set_config('app.tenant_id', E'o''brien\\\\', true)");
  });
});
