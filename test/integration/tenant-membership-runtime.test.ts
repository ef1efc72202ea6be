import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import pg from 'pg';
import { CompiledQuery, Kysely, PostgresDialect } from 'kysely';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { compileScript } from '../../src/compile/render-sql.js';
import type { PolicyModel } from '../../src/policy/model.js';
import { withTenant } from '../../src/tenant/with-tenant.js';
import { TenantContextError } from '../../src/tenant/tenant-context-error.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';

/**
 * withTenant's user form, `{ user, tenant? }`, for a policy file with tenant.membership, on real
 * servers as an app role under the compiled policies, through a pg.Pool and Kysely.
 */

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';
const U1 = '00000000-0000-4000-8000-0000000000f1'; // member of A and B
const U2 = '00000000-0000-4000-8000-0000000000f2'; // member of B

function policyYaml(app: string, schema: string, activeTenant: boolean): string {
  return `version: 1
tenant:
  column: org_id
${activeTenant ? '  setting: app.active_org\n' : ''}  membership:
    table: ${schema}.members
    user_column: user_id
    tenant_column: org_id
    user: { setting: app.user_id, type: uuid }
roles:
  app: [${app}]
schemas:
  ${schema}:
    tables:
      members: { mode: exempt, reason: membership table }
      docs: tenant
`;
}

