import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { Kysely, Migrator, PostgresDialect, type Migration } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testServers } from '../helpers/db.js';
import { BIN, DBMATE, DBMATE_PLATFORM, dropDatabases, read, rls, run, setUp, writeWith } from '../helpers/migration.js';
import { splitStatements } from '../../src/db/run-script.js';
import { loadParser } from '../../src/policy/expression.js';

/**
 * `rlsctl plan --migration TOOL` run by the tool itself: dbmate,
 * node-pg-migrate, Kysely's Migrator and drizzle-kit, each against a fresh
 * database on PostgreSQL 18 and 14; a second run finds nothing pending, and
 * then `rlsctl plan --check` is empty. The fixture (fixtures/live) has both
 * phases: policies and RLS flags in the transaction, concurrent index builds
 * and partition index attachments outside it.
 */

afterAll(dropDatabases);

describe('plan --migration', () => {
  beforeAll(async () => {
    await loadParser();
  });
  for (const server of testServers()) {
    describe(`[${server.name}]`, () => {
      // The dbmate binary exists for linux-x64 in this repository's tools (tools/dbmate); there it must run.
      it.runIf(DBMATE_PLATFORM)(
        'dbmate: dbmate up runs it (each concurrent statement in its own transaction:false migration), a second up applies nothing',
        async () => {
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
          const dbmate = (...args: string[]) => run(DBMATE, ['--url', url.toString(), '--migrations-dir', s.dir, '--no-dump-schema', ...args]);
          const up = await dbmate('up');
          expect(up.stderr).toBe('');
          expect(up.code).toBe(0);
          for (const f of files) expect(up.stdout).toContain(`Applying: ${f}`);
          const second = await dbmate('up');
          expect(second).toMatchObject({ code: 0, stdout: '' });
          const status = await dbmate('status');
          expect(status.stdout).toContain(`Applied: ${files.length}\nPending: 0`);
          await s.check();
        },
      );
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
    });
  }
});
