import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Statement } from '../../../src/compile/statement.js';
import { UsageError } from '../../../src/errors.js';
import { MIGRATION_TOOLS } from '../../../src/migration/registry.js';
import { writeMigration } from '../../../src/migration/write-migration.js';

/** The migration writer on its own: names, never overwriting, markers a tool would misread. The real tools run in test/cli/migration-tools.test.ts. */

const NOW = new Date('2026-12-01T19:41:11.123Z');

function statement(sql: string, phase: Statement['phase'], summary = 'a statement'): Statement {
  return { sql, phase, summary, hazards: [], target: { kind: 'table', schema: 's', name: 't' } };
}

const PLAN = {
  statements: [
    statement('ALTER TABLE s.t ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;', 'transaction', 'enable RLS on s.t'),
    statement('CREATE INDEX CONCURRENTLY t_a_idx ON s.t (a);', 'concurrent', 'index t_a_idx'),
    statement('CREATE INDEX CONCURRENTLY t_b_idx ON s.t (b);', 'concurrent', 'index t_b_idx'),
  ],
};

function scratch(): string {
  return mkdtempSync(path.join(tmpdir(), 'rlsctl-migration-'));
}

describe('writeMigration', () => {
  it('refuses an unsafe --name: path separators, .., control characters, empty', async () => {
    for (const name of ['../evil', 'a/b', 'a\\b', '..', '.hidden', 'x\ny', 'x\u0000y', '', 'a b', 'é']) {
      const dir = path.join(scratch(), 'out');
      await expect(writeMigration(PLAN, { tool: 'sql', dir, name, now: NOW })).rejects.toThrow(/is not a safe migration name/);
      expect(existsSync(dir)).toBe(false);
    }
  });

  it('an unknown tool is exit 2 naming the tools', async () => {
    const error = await writeMigration(PLAN, { tool: 'liquibase', dir: scratch(), now: NOW }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).hint).toBe(`one of: ${MIGRATION_TOOLS.map((t) => t.name).join(', ')}`);
  });

  it('creates --dir, and never overwrites: a second write with the same names fails and writes nothing', async () => {
    for (const tool of MIGRATION_TOOLS) {
      const dir = path.join(scratch(), 'a', 'b');
      const first = await writeMigration(PLAN, { tool: tool.name, dir, name: 'rls', now: NOW });
      expect(first.files.length).toBeGreaterThan(0);
      const before = Object.fromEntries(first.files.map((f) => [f, readFileSync(path.join(dir, f), 'utf8')]));
      const error = await writeMigration(PLAN, { tool: tool.name, dir, name: 'rls', now: NOW }).catch((e: unknown) => e);
      if (tool.name === 'drizzle') {
        // drizzle numbers its migrations from the journal: the second one is 0001_rls, a new file.
        expect(error).toMatchObject({ files: ['0001_rls.sql', 'meta/_journal.json', '0001_rls_concurrent.sql'] });
        continue;
      }
      expect(error, tool.name).toBeInstanceOf(UsageError);
      expect((error as UsageError).exitCode).toBe(2);
      expect((error as Error).message).toMatch(/already exists; no migration was written/);
      for (const [f, content] of Object.entries(before)) expect(readFileSync(path.join(dir, f), 'utf8')).toBe(content);
    }
  });

  it('one colliding file stops the whole write: the other files are not written either', async () => {
    const dir = scratch();
    writeFileSync(path.join(dir, '20261201194111_rls_concurrent.sql'), 'mine\n');
    await expect(writeMigration(PLAN, { tool: 'sql', dir, name: 'rls', now: NOW })).rejects.toThrow(/20261201194111_rls_concurrent\.sql already exists/);
    expect(readdirSync(dir)).toEqual(['20261201194111_rls_concurrent.sql']);
    expect(readFileSync(path.join(dir, '20261201194111_rls_concurrent.sql'), 'utf8')).toBe('mine\n');
  });

  it('an empty plan writes nothing and creates no folder', async () => {
    const dir = path.join(scratch(), 'none');
    expect(await writeMigration({ statements: [] }, { tool: 'dbmate', dir, now: NOW })).toEqual({ tool: 'dbmate', dir, files: [] });
    expect(existsSync(dir)).toBe(false);
  });

  it('a --dir that is a file is exit 2', async () => {
    const file = path.join(scratch(), 'file');
    writeFileSync(file, '');
    await expect(writeMigration(PLAN, { tool: 'sql', dir: file, now: NOW })).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringMatching(/cannot write/),
    });
  });

  it('a summary with a line break stays a comment in every file (no statement smuggled through it)', async () => {
    const evil = {
      statements: [statement('SELECT 1;', 'transaction', 'x\nDROP TABLE s.t; --\r\u2028y'), statement('SELECT 2;', 'concurrent', 'z\n*/ DROP TABLE s.t; /*')],
    };
    for (const tool of MIGRATION_TOOLS) {
      const dir = scratch();
      const written = await writeMigration(evil, { tool: tool.name, dir, now: NOW });
      for (const f of written.files) {
        const text = readFileSync(path.join(dir, f), 'utf8');
        for (const line of text.split('\n').filter((l) => l.includes('DROP TABLE'))) expect(line, `${tool.name} ${f}`).toMatch(/^\s*(--|\/\/) /);
        expect(text).not.toContain('\u2028');
      }
    }
  });

  it('refuses SQL holding text a tool reads as its own marker', async () => {
    const literal = (text: string) => ({ statements: [statement(`CREATE POLICY p ON s.t USING (a = '${text}');`, 'transaction')] });
    await expect(writeMigration(literal('\n-- migrate:down\nDROP TABLE s.t; --'), { tool: 'dbmate', dir: scratch(), now: NOW })).rejects.toThrow(
      /dbmate would read/,
    );
    await expect(writeMigration(literal('--> statement-breakpoint'), { tool: 'drizzle', dir: scratch(), now: NOW })).rejects.toThrow(/drizzle would read/);
    await expect(writeMigration(literal('${flyway:user}'), { tool: 'flyway', dir: scratch(), now: NOW })).rejects.toThrow(/flyway would read/);
    // The same literal is fine where no tool reads it: the JavaScript tools carry it as a JSON string.
    const dir = scratch();
    const written = await writeMigration(literal('\n-- migrate:down ${x} --> statement-breakpoint `'), { tool: 'kysely', dir, now: NOW });
    expect(readFileSync(path.join(dir, written.files[0]), 'utf8')).toContain(
      JSON.stringify("CREATE POLICY p ON s.t USING (a = '\n-- migrate:down ${x} --> statement-breakpoint `')"),
    );
  });

  it('drizzle appends to an existing journal after its last entry, and refuses one that is not PostgreSQL', async () => {
    const dir = scratch();
    mkdirSync(path.join(dir, 'meta'));
    const journal = {
      version: '7',
      dialect: 'postgresql',
      entries: [{ idx: 0, version: '7', when: NOW.getTime() + 5000, tag: '0000_init', breakpoints: true }],
    };
    writeFileSync(path.join(dir, 'meta/_journal.json'), JSON.stringify(journal));
    const written = await writeMigration(PLAN, { tool: 'drizzle', dir, name: 'rls', now: NOW });
    expect(written.files).toEqual(['0001_rls.sql', 'meta/_journal.json', '0001_rls_concurrent.sql']);
    const after = JSON.parse(readFileSync(path.join(dir, 'meta/_journal.json'), 'utf8'));
    expect(after.entries).toEqual([journal.entries[0], { idx: 1, version: '7', when: NOW.getTime() + 5001, tag: '0001_rls', breakpoints: true }]);
    writeFileSync(path.join(dir, 'meta/_journal.json'), JSON.stringify({ ...journal, dialect: 'mysql' }));
    await expect(writeMigration(PLAN, { tool: 'drizzle', dir, name: 'two', now: NOW })).rejects.toThrow(/not a drizzle journal for PostgreSQL/);
    expect(existsSync(path.join(dir, '0002_two.sql'))).toBe(false);
  });
});
