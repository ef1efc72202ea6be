import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { setImmediate as nextTurn } from 'node:timers/promises';
import pg from 'pg';
import { CompiledQuery, Kysely, PostgresDialect, sql, type Transaction } from 'kysely';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { compileScript } from '../../src/compile/render-sql.js';
import type { PolicyModel } from '../../src/policy/model.js';
import { withTenant, withCurrentTenant } from '../../src/tenant/with-tenant.js';
import { tenantContext } from '../../src/tenant/tenant-context.js';
import { TenantContextError } from '../../src/tenant/tenant-context-error.js';
import type { WithTenantOptions } from '../../src/tenant/tenant-options.js';
import type { TenantClient } from '../../src/tenant/tenant-handle.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';

/**
 * withTenant on real servers, as an app role under the policies that rlsctl
 * compiles, the same tests through a pg.Pool, a pg.Pool in pipeline mode and
 * Kysely (PostgresDialect over a pg.Pool).
 */

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';
const ROWS: Record<string, number[]> = { [A]: [1, 2, 3], [B]: [11, 12] };

function policyYaml(app: string, setting: string, type: string, schema: string, table: string, column: string): string {
  return `version: 1
tenant:
  setting: ${setting}
  type: ${type}
  column: ${column}
roles:
  app: [${app}]
schemas:
  ${schema}:
    tables:
      ${table}: tenant
`;
}

type Row = Record<string, unknown>;
/** Raw SQL on whatever withTenant handed over: a pg.PoolClient or a Kysely Transaction. */
type Query = (sql: string, params?: unknown[]) => Promise<Row[]>;
type Db = pg.Pool | Kysely<Schema>;

interface Schema {
  'rt.notes': { tenant_id: string; id: number; body: string | null };
  'rt.trace': { note: string };
}

function queryOn(handle: pg.PoolClient | Transaction<Schema>): Query {
  if ('executeQuery' in handle) {
    return async (sql, params = []) => (await handle.executeQuery(CompiledQuery.raw(sql, params))).rows as Row[];
  }
  return async (sql, params = []) => (await handle.query(sql, params)).rows as Row[];
}

/** withTenant with a driver-neutral function, for tests that run on both paths. */
function run<R>(db: Db, tenant: unknown, fn: (q: Query) => Promise<R>, options?: WithTenantOptions): Promise<R> {
  const call = withTenant as (d: Db, t: unknown, f: (h: pg.PoolClient | Transaction<Schema>) => Promise<R>, o?: WithTenantOptions) => Promise<R>;
  return call(db, tenant, (handle) => fn(queryOn(handle)), options);
}

function runCurrent<R>(db: Db, fn: (q: Query) => Promise<R>, options?: WithTenantOptions): Promise<R> {
  const call = withCurrentTenant as (d: Db, f: (h: pg.PoolClient | Transaction<Schema>) => Promise<R>, o?: WithTenantOptions) => Promise<R>;
  return call(db, (handle) => fn(queryOn(handle)), options);
}

async function refusal(promise: Promise<unknown>): Promise<TenantContextError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TenantContextError);
  return error as TenantContextError;
}

/** The error of a call that may throw or reject; undefined if it did neither. */
async function failure(call: () => unknown): Promise<unknown> {
  try {
    await call();
    return undefined;
  } catch (error) {
    return error;
  }
}

