import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { Kysely, Migrator, PostgresDialect, type Migration } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, testServers, uniqueName, type TestDatabase } from '../helpers/db.js';
import { ROOT, runCli, type CliResult } from '../helpers/cli.js';
import { createCanary, expectUntouched, snapshotDatabase } from '../helpers/hostile.js';
import { splitStatements } from '../../src/db/run-script.js';
import { loadParser } from '../../src/policy/expression.js';

/**
 * `rlsctl plan --migration TOOL`: the migration written for each tool is run
 * by the tool itself (dbmate, node-pg-migrate, kysely's Migrator, drizzle-kit)
 * against a fresh database, a second run finds nothing pending, and then
 * `rlsctl plan --check` is empty. Prisma and Flyway cannot run on this
 * machine (see docs/migrations.md): their files are checked for shape and
 * their SQL applied the way the tool sends it. The fixture (fixtures/live) has
 * both phases: policies and RLS flags in the transaction, concurrent index
 * builds and partition index attachments outside it.
 */

const BIN = path.join(ROOT, 'node_modules/.bin');

function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
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

function fixture(name: string, roles: Record<string, string>): string {
  return readFileSync(path.join(ROOT, 'fixtures/live', name), 'utf8').replace(/\{\{(\w+)\}\}/g, (_, k: string) => roles[k]);
}

/** A work folder whose ancestor has node_modules: a generated kysely migration imports 'kysely' like in a project. */
const WORK = mkdtempSync(path.join(tmpdir(), 'rlsctl-migration-'));
symlinkSync(path.join(ROOT, 'node_modules'), path.join(WORK, 'node_modules'), 'dir');

interface Setup {
  db: TestDatabase;
  policy: string;
  dir: string;
  cli(args: string[]): Promise<CliResult>;
  check(): Promise<void>;
}

const databases: TestDatabase[] = [];
afterAll(async () => {
  await Promise.all(databases.map((db) => db.drop()));
});

