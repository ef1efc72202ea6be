import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { createTestDatabase, uniqueName, type TestDatabase } from './db.js';
import { ROOT, runCli, type CliResult } from './cli.js';
import type { TestServer } from './global-setup.js';

/** What the `plan --migration` tests share (test/cli/migration*.test.ts): a database with the fixtures/live schema, the CLI, the tools. */

export const BIN = path.join(ROOT, 'node_modules/.bin');

/**
 * The dbmate binary, from tools/dbmate (installed by the prepare script): the `dbmate` npm package
 * cannot be in the root lock file (see tools/dbmate/package.json). Published for linux-x64 here; on
 * other platforms the dbmate test says it cannot run.
 */
export const DBMATE = path.join(ROOT, 'tools/dbmate/node_modules/@dbmate/linux-x64/bin/dbmate');
export const DBMATE_PLATFORM = process.platform === 'linux' && process.arch === 'x64';

export function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('npm_') && !k.startsWith('PG') && k !== 'DATABASE_URL') env[k] = v;
    const child = spawn(command, args, { cwd: options.cwd ?? ROOT, env: { ...env, NO_COLOR: '1', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

export function fixture(name: string, roles: Record<string, string>): string {
  return readFileSync(path.join(ROOT, 'fixtures/live', name), 'utf8').replace(/\{\{(\w+)\}\}/g, (_, k: string) => roles[k]);
}

/** A work folder whose ancestor has node_modules: a generated kysely migration imports 'kysely' like in a project. */
export const WORK = mkdtempSync(path.join(tmpdir(), 'rlsctl-migration-'));
symlinkSync(path.join(ROOT, 'node_modules'), path.join(WORK, 'node_modules'), 'dir');

export interface Setup {
  db: TestDatabase;
  policy: string;
  dir: string;
  cli(args: string[]): Promise<CliResult>;
  check(): Promise<void>;
}

const databases: TestDatabase[] = [];
/** Drop every database setUp made: call from afterAll. */
export async function dropDatabases(): Promise<void> {
  await Promise.all(databases.splice(0).map((db) => db.drop()));
}

/** A fresh database with the fixture schema (roles unique to it), its policy file, and an empty folder for the migration. */
export async function setUp(server: TestServer): Promise<Setup> {
  const db = await createTestDatabase(server, 'mig');
  databases.push(db);
  const roles = { app: uniqueName('app'), owner: uniqueName('owner'), other: uniqueName('other') };
  await db.runScript(fixture('schema.sql', roles));
  const work = mkdtempSync(path.join(WORK, 'case-'));
  const policy = path.join(work, 'policy.yaml');
  writeFileSync(policy, fixture('policy.yaml', roles));
  const cli = (args: string[]) => runCli([...args, '--policies', policy, '--db', db.url]);
  return {
    db,
    policy,
    dir: path.join(work, 'migrations'),
    cli,
    async check() {
      const result = await cli(['plan', '--check']);
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe('nothing to do: the database matches the policy file\n');
      expect(result.code).toBe(0);
    },
  };
}

export async function writeWith(s: Setup, tool: string): Promise<string[]> {
  const result = await s.cli(['plan', '--migration', tool, '--dir', s.dir, '--name', 'tenant_rls']);
  // The step beyond the tool's usual command, where there is one.
  const notes: Record<string, string> = {
    sql: 'run the _concurrent.sql file after the other, outside any transaction (psql -f, never --single-transaction)',
    kysely: 'the _concurrent migration needs a Migrator created with disableTransactions: true',
    drizzle: 'drizzle runs its migrations in one transaction: run the _concurrent.sql file with psql after drizzle-kit migrate',
  };
  expect(result.stderr).toBe(notes[tool] ? `note: ${notes[tool]}\n` : '');
  expect(result.code).toBe(0);
  const files = [...result.stdout.matchAll(/^wrote (.+)$/gm)].map((m) => path.relative(s.dir, m[1]));
  expect(result.stdout).toMatch(new RegExp(`^${tool} migration: \\d+ statements \\(\\d+ in one transaction, \\d+ outside it for indexes\\)`, 'm'));
  expect(files.length).toBeGreaterThan(1);
  return files;
}

export function read(s: Setup, file: string): string {
  return readFileSync(path.join(s.dir, file), 'utf8');
}

/** RLS flags of a table: the transaction phase ran (or did not). */
export async function rls(db: TestDatabase, table: string): Promise<boolean> {
  return (await db.query(`SELECT relrowsecurity AND relforcerowsecurity AS on FROM pg_class WHERE oid = $1::regclass`, [table])).rows[0].on;
}