async function expectClosed(call: () => unknown): Promise<TenantContextError> {
  const error = await failure(call);
  expect(error).toBeInstanceOf(TenantContextError);
  expect((error as TenantContextError).code).toBe('handle-closed');
  return error as TenantContextError;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describeEachServer('withTenant', (ctx) => {
  const app = uniqueName('tenant_app');
  const pools: pg.Pool[] = [];
  const models: Record<'uuid' | 'bigint' | 'text', PolicyModel> = {} as never;

  function appPool(max: number, pipeline = false): pg.Pool {
    const pool = new pg.Pool({ connectionString: ctx.db.urlAs(app), max, pipeline });
    // An idle client whose backend is terminated (a test kills one; dropping the
    // database ends the rest) emits 'error' on the pool: never an unhandled one.
    pool.on('error', () => undefined);
    pools.push(pool);
    return pool;
  }

  beforeAll(async () => {
    await ctx.db.runScript(`
      CREATE ROLE ${app} LOGIN PASSWORD 'secret';
      CREATE SCHEMA rt;
      CREATE TABLE rt.notes (tenant_id uuid NOT NULL, id int NOT NULL, body text, PRIMARY KEY (tenant_id, id));
      CREATE TABLE rt.trace (note text NOT NULL);
      INSERT INTO rt.notes (tenant_id, id) VALUES ${Object.entries(ROWS)
        .flatMap(([t, ids]) => ids.map((id) => `('${t}', ${id})`))
        .join(', ')};
      CREATE SCHEMA rt_org;
      CREATE TABLE rt_org.accounts (org_id bigint NOT NULL, id int NOT NULL, PRIMARY KEY (org_id, id));
      INSERT INTO rt_org.accounts VALUES (9007199254740993, 1), (9007199254740993, 2), (7, 3);
      CREATE SCHEMA rt_txt;
      CREATE TABLE rt_txt.labels (tenant_key text NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_key, id));
      INSERT INTO rt_txt.labels VALUES (E'o''brien\\\\ ; SELECT 1 --', 1), ('plain', 2);
      GRANT USAGE ON SCHEMA rt, rt_org, rt_txt TO ${app};
      GRANT SELECT, INSERT, UPDATE, DELETE ON rt.notes, rt.trace, rt_org.accounts, rt_txt.labels TO ${app};
    `);
    models.uuid = await parsePolicy([{ file: 'uuid.yaml', text: policyYaml(app, 'app.tenant_id', 'uuid', 'rt', 'notes', 'tenant_id') }]);
    models.bigint = await parsePolicy([{ file: 'org.yaml', text: policyYaml(app, 'rt.org_id', 'bigint', 'rt_org', 'accounts', 'org_id') }]);
    models.text = await parsePolicy([{ file: 'txt.yaml', text: policyYaml(app, 'rt.tenant_key', 'text', 'rt_txt', 'labels', 'tenant_key') }]);
    for (const model of Object.values(models)) await ctx.db.runScript(compileScript(model, { transactional: true }));
  });

  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
    await ctx.db.query(`DROP OWNED BY ${app}`).catch(() => undefined);
    await ctx.db.query(`DROP ROLE IF EXISTS ${app}`).catch(() => undefined);
  });

  it('refuses a checked-out pg client and a Kysely transaction, sending nothing on them', async () => {
    const pool = appPool(1);
    const client = await pool.connect();
    const query = vi.spyOn(client, 'query');
    try {
      expect((await refusal(withTenant(client as never, A, async () => 1))).code).toBe('invalid-options');
      expect(query).not.toHaveBeenCalled();
    } finally {
      query.mockRestore();
      client.release();
    }
    const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
    const code = await db.transaction().execute(async (trx) => (await refusal(withTenant(trx as never, A, async () => 1))).code);
    expect(code).toBe('nested-transaction');
  });

  // The handle fn receives stops working when the tenant transaction ends (issue 14): a reference
  // kept past the end throws TenantContextError('handle-closed') and sends nothing, and release()
  // inside fn does not give the connection to anyone else. "Sends nothing" is checked on the
  // server: no row in rt.trace (the app role may write it, no policy on it), and the backend's
  // last statement in pg_stat_activity is still the one that ended the transaction.
  describe('the handle', () => {
    async function traces(): Promise<string[]> {
      return (await ctx.db.query<{ note: string }>('SELECT note FROM rt.trace ORDER BY note')).rows.map((r) => r.note);
    }

    async function lastStatement(pid: unknown): Promise<string> {
      return (await ctx.db.query<{ query: string }>('SELECT query FROM pg_stat_activity WHERE pid = $1', [pid])).rows[0].query;
    }

    it('pg: a client kept after COMMIT or ROLLBACK throws handle-closed and sends nothing', async () => {
      const pool = appPool(1);
      let kept: TenantClient | undefined;
      let keptQuery: TenantClient['query'] | undefined;
      const pid = await withTenant(pool, A, async (client) => {
        kept = client;
        keptQuery = client.query;
        return (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      });
      const boom = new Error('boom');
      let keptAfterRollback: TenantClient | undefined;
      await expect(
        withTenant(pool, A, async (client) => {
          keptAfterRollback = client;
          throw boom;
        }),
      ).rejects.toBe(boom);
      const before = await lastStatement(pid);
      expect(before).toBe('ROLLBACK');

      for (const client of [kept!, keptAfterRollback!]) {
        const error = await expectClosed(() => client.query("INSERT INTO rt.trace VALUES ('kept client')"));
        expect(error.message).toMatch(/after its tenant transaction ended/);
        await expectClosed(() => client.query({ text: "INSERT INTO rt.trace VALUES ('kept config')" }));
        expect((await expectClosed(() => client.release())).message).toMatch(/after its tenant transaction ended/);
      }
      await expectClosed(() => keptQuery!("INSERT INTO rt.trace VALUES ('kept query function')"));

      expect(await traces()).toEqual([]);
      expect(await lastStatement(pid)).toBe(before);
      // The connection itself is fine: the next call runs on it as its own tenant.
      expect(await withTenant(pool, B, async (c) => (await c.query('SELECT pg_backend_pid() AS pid, count(*)::int AS n FROM rt.notes')).rows[0])).toEqual({
        pid,
        n: ROWS[B].length,
      });
    });

    it("pg: release() inside the function throws, keeps the connection from another tenant's transaction, and rolls back", async () => {
      const pool = appPool(1);
      const inside = deferred();
      const other = deferred();
      let otherStarted = false;
      const seen: Record<string, unknown> = {};
      const first = withTenant(pool, A, async (client) => {
        await client.query("INSERT INTO rt.trace VALUES ('written before release')");
        inside.resolve();
        await other.promise; // B is now waiting for the only connection
        expect(pool.waitingCount).toBe(1);
        const released = await failure(() => client.release());
        seen.releaseCode = (released as TenantContextError).code;
        seen.waitingAfterRelease = pool.waitingCount;
        seen.idleAfterRelease = pool.idleCount;
        seen.queryAfterRelease = ((await failure(() => client.query("INSERT INTO rt.trace VALUES ('after release')"))) as TenantContextError).code;
        seen.otherStartedBeforeEnd = otherStarted;
        return 'returned normally';
      });
      await inside.promise;
      const second = withTenant(pool, B, async (client) => {
        otherStarted = true;
        return (await client.query('SELECT id FROM rt.notes ORDER BY id')).rows.map((r) => r.id as number);
      });
      other.resolve();

      const error = await failure(() => first);
      expect(error).toBeInstanceOf(TenantContextError);
      expect((error as TenantContextError).code).toBe('handle-closed');
      expect((error as TenantContextError).message).toMatch(/release\(\)/);
      expect(seen).toEqual({
        releaseCode: 'handle-closed',
        waitingAfterRelease: 1,
        idleAfterRelease: 0,
        queryAfterRelease: 'handle-closed',
        otherStartedBeforeEnd: false,
      });
      expect(await second).toEqual(ROWS[B]);
      // What the function wrote before release() was rolled back, not committed.
      expect(await traces()).toEqual([]);
      expect(pool.totalCount).toBe(1);
    });

    it('Kysely: a transaction kept after the end, its builders and what derives from it throw handle-closed and send nothing', async () => {
      const pool = appPool(1);
      pool.on('connect', (client) => client.on('error', () => undefined));
      const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
      let kept: Transaction<Schema> | undefined;
      let builder: { execute(): Promise<unknown> } | undefined;
      let derived: Transaction<Schema> | undefined;
      const compiled = CompiledQuery.raw("INSERT INTO rt.trace VALUES ('kept compiled query')");
      const ids = await withTenant(db, A, async (trx) => {
        kept = trx;
        builder = trx.insertInto('rt.trace').values({ note: 'kept builder' });
        derived = trx.withSchema('rt');
        return (await trx.selectFrom('rt.notes').select('id').orderBy('id').execute()).map((r) => r.id);
      });
      expect(ids).toEqual(ROWS[A]);
      const pid = (await pool.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      const before = await lastStatement(pid);

      const error = await expectClosed(() => kept!.executeQuery(compiled));
      expect(error.message).toMatch(/Kysely transaction .* after its tenant transaction ended/);
      await expectClosed(() => kept!.insertInto('rt.trace').values({ note: 'kept trx' }).execute());
      await expectClosed(() => builder!.execute());
      await expectClosed(() => sql`INSERT INTO rt.trace VALUES ('kept sql template')`.execute(kept!));
      await expectClosed(() => derived!.executeQuery(compiled));
      await expectClosed(() =>
        derived!
          .insertInto('trace' as never)
          .values({ note: 'derived' } as never)
          .execute(),
      );

      expect(await traces()).toEqual([]);
      expect(await lastStatement(pid)).toBe(before);
    });

    it('Kysely: the handle works as the transaction inside the function, and a nested withTenant on it is still refused', async () => {
      await ctx.db.query('DELETE FROM rt.trace');
      const pool = appPool(2);
      const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
      const outcome = await withTenant(db, A, async (trx) => {
        await trx.insertInto('rt.trace').values({ note: 'inside' }).execute();
        const nested = await failure(() => withTenant(trx as never, A, async () => 1));
        const rows = await trx
          .withSchema('rt')
          .selectFrom('notes' as never)
          .select('id' as never)
          .execute();
        return { nested: (nested as TenantContextError).code, rows: rows.length, isTransaction: trx.isTransaction };
      });
      expect(outcome).toEqual({ nested: 'nested-transaction', rows: ROWS[A].length, isTransaction: true });
      expect(await traces()).toEqual(['inside']);
      await ctx.db.query('DELETE FROM rt.trace');
    });
  });

  // 'pg-pipeline': a pg.Pool created with pipeline: true (pg 8.23), where queries go on the wire without waiting.
  for (const driver of ['pg', 'pg-pipeline', 'kysely'] as const) {
    describe(`through ${driver}`, () => {
      /** The pg.Pool under a handle, which the plain queries after withTenant use. */
      const poolOf = new Map<Db, pg.Pool>();
      function handle(max: number): Db {
        const pool = appPool(max, driver === 'pg-pipeline');
        // On the Kysely path Kysely holds the checked-out client, so withTenant
        // cannot guard it: pg emits 'error' on a client whose backend died, and
        // pg-pool only listens while the client is idle. docs/runtime.md asks
        // Kysely users for this line; the pg path needs none (withTenant listens).
        if (driver === 'kysely') pool.on('connect', (client) => client.on('error', () => undefined));
        const db: Db = driver !== 'kysely' ? pool : new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
        poolOf.set(db, pool);
        return db;
      }
      let single: Db;
      let five: Db;

      beforeAll(() => {
        single = handle(1);
        five = handle(5);
      });

      it("sees only its tenant's rows, and returns what the function returns", async () => {
        for (const tenant of [A, B]) {
          const ids = await run(five, tenant, async (q) => (await q('SELECT id FROM rt.notes ORDER BY id')).map((r) => r.id));
          expect(ids).toEqual(ROWS[tenant]);
        }
      });

      it('commits what the function wrote', async () => {
        const id = { pg: 100, 'pg-pipeline': 101, kysely: 102 }[driver];
        await run(five, A, (q) => q('INSERT INTO rt.notes (tenant_id, id) VALUES ($1, $2)', [A, id]));
        const { rows } = await ctx.db.query('SELECT tenant_id FROM rt.notes WHERE id = $1', [id]);
        expect(rows).toEqual([{ tenant_id: A }]);
        await ctx.db.query('DELETE FROM rt.notes WHERE id = $1', [id]);
      });

      it('leaves no tenant on the connection after it finishes (pool of 1)', async () => {
        const inside = await run(single, A, async (q) => (await q('SELECT pg_backend_pid() AS pid, count(*)::int AS n FROM rt.notes'))[0]);
        expect(inside.n).toBe(ROWS[A].length);
        const after = await poolOf
          .get(single)!
          .query("SELECT pg_backend_pid() AS pid, current_setting('app.tenant_id', true) AS tenant, (SELECT count(*)::int FROM rt.notes) AS n");
        expect(after.rows[0].pid).toBe(inside.pid);
        expect(['', null]).toContain(after.rows[0].tenant);
        expect(after.rows[0].n).toBe(0);
      });

      it('rolls back, rethrows and leaves no tenant on the connection after a thrown error (pool of 1)', async () => {
        const boom = new Error('boom');
        let pid: unknown;
        const outcome = run(single, A, async (q) => {
          pid = (await q('SELECT pg_backend_pid() AS pid'))[0].pid;
          await q('INSERT INTO rt.notes (tenant_id, id) VALUES ($1, 200)', [A]);
          throw boom;
        });
        await expect(outcome).rejects.toBe(boom);
        const after = await poolOf
          .get(single)!
          .query("SELECT pg_backend_pid() AS pid, current_setting('app.tenant_id', true) AS tenant, (SELECT count(*)::int FROM rt.notes) AS n");
        expect(after.rows[0]).toMatchObject({ pid, n: 0 });
        expect(['', null]).toContain(after.rows[0].tenant);
        expect((await ctx.db.query('SELECT 1 FROM rt.notes WHERE id = 200')).rowCount).toBe(0);
      });

      it('rejects, committing nothing, when a statement failed and the function caught its error', async () => {
        const outcome = run(single, A, async (q) => {
          await q('INSERT INTO rt.notes (tenant_id, id) VALUES ($1, 300)', [A]);
          await q('SELECT 1 / 0').catch(() => undefined);
          return 'done';
        });
        await expect(outcome).rejects.toThrow(/roll/i);
        expect((await ctx.db.query('SELECT 1 FROM rt.notes WHERE id = 300')).rowCount).toBe(0);
        expect((await poolOf.get(single)!.query('SELECT count(*)::int AS n FROM rt.notes')).rows[0].n).toBe(0);
      });

      it('keeps 200 concurrent calls alternating between two tenants apart on a pool of 5', async () => {
        const pids = new Set<unknown>();
        const results = await Promise.all(
          Array.from({ length: 200 }, (_, i) => {
            const tenant = i % 2 === 0 ? A : B;
            return run(five, tenant, async (q) => {
              const [first] = await q("SELECT pg_backend_pid() AS pid, current_setting('app.tenant_id') AS tenant");
              pids.add(first.pid);
              await nextTurn();
              const rows = await q('SELECT tenant_id, id FROM rt.notes ORDER BY id');
              return { tenant, seen: first.tenant, rows };
            });
          }),
        );
        for (const { tenant, seen, rows } of results) {
          expect(seen).toBe(tenant);
          expect(rows.map((r) => r.id)).toEqual(ROWS[tenant]);
          expect(new Set(rows.map((r) => r.tenant_id))).toEqual(new Set([tenant]));
        }
        expect(pids.size).toBeGreaterThan(1);
        expect(pids.size).toBeLessThanOrEqual(5);
      });

      it('refuses a nested withTenant, for another tenant and for the same, without taking a connection (pool of 1)', async () => {
        const pool = poolOf.get(single)!;
        const connect = vi.spyOn(pool, 'connect');
        try {
          const outcome = await run(single, A, async (q) => {
            const before = connect.mock.calls.length;
            const other = await refusal(run(single, B, (inner) => inner('SELECT 1')));
            const same = await refusal(run(single, A, (inner) => inner('SELECT 1')));
            const current = await refusal(tenantContext.run(A, () => runCurrent(single, (inner) => inner('SELECT 1'))));
            return {
              codes: [other.code, same.code, current.code],
              connects: connect.mock.calls.length - before,
              ids: (await q('SELECT id FROM rt.notes ORDER BY id')).map((r) => r.id),
            };
          });
          expect(outcome).toEqual({ codes: ['nested-transaction', 'nested-transaction', 'nested-transaction'], connects: 0, ids: ROWS[A] });
          // Once it has ended, the next call is not taken for a nested one.
          expect(await run(single, B, async (q) => (await q('SELECT count(*)::int AS n FROM rt.notes'))[0].n)).toBe(ROWS[B].length);
        } finally {
          connect.mockRestore();
        }
      });

      it('sends no query for an invalid tenant, setting or type (counted on the real pool)', async () => {
        const pool = poolOf.get(five)!;
        const connect = vi.spyOn(pool, 'connect');
        const query = vi.spyOn(pool, 'query');
        try {
          const noop = (q: Query) => q('SELECT 1');
          const cases: Array<[unknown, WithTenantOptions | undefined, string]> = [
            ['not-a-uuid', undefined, 'invalid-tenant'],
            [`${A}'; DROP TABLE rt.notes; --`, undefined, 'invalid-tenant'],
            ['', undefined, 'invalid-tenant'],
            [null, undefined, 'invalid-tenant'],
            [undefined, undefined, 'invalid-tenant'],
            [42, undefined, 'invalid-tenant'],
            ['12x', { policy: models.bigint }, 'invalid-tenant'],
            [2n ** 63n, { type: 'bigint' }, 'invalid-tenant'],
            [A, { setting: 'tenant_id' }, 'invalid-options'],
            [A, { type: 'int' as never }, 'invalid-options'],
          ];
          for (const [tenant, options, code] of cases) {
            expect((await refusal(run(five, tenant, noop, options))).code).toBe(code);
          }
          expect((await refusal(runCurrent(five, noop))).code).toBe('no-tenant-context');
          expect((await refusal(tenantContext.run(B, () => run(five, A, noop)))).code).toBe('tenant-mismatch');
          expect(connect).not.toHaveBeenCalled();
          expect(query).not.toHaveBeenCalled();
          // The counters do count: one valid call takes one connection.
          await run(five, A, noop);
          expect(connect).toHaveBeenCalledTimes(1);
        } finally {
          connect.mockRestore();
          query.mockRestore();
        }
      });

      it('withCurrentTenant runs as the tenant of tenantContext.run', async () => {
        const [a, b] = await Promise.all(
          [A, B].map((tenant) =>
            tenantContext.run(tenant, async () => {
              await nextTurn();
              return runCurrent(five, async (q) => (await q('SELECT id FROM rt.notes ORDER BY id')).map((r) => r.id));
            }),
          ),
        );
        expect(a).toEqual(ROWS[A]);
        expect(b).toEqual(ROWS[B]);
      });

      it('takes setting and type from the policy: a bigint tenant as number, bigint or decimal string', async () => {
        const options = { policy: models.bigint };
        const org = 9007199254740993n; // 2^53 + 1: a number could not hold it
        for (const tenant of [org, org.toString()]) {
          const rows = await run(five, tenant, (q) => q("SELECT id, current_setting('rt.org_id') AS org FROM rt_org.accounts ORDER BY id"), options);
          expect(rows).toEqual([
            { id: 1, org: '9007199254740993' },
            { id: 2, org: '9007199254740993' },
          ]);
        }
        expect(await run(five, 7, (q) => q('SELECT id FROM rt_org.accounts'), options)).toEqual([{ id: 3 }]);
        expect((await refusal(run(five, 2 ** 53 + 2, (q) => q('SELECT 1'), options))).code).toBe('invalid-tenant');
      });

      it('sets a text tenant with quotes, backslashes and SQL in it unchanged', async () => {
        const tenant = "o'brien\\ ; SELECT 1 --";
        const rows = await run(five, tenant, (q) => q("SELECT id, current_setting('rt.tenant_key') AS tenant FROM rt_txt.labels ORDER BY id"), {
          policy: models.text,
        });
        expect(rows).toEqual([{ id: 1, tenant }]);
      });

      it('destroys a connection whose ROLLBACK failed instead of returning it to the pool (pool of 1)', async () => {
        const pool = poolOf.get(single)!;
        let pid: unknown;
        const outcome = run(single, A, async (q) => {
          pid = (await q('SELECT pg_backend_pid() AS pid'))[0].pid;
          await q('SELECT pg_terminate_backend(pg_backend_pid())');
        });
        await expect(outcome).rejects.toThrow();
        const next = await run(single, B, async (q) => (await q('SELECT pg_backend_pid() AS pid, count(*)::int AS n FROM rt.notes'))[0]);
        expect(next.pid).not.toBe(pid);
        expect(next.n).toBe(ROWS[B].length);
        expect(pool.totalCount).toBe(1);
      });
    });
  }
});
