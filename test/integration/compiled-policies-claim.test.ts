import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseSync } from 'libpg-query';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { loadParser } from '../../src/policy/expression.js';
import { compileScript } from '../../src/compile/render-sql.js';
import { desiredState } from '../../src/compile/desired-state.js';
import { currentTenantSql, settingValueFor, type TenantLookup } from '../../src/compile/tenant-lookup.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { ROOT } from '../helpers/cli.js';
import { runPsql } from '../helpers/psql.js';
import {
  asRaw as asRawHelper,
  asTenant,
  expectHandPolicyCannotWiden,
  expectNothingAfterTenantEnded,
  expectOwnerSubjectBypassNot,
  explainAsTenant,
  type TenantModelUnderTest,
} from '../helpers/tenant-behaviours.js';

/**
 * The six required behaviours (compiled-policies.test.ts, for the setting
 * model) for the other tenant models of issue 17: the tenant as a claim of a
 * JSON setting (PostgREST's request.jwt.claims), and `engine: citus` (no
 * sub-query in any policy), with the setting and with a claim; run as the app
 * role on a real server, 18 and 14.
 */

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';

interface Model {
  name: string;
  header: string;
  setting: string;
  claim?: string[];
  citus: boolean;
}

const MODELS: Model[] = [
  {
    name: 'claim',
    header: 'tenant: { claim: app_metadata.org_id, type: uuid }',
    setting: 'request.jwt.claims',
    claim: ['app_metadata', 'org_id'],
    citus: false,
  },
  { name: 'citus', header: 'engine: citus\ntenant: { setting: app.tenant_id, type: uuid }', setting: 'app.tenant_id', citus: true },
  {
    name: 'citus with a claim',
    header: 'engine: citus\ntenant: { setting: request.jwt.claims, claim: org, type: uuid }',
    setting: 'request.jwt.claims',
    claim: ['org'],
    citus: true,
  },
];

function fixture(name: string, roles: Record<string, string>): string {
  return readFileSync(path.join(ROOT, 'fixtures/compile', name), 'utf8').replace(/\{\{(\w+)\}\}/g, (_, k: string) => roles[k]);
}

/** The compile fixture's policy without `via` (refused with engine: citus) and with the model's tenant section. */
function policyFor(model: Model, roles: Record<string, string>): string {
  return `version: 1
${model.header}
roles:
  app: ['${roles.app}']
  bypass: ['${roles.bypass}']
schemas:
  app:
    tables:
      items:
        indexes:
          - [name]
      logs: tenant
      audit:
        commands: [select, insert]
      currencies: shared
      Odd Name:
        column: Tenant Col
`;
}

/** Every SubLink (EXISTS, IN (SELECT), scalar sub-select) in a parse tree. */
function hasSubLink(node: unknown): boolean {
  if (!node || typeof node !== 'object') return false;
  if (Array.isArray(node)) return node.some(hasSubLink);
  return Object.entries(node).some(([k, v]) => k === 'SubLink' || hasSubLink(v));
}

