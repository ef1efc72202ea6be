import { beforeAll, describe, expect, it } from 'vitest';
import { parseSync } from 'libpg-query';
import { loadParser } from '../../../src/policy/expression.js';
import { validatePolicy } from '../../../src/policy/validate-policy.js';
import { desiredState } from '../../../src/compile/desired-state.js';
import { currentTenantSql, settingValueFor, tenantLookupOf } from '../../../src/compile/tenant-lookup.js';
import { compileScript } from '../../../src/compile/render-sql.js';

/** The keys of issue 17 for the claim model and Citus: `engine` and `tenant.claim`, validated with their place. */

const HEAD = 'version: 1\nroles: { app: [app_user] }\n';
const TABLES = 'schemas:\n  app:\n    tables:\n      items: tenant\n';

function check(text: string) {
  return validatePolicy([{ file: 'p.yaml', text }]);
}

beforeAll(loadParser);

describe('tenant.claim', () => {
  it('reads a dotted path into its segments; the setting defaults to request.jwt.claims', () => {
    const { model, diagnostics } = check(`${HEAD}tenant: { claim: app_metadata.org_id, column: org_id }\n${TABLES}`);
    expect(diagnostics).toEqual([]);
    expect(model!.tenant).toEqual({ setting: 'request.jwt.claims', type: 'uuid', column: 'org_id', claim: ['app_metadata', 'org_id'] });
    expect(model!.engine).toBeUndefined();
  });

  it('keeps a setting named beside the claim', () => {
    const { model } = check(`${HEAD}tenant: { setting: app.claims, claim: org, type: bigint }\n${TABLES}`);
    expect(model!.tenant).toMatchObject({ setting: 'app.claims', claim: ['org'], type: 'bigint' });
  });

  it('compiles the claim into a jsonb path of quoted literals, once per statement', () => {
    const { model } = check(`${HEAD}tenant: { claim: app_metadata.org_id }\n${TABLES}`);
    const guard = desiredState(model!).tables[0].policies[0];
    expect(guard.using).toContain(`(NULLIF(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb #>> ARRAY['app_metadata', 'org_id'])`);
    expect(guard.using).toMatch(/^tenant_id = \(SELECT CASE WHEN /);
  });

  it.each([
    ["a'b", 'a quote'],
    ['a;b', 'a semicolon'],
    ['a}b', 'a brace'],
    ['a,b', 'a comma'],
    ['a..b', 'an empty segment'],
    ['.a', 'a leading dot'],
    ['a b', 'a space'],
    ['a\\b', 'a backslash'],
    ['"a"', 'double quotes'],
    ['x'.repeat(64), 'a segment of 64 characters'],
    [Array.from({ length: 17 }, () => 'a').join('.'), '17 segments'],
  ])('refuses the claim path %j (%s) at its place, with a hint', (claim) => {
    const { model, diagnostics } = check(`${HEAD}tenant:\n  claim: ${JSON.stringify(claim)}\n${TABLES}`);
    expect(model).toBeUndefined();
    expect(diagnostics).toEqual([
      {
        location: { file: 'p.yaml', line: 4, column: 10 },
        message: `the claim path ${JSON.stringify(claim)} is not a valid claim path`,
        hint: 'write claim names of letters, digits, `_` and `-` (at most 63 each) joined by dots, e.g. `app_metadata.org_id` (at most 16 names)',
      },
    ]);
  });

  it('a claim that passes the grammar reaches the SQL only as string literals', () => {
    const sql = currentTenantSql({ setting: 'request.jwt.claims', type: 'text', claim: ['__proto__', 'a-b', '0'] });
    const strings: string[] = [];
    const walk = (node: unknown): void => {
      if (!node || typeof node !== 'object') return;
      if (Array.isArray(node)) return node.forEach(walk);
      const sval = (node as { A_Const?: { sval?: { sval: string } } }).A_Const?.sval?.sval;
      if (sval !== undefined) strings.push(sval);
      Object.values(node).forEach(walk);
    };
    walk(parseSync(`SELECT ${sql}`));
    expect(strings).toEqual(expect.arrayContaining(['__proto__', 'a-b', '0']));
    expect(JSON.parse(settingValueFor({ claim: ['__proto__', 'a-b'] }, 'acme'))).toEqual(JSON.parse('{"__proto__": {"a-b": "acme"}}'));
  });

  it('refuses a claim that is not a string', () => {
    const { diagnostics } = check(`${HEAD}tenant:\n  claim: [a, b]\n${TABLES}`);
    expect(diagnostics.map((d) => [d.location.line, d.location.column, d.message])).toEqual([[4, 10, '`tenant.claim` must be a non-empty string']]);
  });
});

describe('engine', () => {
  it('postgres (the default) or citus; citus drops the scalar sub-select of the lookup', () => {
    const { model } = check(`${HEAD}engine: citus\n${TABLES}`);
    expect(model!.engine).toBe('citus');
    expect(desiredState(model!).tables[0].policies[0].using).toBe(`tenant_id = NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid`);
    expect(currentTenantSql(tenantLookupOf({ ...model!, engine: 'postgres' }))).toBe(
      `(SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid)`,
    );
  });

  it('refuses an unknown engine with a did-you-mean', () => {
    const { diagnostics } = check(`${HEAD}engine: citrus\n${TABLES}`);
    expect(diagnostics).toEqual([{ location: { file: 'p.yaml', line: 3, column: 9 }, message: 'unknown engine `citrus`', hint: 'did you mean `citus`?' }]);
  });

  it('refuses `via` under engine: citus, at the via, naming where the engine is declared (in another file too)', () => {
    const result = validatePolicy([
      { file: 'a.yaml', text: `${HEAD}engine: citus\n` },
      {
        file: 'b.yaml',
        text: 'version: 1\nschemas:\n  app:\n    tables:\n      items: tenant\n      lines:\n        via: { parent: items, columns: [item_id], references: [id] }\n',
      },
    ]);
    expect(result.diagnostics).toEqual([
      {
        location: { file: 'b.yaml', line: 7, column: 9 },
        message: '`via` is not available with `engine: citus` (a.yaml:3:1): Citus refuses sub-queries in the policies of distributed tables',
        hint: 'add the tenant column to this table (every distributed table carries it as its distribution column) and declare it `column: ...` instead of `via`',
      },
    ]);
  });

  it('refuses a hand-written expression with a sub-query under engine: citus, and accepts it under postgres', () => {
    const table = `schemas:\n  app:\n    tables:\n      items:\n        policies:\n          - { name: extra, to: [app_user], using: "id IN (SELECT 1)" }\n`;
    expect(check(`${HEAD}${table}`).diagnostics).toEqual([]);
    const { diagnostics } = check(`${HEAD}engine: citus\n${table}`);
    expect(diagnostics.map((d) => [d.location.line, d.message])).toEqual([
      [9, 'this expression holds a sub-query, which Citus refuses in the policies of distributed tables (`engine: citus` (p.yaml:3:1))'],
    ]);
  });

  it('is declared once', () => {
    const { diagnostics } = check(`${HEAD}engine: citus\n${TABLES}`.replace('engine: citus', 'engine: citus'));
    expect(diagnostics).toEqual([]);
    const twice = validatePolicy([
      { file: 'a.yaml', text: `${HEAD}engine: citus\n` },
      { file: 'b.yaml', text: 'version: 1\nengine: postgres\n' },
    ]);
    expect(twice.diagnostics.map((d) => d.message)).toEqual(['`engine` is declared twice: at a.yaml:3:1 and at b.yaml:2:1']);
  });
});

describe('the compiled script', () => {
  it('names the claim and the engine in its header', () => {
    const { model } = check(`${HEAD}engine: citus\ntenant: { claim: app_metadata.org_id, column: org_id }\n${TABLES}`);
    expect(compileScript(model!)).toContain(`-- Tenant setting request.jwt.claims, claim app_metadata.org_id (uuid), engine citus; app roles: app_user.`);
  });
});

describe('tenant.membership with the claim model and Citus', () => {
  const MEMBERSHIP = [
    'tenant:',
    '  column: org_id',
    '  claim: app_metadata.org_id',
    '  membership:',
    '    table: app.memberships',
    '    user_column: user_id',
    '    tenant_column: org_id',
    '    user: { setting: request.jwt.claims, claim: sub, type: uuid }',
  ].join('\n');
  const MEM_TABLES = `${TABLES}      memberships: { mode: exempt, reason: membership lookup }\n`;

  it('refuses engine: citus with tenant.membership, at the membership key, with a hint', () => {
    const { model, diagnostics } = check(`${HEAD}engine: citus\n${MEMBERSHIP}\n${MEM_TABLES}`);
    expect(model).toBeUndefined();
    expect(diagnostics).toEqual([
      {
        location: { file: 'p.yaml', line: 7, column: 3 },
        message:
          '`tenant.membership` is not available with `engine: citus` (p.yaml:3:1): its policies read the tenants of the user with a sub-select, which Citus refuses in the policies of distributed tables',
        hint: 'drop `engine: citus`, or drop `tenant.membership` and put the active tenant in `tenant.setting` or `tenant.claim` (checking membership in the application)',
      },
    ]);
  });

  it('tenant.claim beside membership is the active tenant, read with the claim lookup; the user claim too', () => {
    const { model, diagnostics } = check(`${HEAD}${MEMBERSHIP}\n${MEM_TABLES}`);
    expect(diagnostics).toEqual([]);
    expect(model!.tenant.setting).toBe('request.jwt.claims');
    expect(model!.tenant.membership!.activeTenant).toBe(true);
    const script = compileScript(model!);
    expect(script).toContain(`#>> ARRAY['app_metadata', 'org_id']`);
    expect(script).toContain(`#>> ARRAY['sub']`);
    expect(script).toContain('active tenant from request.jwt.claims claim app_metadata.org_id');
  });

  it('refuses one setting for the user claim and an active tenant without a claim', () => {
    const text = MEMBERSHIP.replace('  claim: app_metadata.org_id', '  setting: request.jwt.claims');
    const { diagnostics } = check(`${HEAD}${text}\n${MEM_TABLES}`);
    expect(diagnostics.map((d) => d.message)).toEqual([
      '`tenant.setting` and `tenant.membership.user.setting` are both `request.jwt.claims`: one setting cannot hold the user and the active tenant',
    ]);
  });
});