/** A fresh database with the fixture schema (roles unique to it), its policy file, and an empty folder for the migration. */
async function setUp(server: ReturnType<typeof testServers>[number]): Promise<Setup> {
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

async function writeWith(s: Setup, tool: string): Promise<string[]> {
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

function read(s: Setup, file: string): string {
  return readFileSync(path.join(s.dir, file), 'utf8');
}

/** RLS flags of a table: the transaction phase ran (or did not). */
async function rls(db: TestDatabase, table: string): Promise<boolean> {
  return (await db.query(`SELECT relrowsecurity AND relforcerowsecurity AS on FROM pg_class WHERE oid = $1::regclass`, [table])).rows[0].on;
}

describe('plan --migration', () => {
  beforeAll(async () => {
    await loadParser();
  });
  for (const server of testServers()) {
    describe(`[${server.name}]`, () => {

      it('sql: a transactional file and a _concurrent file; psql-style they converge the database; then nothing to write', async () => {
        const s = await setUp(server);
        const files = await writeWith(s, 'sql');
        expect(files).toEqual([expect.stringMatching(/^\d{14}_tenant_rls\.sql$/), expect.stringMatching(/^\d{14}_tenant_rls_concurrent\.sql$/)]);
        const [main, concurrent] = files.map((f) => read(s, f));
        expect(main).toMatch(/\nBEGIN;\nSET LOCAL lock_timeout = '5s';\n[\s\S]+\nCOMMIT;\n$/);
        expect(main).not.toContain('CONCURRENTLY');
        expect(concurrent).toContain('-- Runs OUTSIDE any transaction');
        expect(concurrent).toContain('CREATE INDEX CONCURRENTLY');
        expect(concurrent).not.toMatch(/^(BEGIN|COMMIT)/m);
        for (const f of files) await s.db.runScript(read(s, f));
        await s.check();
        const again = await s.cli(['plan', '--migration', 'sql', '--dir', s.dir, '--name', 'tenant_rls']);
        expect(again).toMatchObject({ code: 0, stdout: 'nothing to write: no statement to run\n' });
        expect(readdirSync(s.dir).sort()).toEqual([...files].sort());
      });

      it('dbmate: dbmate up runs it (each concurrent statement in its own transaction:false migration), a second up applies nothing', async () => {
        const s = await setUp(server);
        const files = await writeWith(s, 'dbmate');
        const concurrent = files.filter((f) => f.includes('_concurrent'));
        expect(files[0]).toMatch(/^\d{14}_tenant_rls\.sql$/);
        expect(read(s, files[0])).toMatch(/^-- migrate:up\n[\s\S]+\n-- migrate:down\n$/);
        expect(concurrent.length).toBe(files.length - 1);
        for (const f of concurrent) {
          expect(read(s, f)).toMatch(/^-- migrate:up transaction:false\n/);
          expect(splitStatements(read(s, f).split('-- migrate:down')[0])).toHaveLength(1);
        }
        const url = new URL(s.db.url);
        url.searchParams.set('sslmode', 'disable');
        const dbmate = (...args: string[]) => run(path.join(BIN, 'dbmate'), ['--url', url.toString(), '--migrations-dir', s.dir, '--no-dump-schema', ...args]);
        const up = await dbmate('up');
        expect(up.stderr).toBe('');
        expect(up.code).toBe(0);
        for (const f of files) expect(up.stdout).toContain(`Applying: ${f}`);
        const second = await dbmate('up');
        expect(second).toMatchObject({ code: 0, stdout: '' });
        const status = await dbmate('status');
        expect(status.stdout).toContain(`Applied: ${files.length}\nPending: 0`);
        await s.check();
      });

      it('node-pg-migrate: up runs both files (pgm.noTransaction for the concurrent one), a second up has nothing to run', async () => {
        const s = await setUp(server);
        const files = await writeWith(s, 'node-pg-migrate');
        expect(files).toEqual([expect.stringMatching(/^\d{17}_tenant_rls\.js$/), expect.stringMatching(/^\d{17}_tenant_rls_concurrent\.js$/)]);
        expect(read(s, files[1])).toContain('  pgm.noTransaction();\n');
        const migrate = () => run(path.join(BIN, 'node-pg-migrate'), ['up', '-m', s.dir], { env: { DATABASE_URL: s.db.url } });
        const up = await migrate();
        // node-pg-migrate's own word for committing the migrations before a noTransaction() one.
        expect(up.stderr).toBe('#> WARNING: Need to break single transaction! <\n');
        expect(up.code).toBe(0);
        expect(up.stdout).toContain(`> - ${files[0].replace(/\.js$/, '')}\n> - ${files[1].replace(/\.js$/, '')}\n`);
        const second = await migrate();
        expect(second.code).toBe(0);
        expect(second.stdout).toContain('No migrations to run!');
        await s.check();
      });

      it('kysely: the default Migrator refuses the concurrent migration and rolls back; with disableTransactions: true it runs, then nothing is pending', async () => {
        const s = await setUp(server);
        const files = await writeWith(s, 'kysely');
        expect(files).toEqual([expect.stringMatching(/^\d{14}_tenant_rls\.ts$/), expect.stringMatching(/^\d{14}_tenant_rls_concurrent\.ts$/)]);
        // A Migrator provider, as FileMigrationProvider does it, with an import that understands TypeScript.
        const provider = {
          async getMigrations(): Promise<Record<string, Migration>> {
            const out: Record<string, Migration> = {};
            for (const f of readdirSync(s.dir)) out[f.replace(/\.ts$/, '')] = (await import(pathToFileURL(path.join(s.dir, f)).href)) as Migration;
            return out;
          },
        };
        const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: s.db.url, max: 2 }) }) });
        try {
          const refused = await new Migrator({ db, provider }).migrateToLatest();
          expect(String(refused.error)).toContain('run it with a Migrator created with disableTransactions: true');
          expect(await rls(s.db, 'shop.accounts')).toBe(false);
          const migrator = new Migrator({ db, provider, disableTransactions: true });
          const first = await migrator.migrateToLatest();
          expect(first.error).toBeUndefined();
          expect(first.results?.map((r) => [r.migrationName, r.status])).toEqual(files.map((f) => [f.replace(/\.ts$/, ''), 'Success']));
          expect(await migrator.migrateToLatest()).toEqual({ results: [] });
        } finally {
          await db.destroy();
        }
        await s.check();
      });

      it('drizzle: drizzle-kit migrate runs the custom migration from its journal, the concurrent file runs after it, a second migrate applies nothing', async () => {
        const s = await setUp(server);
        const files = await writeWith(s, 'drizzle');
        expect(files).toEqual(['0000_tenant_rls.sql', 'meta/_journal.json', '0000_tenant_rls_concurrent.sql']);
        const journal = JSON.parse(read(s, 'meta/_journal.json'));
        expect(journal).toMatchObject({ version: '7', dialect: 'postgresql', entries: [{ idx: 0, version: '7', tag: '0000_tenant_rls', breakpoints: true }] });
        // One statement per part: drizzle sends each part as its own query.
        const parts = read(s, '0000_tenant_rls.sql').split('--> statement-breakpoint');
        for (const part of parts) expect(splitStatements(part)).toHaveLength(1);
        expect(parts[0]).toMatch(/\nSET LOCAL lock_timeout = '5s';\n$/);
        expect(read(s, '0000_tenant_rls_concurrent.sql')).toContain('NOT a drizzle migration');
        const config = path.join(path.dirname(s.dir), 'drizzle.config.json');
        writeFileSync(config, JSON.stringify({ dialect: 'postgresql', out: s.dir, dbCredentials: { url: s.db.url } }));
        const migrate = () => run(path.join(BIN, 'drizzle-kit'), ['migrate', '--config', config], { cwd: path.dirname(s.dir) });
        const first = await migrate();
        expect(first.code, first.stderr + first.stdout).toBe(0);
        expect(await rls(s.db, 'shop.accounts')).toBe(true);
        await s.db.runScript(read(s, '0000_tenant_rls_concurrent.sql'));
        const second = await migrate();
        expect(second.code).toBe(0);
        expect((await s.db.query('SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations')).rows[0].n).toBe(1);
        // A journal entry without a snapshot is one drizzle-kit accepts.
        const check = await run(path.join(BIN, 'drizzle-kit'), ['check', '--config', config], { cwd: path.dirname(s.dir) });
        expect(check.code).toBe(0);
        expect(check.stdout).toContain("Everything's fine");
        await s.check();
      });

      it('prisma (shape; the CLI cannot run here): one migration.sql in a transaction, one single-statement migration per concurrent statement', async () => {
        const s = await setUp(server);
        const files = await writeWith(s, 'prisma');
        expect(files[0]).toMatch(/^\d{14}_tenant_rls\/migration\.sql$/);
        for (const [i, f] of files.slice(1).entries()) {
          expect(f).toMatch(new RegExp(`^\\d{14}_tenant_rls_concurrent_${i + 1}/migration\\.sql$`));
          expect(splitStatements(read(s, f))).toHaveLength(1);
        }
        expect(readdirSync(s.dir).sort()).toEqual(files.map((f) => f.split('/')[0]));
        expect(read(s, files[0])).toMatch(/\nBEGIN;\nSET LOCAL lock_timeout = '5s';\n[\s\S]+\nCOMMIT;\n$/);
        // As prisma migrate deploy sends them: each migration.sql as one script, in folder order.
        for (const f of files) await s.db.query(read(s, f));
        await s.check();
      });

      it('flyway (shape; Java, not run here): V<version>__ files, the concurrent one with executeInTransaction=false', async () => {
        const s = await setUp(server);
        const files = await writeWith(s, 'flyway');
        expect(files).toEqual([
          expect.stringMatching(/^V\d{14}__tenant_rls\.sql$/),
          expect.stringMatching(/^V\d{14}__tenant_rls_concurrent\.sql$/),
          expect.stringMatching(/^V\d{14}__tenant_rls_concurrent\.sql\.conf$/),
        ]);
        expect(files[2]).toBe(`${files[1]}.conf`);
        expect(read(s, files[2])).toBe('executeInTransaction=false\n');
        // As Flyway runs them: statement by statement, the first file inside a transaction, the second outside.
        await s.db.runScript(`BEGIN;\n${read(s, files[0])}\nCOMMIT;`);
        await s.db.runScript(read(s, files[1]));
        await s.check();
      });
    });
  }
});