for (const model of MODELS) {
  describeEachServer(`compiled policies, ${model.name} model`, (ctx) => {
    const roles = { app: uniqueName('app'), owner: uniqueName('owner'), bypass: uniqueName('bypass'), other: uniqueName('other') };
    const value = (tenant: string) => settingValueFor({ claim: model.claim }, tenant);

    const under = (): TenantModelUnderTest => ({ pool: ctx.db.pool, setting: model.setting, value, roles, A, B });
    const asRaw = (role: string, raw: string | null, sql: string) => asRawHelper(under(), role, raw, sql);
    const as = (role: string, tenant: string | null, sql: string) => asTenant(under(), role, tenant, sql);

    beforeAll(async () => {
      await ctx.db.runScript(fixture('schema.sql', roles));
      const parsed = await parsePolicy([{ file: 'policy.yaml', text: policyFor(model, roles) }]);
      const script = compileScript(parsed);
      // As users run it: psql -v ON_ERROR_STOP=1 -f FILE.
      const dir = mkdtempSync(path.join(os.tmpdir(), 'rlsctl-compiled-'));
      try {
        writeFileSync(path.join(dir, 'rls.sql'), script);
        const r = await runPsql(ctx.db.url, ['-f', path.join(dir, 'rls.sql')]);
        expect(r.code, r.stderr).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('1. with a tenant set, a tenant sees and changes only its own rows', async () => {
      expect((await as(roles.app, A, 'SELECT id FROM app.items ORDER BY id')).rows.map((r) => r.id)).toEqual([1, 2]);
      expect((await as(roles.app, B, 'SELECT id FROM app.items ORDER BY id')).rows.map((r) => r.id)).toEqual([3]);
      expect((await as(roles.app, A, "UPDATE app.items SET name = 'x'")).rowCount).toBe(2);
      expect((await as(roles.app, A, 'DELETE FROM app.items WHERE id = 3')).rowCount).toBe(0);
      expect((await as(roles.app, B, 'SELECT v FROM app."Odd Name"')).rows).toEqual([{ v: 2 }]);
      expect((await as(roles.app, A, 'SELECT msg FROM app.logs_a')).rows).toEqual([{ msg: 'a' }]);
    });

    it('2. with no tenant set, every query returns zero rows and raises no error; writes are rejected', async () => {
      for (const table of ['app.items', 'app.logs', 'app.audit', 'app."Odd Name"']) {
        expect((await as(roles.app, null, `SELECT * FROM ${table}`)).rowCount).toBe(0);
      }
      await expect(as(roles.app, null, `INSERT INTO app.items VALUES ('${A}', 10, 'n')`)).rejects.toThrow(/row-level security/);
      expect((await as(roles.app, null, "UPDATE app.items SET name = 'x'")).rowCount).toBe(0);
    });

    it('2. after a transaction-local tenant ended, the empty setting returns zero rows, no error', async () => {
      await expectNothingAfterTenantEnded(under(), ['app.items', 'app.logs', 'app.audit']);
    });

    if (model.claim) {
      const wrong: Array<[string, string]> = [
        ['the claim missing', JSON.stringify({ other: A })],
        ['a claim that is not a uuid', settingValueFor({ claim: model.claim }, 'abc')],
        ['a uuid with a trailing line break', settingValueFor({ claim: model.claim }, `${A}\n`)],
        ['a number', JSON.stringify(model.claim.reduceRight<unknown>((v, k) => ({ [k]: v }), 42))],
        ['an object', JSON.stringify(model.claim.reduceRight<unknown>((v, k) => ({ [k]: v }), { id: A }))],
        ['an array', JSON.stringify(model.claim.reduceRight<unknown>((v, k) => ({ [k]: v }), [A]))],
        ['JSON null', JSON.stringify(model.claim.reduceRight<unknown>((v, k) => ({ [k]: v }), null))],
        ['a JSON string, not an object', JSON.stringify(A)],
        ['an empty object', '{}'],
      ];
      it.each(wrong)('2. claims with %s give zero rows and no error', async (_, raw) => {
        for (const table of ['app.items', 'app.logs', 'app.audit']) expect((await asRaw(roles.app, raw, `SELECT * FROM ${table}`)).rowCount).toBe(0);
        await expect(asRaw(roles.app, raw, `INSERT INTO app.items VALUES ('${A}', 10, 'n')`)).rejects.toThrow(/row-level security/);
      });

      it('2. malformed JSON in the claims setting raises invalid input syntax for type json (22P02), never rows', async () => {
        await expect(asRaw(roles.app, '{"app_metadata": {', 'SELECT * FROM app.items')).rejects.toMatchObject({ code: '22P02' });
        await expect(asRaw(roles.app, 'not json', 'SELECT * FROM app.items')).rejects.toThrow(/invalid input syntax for type json/);
      });

      it('1. the other claims of the token do not matter; an upper-case uuid claim names the same tenant', async () => {
        const withOthers = JSON.parse(value(A)) as Record<string, unknown>;
        withOthers.sub = B;
        withOthers.role = 'authenticated';
        expect((await asRaw(roles.app, JSON.stringify(withOthers), 'SELECT id FROM app.items ORDER BY id')).rows.map((r) => r.id)).toEqual([1, 2]);
        expect((await asRaw(roles.app, value(A.toUpperCase()), 'SELECT id FROM app.items ORDER BY id')).rows.map((r) => r.id)).toEqual([1, 2]);
      });
    }

    it('3. an INSERT or UPDATE that would create or move a row into another tenant is rejected', async () => {
      await expect(as(roles.app, A, `INSERT INTO app.items VALUES ('${B}', 11, 'n')`)).rejects.toThrow(/row-level security/);
      await expect(as(roles.app, A, `UPDATE app.items SET tenant_id = '${B}' WHERE id = 1`)).rejects.toThrow(/row-level security/);
      expect((await as(roles.app, A, `INSERT INTO app.items VALUES ('${A}', 13, 'n')`)).rowCount).toBe(1);
      expect((await as(roles.app, A, "UPDATE app.audit SET what = 'z'")).rowCount).toBe(0);
    });

    it('4. a permissive USING (true) policy added by hand cannot widen access across tenants', async () => {
      await expectHandPolicyCannotWiden(under());
    });

    const explain = (sql: string) => explainAsTenant(under(), sql);

    if (model.citus) {
      it('5. without a sub-select, the tenant lookup is the index condition: evaluated once per index scan, not per row', async () => {
        for (const [sql, column] of [
          ['SELECT * FROM app.items', 'tenant_id'],
          ['SELECT * FROM app.logs', 'tenant_id'],
          ['SELECT * FROM app."Odd Name"', '"Tenant Col"'],
        ]) {
          const plan = await explain(sql);
          const conds = [...plan.matchAll(/"Index Cond":"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]);
          expect(conds.length, plan).toBeGreaterThan(0);
          // The lookup is in the index condition, which PostgreSQL evaluates when the scan starts ...
          for (const cond of conds)
            expect(cond).toMatch(
              new RegExp(`^\\(${column.replace(/"/g, '\\\\"')} = .*current_setting\\('${model.setting.replace('.', '\\.')}'::text, true\\)`),
            );
          // ... and nowhere else: no per-row filter holds it, and there is no sub-plan at all.
          expect(plan).not.toMatch(/"Filter":"[^"]*current_setting/);
          expect(plan).not.toContain('InitPlan');
          expect(plan).not.toContain('SubPlan');
        }
      });
    } else {
      it('5. the tenant lookup is an InitPlan and the tenant predicate an index condition', async () => {
        const plan = await explain('SELECT * FROM app.items');
        expect(plan).toMatch(/"Index Cond":"\(tenant_id = \(?\$0\)?\)"|"Index Cond":"\(tenant_id = \(InitPlan 1\)\.col1\)"/);
        expect(plan).toContain('"Parent Relationship":"InitPlan"');
        expect(plan).not.toContain('"Parent Relationship":"SubPlan"');
      });
    }

    it('6. the owner is subject to the policies; superusers and declared bypass roles are not', async () => {
      await expectOwnerSubjectBypassNot(under());
    });

    if (model.citus) {
      it('no generated policy expression holds a sub-query (Citus refuses them), in the file nor in the catalog', async () => {
        await loadParser();
        const parsed = await parsePolicy([{ file: 'policy.yaml', text: policyFor(model, roles) }]);
        const expressions = desiredState(parsed).tables.flatMap((t) => t.policies.flatMap((p) => [p.using, p.check]).filter((e): e is string => !!e));
        expect(expressions.length).toBeGreaterThan(5);
        const { rows } = await ctx.db.query<{ e: string }>(
          `SELECT pg_get_expr(e, p.polrelid) AS e FROM pg_policy p, LATERAL (VALUES (p.polqual), (p.polwithcheck)) v(e)
            WHERE e IS NOT NULL AND p.polrelid::regclass::text LIKE 'app.%'`,
        );
        expect(rows.length).toBeGreaterThan(5);
        for (const text of [...expressions, ...rows.map((r) => r.e)]) expect(hasSubLink(parseSync(`SELECT (${text})`)), text).toBe(false);
        // The checker itself: the postgres form does hold one.
        expect(hasSubLink(parseSync(`SELECT (${currentTenantSql({ setting: 'app.tenant_id', type: 'uuid' })})`))).toBe(true);
      });
    }
  });
}

/** The claim lookup alone, for every tenant type and both engines: the value for a well-formed claim, NULL otherwise, never an error but for malformed JSON. */
describeEachServer('the claim lookup', (ctx) => {
  async function read(lookup: TenantLookup, raw: string | null): Promise<unknown> {
    const client = await ctx.db.pool.connect();
    try {
      await client.query('BEGIN');
      if (raw !== null) await client.query('SELECT set_config($1, $2, true)', [lookup.setting, raw]);
      return (await client.query(`SELECT (${currentTenantSql(lookup)})::text AS v`)).rows[0].v;
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  }
  const claimsOf = (v: unknown) => JSON.stringify({ a: { b: v } });
  const cases: Array<[TenantLookup['type'], unknown, string | null]> = [
    ['uuid', A, A],
    ['uuid', A.toUpperCase(), A],
    ['uuid', 'abc', null],
    ['uuid', A.replace(/-/g, ''), null],
    ['uuid', `{${A}}`, null],
    ['uuid', 42, null],
    ['uuid', { x: 1 }, null],
    ['uuid', true, null],
    ['bigint', 42, '42'],
    ['bigint', '42', '42'],
    ['bigint', '-9223372036854775808', '-9223372036854775808'],
    ['bigint', '9223372036854775807', '9223372036854775807'],
    ['bigint', '9223372036854775808', null],
    ['bigint', '99999999999999999999', null],
    ['bigint', 1.5, null],
    ['bigint', 'abc', null],
    ['bigint', [1], null],
    ['integer', 2147483647, '2147483647'],
    ['integer', 2147483648, null],
    ['integer', '-2147483649', null],
    ['integer', ' 1', null],
    ['text', 'acme', 'acme'],
    ['text', "o'brien", "o'brien"],
    ['text', 42, null],
    ['text', { x: 'acme' }, null],
    ['text', ['acme'], null],
    ['text', '', null],
  ];
  for (const engine of ['postgres', 'citus'] as const) {
    describe(engine, () => {
      it.each(cases)('%s claim %j reads as %j', async (type, claim, expected) => {
        expect(await read({ setting: 'request.jwt.claims', type, claim: ['a', 'b'], engine }, claimsOf(claim))).toBe(expected);
      });
      it.each(['uuid', 'bigint', 'integer', 'text'] as const)('%s: no setting, an empty setting, no claim and JSON null read as NULL', async (type) => {
        const lookup: TenantLookup = { setting: 'request.jwt.claims', type, claim: ['a', 'b'], engine };
        expect(await read(lookup, null)).toBeNull();
        expect(await read(lookup, '')).toBeNull();
        expect(await read(lookup, '{}')).toBeNull();
        expect(await read(lookup, '{"a": 1}')).toBeNull();
        expect(await read(lookup, claimsOf(null))).toBeNull();
        await expect(read(lookup, '{"a": {"b": ')).rejects.toMatchObject({ code: '22P02' });
      });
    });
  }
});