describeEachServer('withTenant, membership model', (ctx) => {
  const app = uniqueName('member_app');
  const pools: pg.Pool[] = [];
  let all: PolicyModel;
  let active: PolicyModel;

  function appPool(max: number): pg.Pool {
    const pool = new pg.Pool({ connectionString: ctx.db.urlAs(app), max });
    pool.on('error', () => undefined);
    pools.push(pool);
    return pool;
  }

  beforeAll(async () => {
    const tables = (schema: string) => `
      CREATE SCHEMA ${schema};
      CREATE TABLE ${schema}.members (user_id uuid NOT NULL, org_id uuid NOT NULL, PRIMARY KEY (user_id, org_id));
      CREATE TABLE ${schema}.docs (org_id uuid NOT NULL, id int PRIMARY KEY);
      INSERT INTO ${schema}.members VALUES ('${U1}', '${A}'), ('${U1}', '${B}'), ('${U2}', '${B}');
      INSERT INTO ${schema}.docs VALUES ('${A}', 1), ('${A}', 2), ('${B}', 3);
      GRANT USAGE ON SCHEMA ${schema} TO ${app};
      GRANT SELECT, INSERT, UPDATE, DELETE ON ${schema}.docs TO ${app};`;
    await ctx.db.runScript(`CREATE ROLE ${app} LOGIN PASSWORD 'secret'; ${tables('mall')} ${tables('mact')}`);
    all = await parsePolicy([{ file: 'all.yaml', text: policyYaml(app, 'mall', false) }]);
    active = await parsePolicy([{ file: 'active.yaml', text: policyYaml(app, 'mact', true) }]);
    for (const model of [all, active]) await ctx.db.runScript(compileScript(model, { transactional: true }));
  });

  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
    await ctx.db.query(`DROP OWNED BY ${app}`).catch(() => undefined);
    await ctx.db.query(`DROP ROLE IF EXISTS ${app}`).catch(() => undefined);
  });

  const ids = (rows: Array<Record<string, unknown>>) => rows.map((r) => r.id);

  it('pg: a user sees the rows of every tenant they are a member of; with the active tenant, that tenant only', async () => {
    const pool = appPool(2);
    const q = 'SELECT id FROM mall.docs ORDER BY id';
    expect(await withTenant(pool, { user: U1 }, async (c) => ids((await c.query(q)).rows), { policy: all })).toEqual([1, 2, 3]);
    expect(await withTenant(pool, { user: U2 }, async (c) => ids((await c.query(q)).rows), { policy: all })).toEqual([3]);
    const qa = 'SELECT id FROM mact.docs ORDER BY id';
    expect(await withTenant(pool, { user: U1, tenant: A }, async (c) => ids((await c.query(qa)).rows), { policy: active })).toEqual([1, 2]);
    // acting in a tenant the user is not a member of: zero rows
    expect(await withTenant(pool, { user: U2, tenant: A }, async (c) => ids((await c.query(qa)).rows), { policy: active })).toEqual([]);
  });

  it('Kysely: the same through a Kysely transaction', async () => {
    const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: appPool(2) }) });
    const read = (sql: string) => async (trx: { executeQuery: (q: CompiledQuery) => Promise<{ rows: unknown[] }> }) =>
      ids((await trx.executeQuery(CompiledQuery.raw(sql))).rows as Array<Record<string, unknown>>);
    expect(await withTenant(db, { user: U1 }, read('SELECT id FROM mall.docs ORDER BY id'), { policy: all })).toEqual([1, 2, 3]);
    expect(await withTenant(db, { user: U1, tenant: B }, read('SELECT id FROM mact.docs ORDER BY id'), { policy: active })).toEqual([3]);
    expect(await withTenant(db, { user: U2, tenant: A }, read('SELECT id FROM mact.docs ORDER BY id'), { policy: active })).toEqual([]);
  });

  it('the user and the active tenant are transaction-local: the next checkout of the pooled connection carries neither', async () => {
    const pool = appPool(1);
    const pid = await withTenant(pool, { user: U1, tenant: A }, async (c) => (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid, { policy: active });
    const client = await pool.connect();
    try {
      const { rows } = await client.query(
        "SELECT pg_backend_pid() AS pid, current_setting('app.user_id', true) AS u, current_setting('app.active_org', true) AS t, (SELECT count(*)::int FROM mall.docs) AS n",
      );
      expect(rows).toEqual([{ pid, u: '', t: '', n: 0 }]);
    } finally {
      client.release();
    }
  });

  it('validates the user like a tenant id and refuses what the policy file cannot use, before any SQL', async () => {
    const pool = appPool(1);
    const connect = vi.spyOn(pool, 'connect');
    const refused = async (identity: unknown, policy: PolicyModel, code: string, message: RegExp) => {
      const error = await (withTenant as (...a: unknown[]) => Promise<unknown>)(pool, identity, async () => 1, { policy }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(TenantContextError);
      expect((error as TenantContextError).code).toBe(code);
      expect((error as Error).message).toMatch(message);
    };
    await refused({ user: "x'; DROP TABLE mall.docs; --" }, all, 'invalid-tenant', /^invalid user id .* for user type uuid: not a uuid/);
    await refused({ user: '' }, all, 'invalid-tenant', /^invalid user id "" for user type uuid: the user id is empty$/);
    await refused({ user: U1, tenant: 'nope' }, active, 'invalid-tenant', /invalid tenant id "nope"/);
    await refused(A, all, 'invalid-options', /needs the user, not a tenant id/);
    await refused({ user: U1, tenant: A }, all, 'invalid-options', /no tenant.setting beside tenant.membership/);
    await refused({ user: U1 }, active, 'invalid-tenant', /without an active tenant every query returns zero rows/);
    await refused({ user: U1, role: 'admin' }, all, 'invalid-options', /takes `user` and `tenant`, not `role`/);
    expect(connect).not.toHaveBeenCalled();
    expect((await ctx.db.query('SELECT count(*)::int AS n FROM mall.docs')).rows).toEqual([{ n: 3 }]);
  });

  it('tenant.claim beside membership: the active tenant goes in as the claims JSON, with set_config and with SET LOCAL, pg and Kysely', async () => {
    await ctx.db.runScript(`
      CREATE SCHEMA mclaim;
      CREATE TABLE mclaim.members (user_id uuid NOT NULL, org_id uuid NOT NULL, PRIMARY KEY (user_id, org_id));
      CREATE TABLE mclaim.docs (org_id uuid NOT NULL, id int PRIMARY KEY);
      INSERT INTO mclaim.members VALUES ('${U1}', '${A}'), ('${U1}', '${B}'), ('${U2}', '${B}');
      INSERT INTO mclaim.docs VALUES ('${A}', 1), ('${A}', 2), ('${B}', 3);
      GRANT USAGE ON SCHEMA mclaim TO ${app};
      GRANT SELECT, INSERT, UPDATE, DELETE ON mclaim.docs TO ${app};`);
    const text = policyYaml(app, 'mclaim', false).replace('  column: org_id\n', '  column: org_id\n  claim: app_metadata.org_id\n');
    const claim = await parsePolicy([{ file: 'claim.yaml', text }]);
    expect(claim.tenant.membership?.activeTenant).toBe(true);
    await ctx.db.runScript(compileScript(claim, { transactional: true }));
    const pool = appPool(2);
    const q = 'SELECT id FROM mclaim.docs ORDER BY id';
    for (const propagate of ['set-config', 'set-local'] as const) {
      const options = { policy: claim, propagate };
      expect(await withTenant(pool, { user: U1, tenant: A }, async (c) => ids((await c.query(q)).rows), options)).toEqual([1, 2]);
      expect(await withTenant(pool, { user: U1, tenant: B }, async (c) => ids((await c.query(q)).rows), options)).toEqual([3]);
      expect(await withTenant(pool, { user: U2, tenant: A }, async (c) => ids((await c.query(q)).rows), options)).toEqual([]);
      const claims = await withTenant(
        pool,
        { user: U1, tenant: A },
        async (c) => (await c.query("SELECT current_setting('request.jwt.claims') AS v")).rows[0].v,
        options,
      );
      expect(JSON.parse(claims)).toEqual({ app_metadata: { org_id: A } });
      const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: appPool(1) }) });
      expect(
        await withTenant(
          db,
          { user: U1, tenant: B },
          async (trx) => ids((await trx.executeQuery(CompiledQuery.raw(q))).rows as Array<Record<string, unknown>>),
          options,
        ),
      ).toEqual([3]);
    }
  });
});