describe('plan --migration: input refused before any database is touched', () => {
  let db: TestDatabase;
  let policy = '';
  beforeAll(async () => {
    db = await createTestDatabase(testServers()[0], 'mig');
    databases.push(db);
    await createCanary(db);
    const roles = { app: uniqueName('app'), owner: uniqueName('owner'), other: uniqueName('other') };
    await db.runScript(fixture('schema.sql', roles));
    policy = path.join(mkdtempSync(path.join(WORK, 'case-')), 'policy.yaml');
    writeFileSync(policy, fixture('policy.yaml', roles));
  });

  it('a hostile --name (path separators, .., control characters, SQL) is exit 2; nothing written, the database untouched', async () => {
    const before = await snapshotDatabase(db);
    for (const name of ['../../evil', '/tmp/evil', '..', 'a\\b', 'x\ny', "x'; DROP TABLE public.hostile_canary; --"]) {
      const dir = path.join(WORK, uniqueName('none'));
      const result = await runCli(['plan', '--policies', policy, '--db', db.url, '--migration', 'sql', '--dir', dir, '--name', name]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('is not a safe migration name');
      expect(existsSync(dir)).toBe(false);
    }
    expect(existsSync(path.join(WORK, 'evil'))).toBe(false);
    await expectUntouched(db, before);
  });

  it('an unknown tool, or --dir / --name without --migration: exit 2', async () => {
    const unknown = await runCli(['plan', '--policies', policy, '--db', db.url, '--migration', 'liquibase']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown migration tool "liquibase"');
    expect(unknown.stderr).toContain('one of: sql, dbmate, node-pg-migrate, kysely, drizzle, prisma, flyway');
    const orphan = await runCli(['plan', '--policies', policy, '--db', db.url, '--dir', WORK]);
    expect(orphan.code).toBe(2);
    expect(orphan.stderr).toContain('--dir and --name go with --migration TOOL');
  });

  it('--format json: the plan document with the files written', async () => {
    const dir = path.join(WORK, uniqueName('json'));
    mkdirSync(dir);
    const result = await runCli(['plan', '--policies', policy, '--db', db.url, '--migration', 'flyway', '--dir', dir, '--format', 'json']);
    expect(result.code).toBe(0);
    const doc = JSON.parse(result.stdout);
    expect(doc).toMatchObject({ version: 1, command: 'plan', migration: { tool: 'flyway', dir } });
    expect(doc.migration.files).toEqual(readdirSync(dir).sort());
    expect(doc.migration.files[0]).toMatch(/^V\d{14}__rlsctl_policies\.sql$/);
  });
});
