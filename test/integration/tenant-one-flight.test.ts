import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { compileScript } from '../../src/compile/render-sql.js';
import { withTenant } from '../../src/tenant/with-tenant.js';
import { withTenantQuery } from '../../src/tenant/with-tenant-query.js';
import { tenantContext } from '../../src/tenant/tenant-context.js';
import { TenantContextError } from '../../src/tenant/tenant-context-error.js';
import { DatabaseError } from '../../src/tenant/rlsctl-error.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { createCanary, expectUntouched, snapshotDatabase } from '../helpers/hostile.js';

/**
 * withTenantQuery (issue 17 item 5): one statement as one tenant in one round
 * trip, on real servers, as an app role under the policies rlsctl compiles.
 * Round trips are counted on the wire by a loopback proxy between the pool and
 * the server: a flight is client data sent after the server last answered.
 */

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';

/** A TCP proxy on loopback that counts the client's flights and the server's ReadyForQuery messages. */
class FlightCounter {
  flights = 0;
  readyForQuery = 0;
  #serverSpoke = true;
  #server: net.Server;
  #sockets = new Set<net.Socket>();

  private constructor(server: net.Server) {
    this.#server = server;
  }

  static async start(target: { host: string; port: number }): Promise<{ proxy: FlightCounter; port: number }> {
    const server = net.createServer();
    const proxy = new FlightCounter(server);
    server.on('connection', (client) => {
      const upstream = net.connect(target.port, target.host);
      proxy.#sockets.add(client).add(upstream);
      client.on('data', (chunk) => {
        if (proxy.#serverSpoke) proxy.flights++;
        proxy.#serverSpoke = false;
        upstream.write(chunk);
      });
      // Counts ReadyForQuery by its header: 'Z', length 5, status I/T/E. Good enough for the small answers here.
      upstream.on('data', (chunk) => {
        proxy.#serverSpoke = true;
        for (let i = 0; i + 5 < chunk.length; i++) {
          if (chunk[i] === 0x5a && chunk.readInt32BE(i + 1) === 5 && [0x49, 0x54, 0x45].includes(chunk[i + 5])) proxy.readyForQuery++;
        }
        client.write(chunk);
      });
      const close = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('close', close).on('error', close);
      upstream.on('close', close).on('error', close);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { proxy, port: (server.address() as net.AddressInfo).port };
  }

  reset(): void {
    this.flights = 0;
    this.readyForQuery = 0;
    this.#serverSpoke = true;
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

describeEachServer('withTenantQuery', (ctx) => {
  const app = uniqueName('one_flight_app');
  const pools: pg.Pool[] = [];
  const stops: (() => Promise<void>)[] = [];

  function appPool(extra: pg.PoolConfig = {}): pg.Pool {
    const pool = new pg.Pool({ connectionString: ctx.db.urlAs(app), max: 1, ...extra });
    pool.on('error', () => undefined);
    pools.push(pool);
    return pool;
  }

  /** What the pool's one connection sees after a call: its backend and the tenant setting. */
  async function after(pool: pg.Pool): Promise<{ pid: number; tenant: string | null; notes: number }> {
    const { rows } = await pool.query(
      "SELECT pg_backend_pid() AS pid, current_setting('app.tenant_id', true) AS tenant, (SELECT count(*)::int FROM rt.notes) AS notes",
    );
    return rows[0] as { pid: number; tenant: string | null; notes: number };
  }

  async function pidOf(pool: pg.Pool): Promise<number> {
    return (await after(pool)).pid;
  }

  async function traces(): Promise<string[]> {
    return (await ctx.db.query<{ note: string }>('SELECT note FROM rt.trace ORDER BY note')).rows.map((r) => r.note);
  }

  beforeAll(async () => {
    await ctx.db.runScript(`
      CREATE ROLE ${app} LOGIN PASSWORD 'secret';
      CREATE SCHEMA rt;
      CREATE TABLE rt.notes (tenant_id uuid NOT NULL, id int NOT NULL, body text, PRIMARY KEY (tenant_id, id));
      CREATE TABLE rt.trace (note text NOT NULL);
      INSERT INTO rt.notes (tenant_id, id) VALUES ('${A}', 1), ('${A}', 2), ('${A}', 3), ('${B}', 11);
      GRANT USAGE ON SCHEMA rt TO ${app};
      GRANT SELECT, INSERT, UPDATE, DELETE ON rt.notes, rt.trace TO ${app};
    `);
    const model = await parsePolicy([
      {
        file: 'p.yaml',
        text: `version: 1\ntenant:\n  setting: app.tenant_id\n  type: uuid\nroles:\n  app: [${app}]\nschemas:\n  rt:\n    tables:\n      notes: tenant\n`,
      },
    ]);
    await ctx.db.runScript(compileScript(model, { transactional: true }));
    await createCanary(ctx.db);
  });

  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
    for (const stop of stops) await stop();
    await ctx.db.query(`DROP OWNED BY ${app}`).catch(() => undefined);
    await ctx.db.query(`DROP ROLE IF EXISTS ${app}`).catch(() => undefined);
  });

  for (const pipeline of [false, true]) {
    it(`sees the tenant's rows only, and the tenant ends with the statement${pipeline ? ' (pipeline pool)' : ''}`, async () => {
      const pool = appPool({ pipeline });
      const pid = await pidOf(pool);
      const result = await withTenantQuery<{ id: number; pid: number }>(
        pool,
        A,
        'SELECT id, pg_backend_pid() AS pid FROM rt.notes WHERE id > $1 ORDER BY id',
        [0],
      );
      expect(result.rows.map((r) => r.id)).toEqual([1, 2, 3]);
      expect(result.command).toBe('SELECT');
      expect(result.rowCount).toBe(3);
      expect(result.fields.map((f) => f.name)).toEqual(['id', 'pid']);
      expect((await withTenantQuery(pool, B, 'SELECT id FROM rt.notes')).rows).toEqual([{ id: 11 }]);
      // The same pooled connection, next statement: no tenant, so the policies show nothing.
      expect(await after(pool)).toEqual({ pid, tenant: '', notes: 0 });
      expect(result.rows[0].pid).toBe(pid);
    });
  }

  it('sends the tenant and the statement in one flight (withTenant takes three)', async () => {
    const { proxy, port } = await FlightCounter.start({ host: '127.0.0.1', port: new URL(ctx.db.url).port ? Number(new URL(ctx.db.url).port) : 5432 });
    stops.push(() => proxy.stop());
    const u = new URL(ctx.db.urlAs(app));
    u.hostname = '127.0.0.1';
    u.port = String(port);
    const pool = appPool({ connectionString: u.toString() });
    await pidOf(pool); // connect first: the startup exchange is not part of the call

    proxy.reset();
    const one = await withTenantQuery(pool, A, 'SELECT id FROM rt.notes WHERE id = $1', [2]);
    expect(one.rows).toEqual([{ id: 2 }]);
    expect({ flights: proxy.flights, readyForQuery: proxy.readyForQuery }).toEqual({ flights: 1, readyForQuery: 1 });

    // The counter is honest: the transaction of withTenant shows its three round trips.
    proxy.reset();
    await withTenant(pool, A, (client) => client.query('SELECT id FROM rt.notes WHERE id = $1', [2]));
    expect({ flights: proxy.flights, readyForQuery: proxy.readyForQuery }).toEqual({ flights: 3, readyForQuery: 3 });
  });

  it('a write: INSERT ... RETURNING commits, and WITH CHECK refuses another tenant', async () => {
    const pool = appPool();
    const inserted = await withTenantQuery(pool, A, 'INSERT INTO rt.notes (tenant_id, id, body) VALUES ($1, $2, $3) RETURNING id, body', [A, 40, 'mine']);
    expect(inserted.command).toBe('INSERT');
    expect(inserted.rows).toEqual([{ id: 40, body: 'mine' }]);
    expect((await ctx.db.query('SELECT tenant_id, body FROM rt.notes WHERE id = 40')).rows).toEqual([{ tenant_id: A, body: 'mine' }]);

    const error = await rejection(withTenantQuery(pool, A, 'INSERT INTO rt.notes (tenant_id, id) VALUES ($1, 41) RETURNING id', [B]));
    expect((error as { code?: string }).code).toBe('42501');
    expect((error as Error).message).toMatch(/row-level security/);
    expect((await ctx.db.query('SELECT count(*)::int AS n FROM rt.notes WHERE id = 41')).rows[0].n).toBe(0);
    expect((await after(pool)).tenant).toBe('');
  });

  for (const pipeline of [false, true]) {
    it(`a failing statement rolls back its writes, the tenant ends, the connection stays usable${pipeline ? ' (pipeline pool)' : ''}`, async () => {
      const pool = appPool({ pipeline });
      const pid = await pidOf(pool);
      const error = await rejection(
        withTenantQuery(
          pool,
          A,
          "WITH w AS (INSERT INTO rt.trace VALUES ('rolled back') RETURNING 1), n AS (INSERT INTO rt.notes (tenant_id, id) VALUES ($1, 50) RETURNING 1) SELECT 1 / 0 FROM w, n",
          [A],
        ),
      );
      expect((error as { code?: string }).code).toBe('22012');
      expect(await traces()).toEqual([]);
      expect((await ctx.db.query('SELECT count(*)::int AS n FROM rt.notes WHERE id = 50')).rows[0].n).toBe(0);
      expect(await after(pool)).toEqual({ pid, tenant: '', notes: 0 });
      // A syntax error (the statement never runs) leaves the connection usable too.
      expect(((await rejection(withTenantQuery(pool, A, 'SELEC 1'))) as { code?: string }).code).toBe('42601');
      expect((await withTenantQuery(pool, A, 'SELECT count(*)::int AS n FROM rt.notes WHERE id < 10')).rows).toEqual([{ n: 3 }]);
      expect(await after(pool)).toEqual({ pid, tenant: '', notes: 0 });
    });
  }

  it('a statement that opens a transaction (BEGIN) is rejected and its connection destroyed, not pooled with the tenant', async () => {
    const pool = appPool();
    const pid = await pidOf(pool);
    const error = await rejection(withTenantQuery(pool, A, 'BEGIN'));
    expect(error).toBeInstanceOf(DatabaseError);
    expect((error as Error).message).toMatch(/left a transaction open/);
    const next = await after(pool);
    expect(next.pid).not.toBe(pid);
    expect(next).toMatchObject({ tenant: null, notes: 0 });
  });

  it("parses rows as pg does: types, rowMode array, the pool's type parsers", async () => {
    const pool = appPool();
    const sqlText =
      "SELECT $1::int AS n, 9007199254740993::bigint AS big, '2020-01-02T03:04:05Z'::timestamptz AS t, '{\"a\":[1]}'::jsonb AS j, ARRAY[1,2] AS arr, NULL::text AS nothing";
    const direct = await pool.query(sqlText, [5]);
    const oneFlight = await withTenantQuery(pool, A, sqlText, [5]);
    expect(oneFlight.rows).toEqual(direct.rows);
    expect(oneFlight.rows[0].t).toBeInstanceOf(Date);
    expect(oneFlight.fields.map((f) => f.dataTypeID)).toEqual(direct.fields.map((f) => f.dataTypeID));
    expect((await withTenantQuery(pool, A, { text: 'SELECT id, $1::text AS s FROM rt.notes WHERE id = 1', values: ['x'], rowMode: 'array' })).rows).toEqual([
      [1, 'x'],
    ]);
    const types = { getTypeParser: () => (value: string) => `parsed:${value}` };
    expect((await withTenantQuery(pool, A, { text: 'SELECT 7 AS n', types } as never)).rows).toEqual([{ n: 'parsed:7' }]);
  });

  it('sends a compiled Kysely query', async () => {
    const pool = appPool();
    interface Schema {
      'rt.notes': { tenant_id: string; id: number; body: string | null };
    }
    const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
    const compiled = db.selectFrom('rt.notes').select(['id']).where('id', '<', 3).orderBy('id').compile();
    expect((await withTenantQuery(pool, A, compiled)).rows).toEqual([{ id: 1 }, { id: 2 }]);
    expect((await withTenantQuery(pool, B, compiled)).rows).toEqual([]);
    const error = await rejection(withTenantQuery(db as never, A, compiled));
    expect((error as TenantContextError).code).toBe('invalid-options');
  });

  describe('refusals before anything is sent', () => {
    const hostile = [
      "'; DROP TABLE public.hostile_canary; --",
      `${A}'; CREATE ROLE pwned_one_flight; --`,
      '',
      null,
      undefined,
      42,
      { toString: () => A },
      `${A}\0`,
    ];

    it('invalid tenant ids, options and queries take no connection and run nothing', async () => {
      const pool = appPool();
      const before = await snapshotDatabase(ctx.db);
      const errors: unknown[] = [];
      for (const tenant of hostile) errors.push(await rejection(withTenantQuery(pool, tenant as never, 'SELECT 1')));
      errors.push(await rejection(withTenantQuery(pool, A, 'SELECT 1', undefined, { setting: "x'; DROP TABLE public.hostile_canary; --" })));
      errors.push(await rejection(withTenantQuery(pool, A, 'SELECT 1', undefined, { type: 'bogus' as never })));
      errors.push(await rejection(withTenantQuery(pool, A, 'SELECT 1\0; DROP TABLE public.hostile_canary')));
      errors.push(await rejection(withTenantQuery(pool, A, '  ')));
      errors.push(await rejection(withTenantQuery(pool, A, 42 as never)));
      errors.push(await rejection(withTenantQuery(pool, A, { text: 'SELECT 1', name: 'x' } as never)));
      errors.push(await rejection(withTenantQuery(pool, A, 'SELECT $1', 'not an array' as never)));
      errors.push(await rejection(withTenantQuery({} as never, A, 'SELECT 1')));
      const client = await pool.connect();
      try {
        errors.push(await rejection(withTenantQuery(client as never, A, 'SELECT 1')));
      } finally {
        client.release();
      }
      for (const error of errors) expect(error).toBeInstanceOf(TenantContextError);
      expect(errors.slice(0, hostile.length).map((e) => (e as TenantContextError).code)).toEqual(hostile.map(() => 'invalid-tenant'));
      expect(pool.totalCount).toBe(1); // only the connection checked out by hand above
      await expectUntouched(ctx.db, before);
      expect(await traces()).toEqual([]);
    });

    it("refused inside withTenant and inside another tenant's request", async () => {
      const pool = appPool({ max: 2 });
      const nested = await withTenant(pool, A, () => rejection(withTenantQuery(pool, A, 'SELECT 1')));
      expect((nested as TenantContextError).code).toBe('nested-transaction');
      const mismatch = await tenantContext.run(A, () => rejection(withTenantQuery(pool, B, 'SELECT 1')));
      expect((mismatch as TenantContextError).code).toBe('tenant-mismatch');
      expect((await tenantContext.run(A, () => withTenantQuery(pool, A, 'SELECT count(*)::int AS n FROM rt.notes WHERE id < 10'))).rows).toEqual([{ n: 3 }]);
    });
  });
});
