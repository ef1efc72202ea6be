import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testServers, uniqueName, type TestDatabase } from '../helpers/db.js';
import { runCli } from '../helpers/cli.js';
import { createCanary, expectUntouched, snapshotDatabase } from '../helpers/hostile.js';
import { WORK, dropDatabases, read, setUp, writeWith } from '../helpers/migration.js';
import { splitStatements } from '../../src/db/run-script.js';
import { loadParser } from '../../src/policy/expression.js';

/**
 * `rlsctl plan --migration TOOL` for the tools whose files are run here by
 * the project's script runner: `sql` (as psql does), and Prisma and Flyway,
 * which cannot run on this machine (see docs/migrations.md): their files are
 * checked for shape and their SQL sent the way the tool sends it; then
 * `rlsctl plan --check` is empty. Also the input refused before any database
 * is touched. The tools run for real are in migration-tools.test.ts.
 */

afterAll(dropDatabases);

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
    ({ db, policy } = await setUp(testServers()[0]));
    await createCanary(db);
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
