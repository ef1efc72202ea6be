import { afterAll, beforeAll, expect, it } from 'vitest';
import pg from 'pg';
import { CompiledQuery, Kysely, PostgresDialect, sql, type Transaction } from 'kysely';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { compileScript } from '../../src/compile/render-sql.js';
import { withTenant } from '../../src/tenant/with-tenant.js';
import { TenantContextError } from '../../src/tenant/tenant-context-error.js';
import type { TenantClient } from '../../src/tenant/tenant-handle.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';

/**
 * The handle withTenant gives its function stops working when the tenant
 * transaction ends (issue 14): a reference kept past the end throws
 * TenantContextError('handle-closed') and sends nothing, and release() inside
 * the function does not give the connection to anyone else. "Sends nothing"
 * is checked on the server: no row in rh.trace (the app role may write it,
 * no policy on it), and the backend's last statement in pg_stat_activity is
 * still the one that ended the transaction.
 */

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';

interface Schema {
  'rh.notes': { tenant_id: string; id: number };
  'rh.trace': { note: string };
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

describeEachServer('the withTenant handle', (ctx) => {
  const app = uniqueName('handle_app');
  const pools: pg.Pool[] = [];

  function appPool(max: number): pg.Pool {
    const pool = new pg.Pool({ connectionString: ctx.db.urlAs(app), max });
    pool.on('error', () => undefined);
    pools.push(pool);
    return pool;
  }

  async function traces(): Promise<string[]> {
    return (await ctx.db.query<{ note: string }>('SELECT note FROM rh.trace ORDER BY note')).rows.map((r) => r.note);
  }

  async function lastStatement(pid: unknown): Promise<string> {
    return (await ctx.db.query<{ query: string }>('SELECT query FROM pg_stat_activity WHERE pid = $1', [pid])).rows[0].query;
  }

  beforeAll(async () => {
    await ctx.db.runScript(`
      CREATE ROLE ${app} LOGIN PASSWORD 'secret';
      CREATE SCHEMA rh;
      CREATE TABLE rh.notes (tenant_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
      INSERT INTO rh.notes VALUES ('${A}', 1), ('${A}', 2), ('${B}', 11);
      CREATE TABLE rh.trace (note text NOT NULL);
      GRANT USAGE ON SCHEMA rh TO ${app};
      GRANT SELECT, INSERT ON rh.notes, rh.trace TO ${app};
    `);
    const model = await parsePolicy([
      { file: 'p.yaml', text: `version: 1\nroles:\n  app: [${app}]\nschemas:\n  rh:\n    tables:\n      notes: tenant\n` },
    ]);
    await ctx.db.runScript(compileScript(model));
  });

  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
    await ctx.db.query(`DROP OWNED BY ${app}`).catch(() => undefined);
    await ctx.db.query(`DROP ROLE IF EXISTS ${app}`).catch(() => undefined);
  });

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
      const error = await expectClosed(() => client.query("INSERT INTO rh.trace VALUES ('kept client')"));
      expect(error.message).toMatch(/after its tenant transaction ended/);
      await expectClosed(() => client.query({ text: "INSERT INTO rh.trace VALUES ('kept config')" }));
      expect((await expectClosed(() => client.release())).message).toMatch(/after its tenant transaction ended/);
    }
    await expectClosed(() => keptQuery!("INSERT INTO rh.trace VALUES ('kept query function')"));

    expect(await traces()).toEqual([]);
    expect(await lastStatement(pid)).toBe(before);
    // The connection itself is fine: the next call runs on it as its own tenant.
    expect(await withTenant(pool, B, async (c) => (await c.query('SELECT pg_backend_pid() AS pid, count(*)::int AS n FROM rh.notes')).rows[0])).toEqual({ pid, n: 1 });
  });

  it("pg: release() inside the function throws, keeps the connection from another tenant's transaction, and rolls back", async () => {
    const pool = appPool(1);
    const inside = deferred();
    const other = deferred();
    let otherStarted = false;
    const seen: Record<string, unknown> = {};
    const first = withTenant(pool, A, async (client) => {
      await client.query("INSERT INTO rh.trace VALUES ('written before release')");
      inside.resolve();
      await other.promise; // B is now waiting for the only connection
      expect(pool.waitingCount).toBe(1);
      const released = await failure(() => client.release());
      seen.releaseCode = (released as TenantContextError).code;
      seen.waitingAfterRelease = pool.waitingCount;
      seen.idleAfterRelease = pool.idleCount;
      seen.queryAfterRelease = ((await failure(() => client.query("INSERT INTO rh.trace VALUES ('after release')"))) as TenantContextError).code;
      seen.otherStartedBeforeEnd = otherStarted;
      return 'returned normally';
    });
    await inside.promise;
    const second = withTenant(pool, B, async (client) => {
      otherStarted = true;
      return (await client.query('SELECT id FROM rh.notes ORDER BY id')).rows.map((r) => r.id as number);
    });
    other.resolve();

    const error = await failure(() => first);
    expect(error).toBeInstanceOf(TenantContextError);
    expect((error as TenantContextError).code).toBe('handle-closed');
    expect((error as TenantContextError).message).toMatch(/release\(\)/);
    expect(seen).toEqual({ releaseCode: 'handle-closed', waitingAfterRelease: 1, idleAfterRelease: 0, queryAfterRelease: 'handle-closed', otherStartedBeforeEnd: false });
    expect(await second).toEqual([11]);
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
    const compiled = CompiledQuery.raw("INSERT INTO rh.trace VALUES ('kept compiled query')");
    const ids = await withTenant(db, A, async (trx) => {
      kept = trx;
      builder = trx.insertInto('rh.trace').values({ note: 'kept builder' });
      derived = trx.withSchema('rh');
      return (await trx.selectFrom('rh.notes').select('id').orderBy('id').execute()).map((r) => r.id);
    });
    expect(ids).toEqual([1, 2]);
    const pid = (await pool.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    const before = await lastStatement(pid);

    const error = await expectClosed(() => kept!.executeQuery(compiled));
    expect(error.message).toMatch(/Kysely transaction .* after its tenant transaction ended/);
    await expectClosed(() => kept!.insertInto('rh.trace').values({ note: 'kept trx' }).execute());
    await expectClosed(() => builder!.execute());
    await expectClosed(() => sql`INSERT INTO rh.trace VALUES ('kept sql template')`.execute(kept!));
    await expectClosed(() => derived!.executeQuery(compiled));
    await expectClosed(() => derived!.insertInto('trace' as never).values({ note: 'derived' } as never).execute());

    expect(await traces()).toEqual([]);
    expect(await lastStatement(pid)).toBe(before);
  });

  it('Kysely: the handle works as the transaction inside the function, and a nested withTenant on it is still refused', async () => {
    await ctx.db.query('DELETE FROM rh.trace');
    const pool = appPool(2);
    const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
    const outcome = await withTenant(db, A, async (trx) => {
      await trx.insertInto('rh.trace').values({ note: 'inside' }).execute();
      const nested = await failure(() => withTenant(trx as never, A, async () => 1));
      const rows = await trx.withSchema('rh').selectFrom('notes' as never).select('id' as never).execute();
      return { nested: (nested as TenantContextError).code, rows: rows.length, isTransaction: trx.isTransaction };
    });
    expect(outcome).toEqual({ nested: 'nested-transaction', rows: 2, isTransaction: true });
    expect(await traces()).toEqual(['inside']);
    await ctx.db.query('DELETE FROM rh.trace');
  });
});
