import { describe, expect, it } from 'vitest';
import { loadModule, parseSync } from 'libpg-query';
import { TenantContextError } from '../../../src/tenant/tenant-context-error.js';
import { resolveTenantOptions, setTenantSql } from '../../../src/tenant/tenant-options.js';
import { beginSettingsSql, beginTenantSql } from '../../../src/tenant/with-tenant.js';
import { resolveIdentity } from '../../../src/tenant/member-identity.js';

describe('resolveTenantOptions', () => {
  const policy = { tenant: { setting: 'acme.org_id', type: 'bigint' as const } };

  it('defaults to the policy file defaults, app.tenant_id and uuid', () => {
    expect(resolveTenantOptions(undefined)).toEqual({ setting: 'app.tenant_id', type: 'uuid', propagate: 'set-config' });
    expect(resolveTenantOptions({})).toEqual({ setting: 'app.tenant_id', type: 'uuid', propagate: 'set-config' });
  });

  it("takes the loaded policy's tenant section", () => {
    expect(resolveTenantOptions({ policy })).toEqual({ setting: 'acme.org_id', type: 'bigint', propagate: 'set-config' });
  });

  it("lets setting and type given explicitly win over the policy's", () => {
    expect(resolveTenantOptions({ policy, setting: 'x.y' })).toEqual({ setting: 'x.y', type: 'bigint', propagate: 'set-config' });
    expect(resolveTenantOptions({ policy, type: 'text' })).toEqual({ setting: 'acme.org_id', type: 'text', propagate: 'set-config' });
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

describe('the claim model and propagate: set-local', () => {
  it("takes the policy's claim and engine: citus sets the tenant with SET LOCAL", () => {
    const policy = { engine: 'citus' as const, tenant: { setting: 'request.jwt.claims', type: 'uuid' as const, claim: ['app_metadata', 'org_id'] } };
    const settings = resolveTenantOptions({ policy });
    expect(settings).toEqual({ setting: 'request.jwt.claims', type: 'uuid', claim: ['app_metadata', 'org_id'], propagate: 'set-local' });
    expect(setTenantSql(settings, 'a')).toBe(`SET LOCAL "request"."jwt"."claims" = '{"app_metadata":{"org_id":"a"}}'`);
    expect(resolveTenantOptions({ policy, propagate: 'set-config' }).propagate).toBe('set-config');
    expect(resolveTenantOptions({ claim: 'sub' })).toMatchObject({ claim: ['sub'], propagate: 'set-config' });
  });

  it('quotes a hostile text tenant in the claims JSON and in SET LOCAL as one literal', async () => {
    await loadModule();
    const hostile = String.raw`x'; DROP TABLE t; --\"}`;
    const local = setTenantSql({ setting: 'app.tenant_id', type: 'text', propagate: 'set-local' }, hostile);
    const set = parseSync(local) as {
      stmts: Array<{ stmt: { VariableSetStmt: { name: string; is_local: boolean; args: Array<{ A_Const: { sval: { sval: string } } }> } } }>;
    };
    expect(set.stmts).toHaveLength(1);
    expect(set.stmts[0].stmt.VariableSetStmt).toMatchObject({ name: 'app.tenant_id', is_local: true });
    expect(set.stmts[0].stmt.VariableSetStmt.args[0].A_Const.sval.sval).toBe(hostile);
    const claims = setTenantSql({ setting: 'request.jwt.claims', type: 'text', claim: ['org'], propagate: 'set-config' }, hostile);
    const call = parseSync(claims) as { stmts: unknown[] };
    expect(call.stmts).toHaveLength(1);
    expect(JSON.stringify(call)).toContain(JSON.stringify(JSON.stringify({ org: hostile })));
  });

  it('refuses a claim path or a propagate value it cannot use, before any SQL', () => {
    for (const claim of ["a'b", 'a..b', '', [], ['a', 'b c'], 42]) {
      expect(() => resolveTenantOptions({ claim: claim as never })).toThrow(/not a valid claim path/);
    }
    expect(() => resolveTenantOptions({ propagate: 'set' as never })).toThrow(/unknown propagate/);
    // The setting name reaches SET LOCAL as identifiers: one that is not a plain custom setting name is refused first.
    for (const setting of ['app."x', 'app.x = 1; DROP TABLE t; --', 'app.x"."y']) {
      expect(() => resolveTenantOptions({ setting, propagate: 'set-local' })).toThrow(/not a valid custom setting name/);
    }
  });
});

describe('the user form with the claim model and set-local', () => {
  it('sets the user and the active tenant (as its claims JSON) with one SET LOCAL each; a hostile text value stays one literal', async () => {
    await loadModule();
    const hostile = String.raw`x'; DROP TABLE t; --\"}`;
    const policy = {
      engine: 'postgres' as const,
      tenant: {
        setting: 'request.jwt.claims',
        type: 'text' as const,
        claim: ['app_metadata', 'org_id'],
        membership: { user: { setting: 'app.user_id', type: 'text' as const }, activeTenant: true },
      },
    };
    const identity = resolveIdentity({ user: hostile, tenant: hostile }, { policy, propagate: 'set-local' });
    expect(identity.assignments).toEqual([
      ['app.user_id', hostile],
      ['request.jwt.claims', JSON.stringify({ app_metadata: { org_id: hostile } })],
    ]);
    const sql = beginSettingsSql(identity);
    const parsed = parseSync(sql) as {
      stmts: Array<{ stmt: Record<string, { name?: string; is_local?: boolean; args?: Array<{ A_Const: { sval: { sval: string } } }> }> }>;
    };
    expect(parsed.stmts.map((s) => Object.keys(s.stmt)[0])).toEqual(['TransactionStmt', 'VariableSetStmt', 'VariableSetStmt']);
    const sets = parsed.stmts.slice(1).map((s) => s.stmt.VariableSetStmt);
    expect(sets.map((s) => [s.name, s.is_local, s.args![0].A_Const.sval.sval])).toEqual([
      ['app.user_id', true, hostile],
      ['request.jwt.claims', true, JSON.stringify({ app_metadata: { org_id: hostile } })],
    ]);
    expect(beginSettingsSql(resolveIdentity({ user: 'u', tenant: 't' }, { policy }))).toBe(
      `BEGIN; SELECT pg_catalog.set_config('app.user_id', 'u', true), pg_catalog.set_config('request.jwt.claims', '{"app_metadata":{"org_id":"t"}}', true)`,
    );
  });
});
