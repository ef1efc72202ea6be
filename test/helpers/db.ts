import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { inject, describe, beforeAll, afterAll } from 'vitest';
import { runScript } from '../../src/db/run-script.js';
import type { TestServer } from './global-setup.js';

/** The servers of this run (PostgreSQL 18 and 14 by default, or DATABASE_URL's). */
export function testServers(): TestServer[] {
  return inject('servers');
}

export interface TestDatabase {
  server: TestServer;
  name: string;
  /** Connection string to this database as the superuser. */
  url: string;
  /** A connection string to this database as another (login) role, password `secret`. */
  urlAs(role: string): string;
  /** A query as the superuser on a pooled connection. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
  /** Run a script statement by statement (CREATE INDEX CONCURRENTLY and all), as psql would. */
  runScript(sql: string): Promise<void>;
  /** A dedicated client as the superuser; the caller ends it. */
  client(): Promise<pg.Client>;
  pool: pg.Pool;
  drop(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/**
 * A fresh database on `server`, so test files can run in parallel. Roles are
 * cluster-wide: tests that make roles must use names unique to the file (see
 * `uniqueName`) or IF NOT EXISTS logic.
 */
export async function createTestDatabase(server: TestServer, prefix = 't'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = withDatabase(server.url, name);
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => undefined);
  return {
    server,
    name,
    url,
    urlAs(role: string) {
      const u = new URL(url);
      u.username = role;
      u.password = 'secret';
      return u.toString();
    },
    query: (sql, params) => pool.query(sql, params as unknown[]),
    async runScript(sql: string) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await runScript(client, sql);
      } finally {
        await client.end();
      }
    },
    async client() {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      return client;
    },
    pool,
    async drop() {
      await pool.end();
      const admin = new pg.Client({ connectionString: server.url });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
      await admin.end();
    },
  };
}

/** A name unique to this test run, for roles (which are shared by every database of a server). */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

/**
 * `describe` once per test server, with a fresh database for the block:
 * `describeEachServer('apply', (ctx) => { it(..., async () => ctx.db.query(...)) })`.
 */
export function describeEachServer(title: string, body: (ctx: { db: TestDatabase; server: TestServer }) => void): void {
  for (const server of testServers()) {
    describe(`${title} [${server.name}]`, () => {
      const ctx = { server } as { db: TestDatabase; server: TestServer };
      beforeAll(async () => {
        ctx.db = await createTestDatabase(server);
      });
      afterAll(async () => {
        await ctx.db?.drop();
      });
      body(ctx);
    });
  }
}
