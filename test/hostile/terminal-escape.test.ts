import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { escapeTerminal, escapeTerminalBlock, escapeTerminalOutput } from '../../src/report/escape-terminal.js';

/**
 * Issue 14: names from the catalog reach the terminal escaped. A table, a
 * policy, a role and a query file path hold a clear-screen sequence, a line
 * break and a right-to-left override; every text report and error message
 * shows them as `\x1b[2J`, `\n` and `\u202e`, and JSON output stays JSON.
 */

const EVIL = '\u001b[2J\n\u202e';
const SHOWN = '\\x1b[2J\\n\\u202e';
const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Nothing in the output is a raw control character (the runs are NO_COLOR, so not even a colour). */
function expectInert(r: CliResult): void {
  for (const text of [r.stdout, r.stderr]) {
    expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
  }
}

describe('escapeTerminal', () => {
  it('escapes C0, DEL, C1 and bidi controls, and nothing else', () => {
    expect(escapeTerminal(`a${EVIL}\t\r\u0000\u007f\u0085\u2066é`)).toBe(`a${SHOWN}\\t\\r\\x00\\u007f\\u0085\\u2066é`);
    expect(escapeTerminal('plain app.tasks "x"')).toBe('plain app.tasks "x"');
  });

  it('keeps the lines of a block but not a line break inside a quoted identifier', () => {
    expect(escapeTerminalBlock(`SELECT 1\nFROM "a\nb" \u001b[2J;`)).toBe('SELECT 1\nFROM "a\\nb" \\x1b[2J;');

    // A lone quote inside a name printed unquoted does not pair with a quote lines later.
    expect(escapeTerminalBlock('index ix.No"tes failed\n  run:\n    DROP INDEX ix."No""tes\nx";')).toBe(
      'index ix.No"tes failed\n  run:\n    DROP INDEX ix."No""tes\\nx";',
    );
  });

  it('the output pass keeps colours and stays valid JSON', () => {
    expect(escapeTerminalOutput('\u001b[31mred\u001b[39m \u001b[2J\n')).toBe('\u001b[31mred\u001b[39m \\x1b[2J\n');
    const json = JSON.stringify({ name: `x${EVIL}\u0085` });
    expect(JSON.parse(escapeTerminalOutput(json))).toEqual({ name: `x${EVIL}\u0085` });
  });
});

describe('hostile file names on the terminal, without a database', () => {
  it('diff: the side labels are escaped in the text report', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rlsctl-terminal-escape-diff-'));
    try {
      const policy = (to: string) =>
        `version: 1\nroles:\n  app: [app_user]\nschemas:\n  app:\n    tables:\n      docs:\n        policies:\n          - { name: p, to: [${to}], using: "true" }\n`;
      writeFileSync(path.join(dir, `base${EVIL}.yaml`), policy('app_user'));
      writeFileSync(path.join(dir, 'head.yaml'), policy('public'));
      const r = await runCli(['diff', `base${EVIL}.yaml`, 'head.yaml'], { cwd: dir });
      expectInert(r);
      expect(r.stdout).toContain(`base${SHOWN}.yaml -> head.yaml`);
      expect(r.stdout).toContain('widening');
      expect(r.code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describeEachServer('hostile names on the terminal', (ctx) => {
  const plain = uniqueName('escplain');
  const role = `${plain}${EVIL}`;
  const table = `t${EVIL}evil`;
  const policy = `p${EVIL}`;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'rlsctl-terminal-escape-'));
    await ctx.db.query(`CREATE ROLE ${quoteIdent(role)} NOLOGIN`);
    await ctx.db.query(`CREATE ROLE ${plain} NOLOGIN`);
    await ctx.db.runScript(`
      CREATE SCHEMA app;
      CREATE SCHEMA evil;
      GRANT USAGE ON SCHEMA app, evil TO ${quoteIdent(role)};
      CREATE TABLE app.docs (id int PRIMARY KEY, tenant_id uuid NOT NULL);
      CREATE POLICY ${quoteIdent(policy)} ON app.docs TO ${quoteIdent(role)} USING (true);
      CREATE TABLE evil.${quoteIdent(table)} (id int PRIMARY KEY, tenant_id uuid NOT NULL, body text);
      INSERT INTO evil.${quoteIdent(table)} VALUES (1, '00000000-0000-4000-8000-00000000000a', 'a'), (2, '00000000-0000-4000-8000-00000000000b', 'b');
      GRANT SELECT ON app.docs, evil.${quoteIdent(table)} TO ${quoteIdent(role)};`);
    writeFileSync(path.join(dir, 'app.yaml'), `version: 1\nroles:\n  app: [${plain}]\nschemas:\n  app:\n    tables:\n      docs: {}\n`);
    writeFileSync(path.join(dir, 'evil.yaml'), `version: 1\nroles:\n  app: [app_user]\nschemas:\n  evil:\n    tables: {}\n`);
    writeFileSync(path.join(dir, 'q.sql'), `-- name: read_evil\nSELECT body FROM evil.${quoteIdent(table)} WHERE body = 'a';\n`);
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await ctx.db.query(`DROP OWNED BY ${quoteIdent(role)} CASCADE`).catch(() => undefined);
    await ctx.db.query(`DROP ROLE IF EXISTS ${quoteIdent(role)}`).catch(() => undefined);
    await ctx.db.query(`DROP OWNED BY ${plain} CASCADE`).catch(() => undefined);
    await ctx.db.query(`DROP ROLE IF EXISTS ${plain}`).catch(() => undefined);
  });

  const facts = () => ['--db', ctx.db.url, '--tenant-column', 'tenant_id', '--tenant-setting', 'app.tenant_id', '--app-role', role];

  it('audit: the text report names the table, the policy and the role escaped', async () => {
    const r = await runCli(['audit', ...facts(), '--schema', 'app', '--schema', 'evil', '--fail-on', 'never']);
    expectInert(r);
    expect(r.stdout).toContain(`evil."t${SHOWN}evil"`);
    expect(r.stdout).toContain(`p${SHOWN}`);
    expect(r.stdout).toContain(SHOWN);
    expect(r.code).toBe(0);
  });

  it('audit --format json stays JSON, with the names exact', async () => {
    const r = await runCli(['audit', ...facts(), '--schema', 'evil', '--fail-on', 'never', '--format', 'json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as { findings: Array<{ object: { name?: string } }> };
    expect(doc.findings.some((f) => f.object.name === table)).toBe(true);
    expectInert(r);
  });

  it('plan: drift names the undeclared policy escaped', async () => {
    const r = await runCli(['plan', '--db', ctx.db.url, '--policies', path.join(dir, 'app.yaml')]);
    expectInert(r);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`policy p${SHOWN} on app.docs`);
    expect(r.stdout).toContain(`to ${plain}${SHOWN}`);
    expect(r.code).toBe(0);
  });

  it('plan: an error message names the undeclared table escaped', async () => {
    const r = await runCli(['plan', '--db', ctx.db.url, '--policies', path.join(dir, 'evil.yaml')]);
    expectInert(r);
    expect(r.stderr).toContain(`t${SHOWN}evil`);
    expect(r.code).toBe(2);
  });

  it('verify: the leak through the hostile table and role is reported escaped', async () => {
    const r = await runCli(['verify', ...facts(), '--schema', 'evil']);
    expectInert(r);
    expect(r.stdout).toContain(`t${SHOWN}evil`);
    expect(r.stdout).toContain(SHOWN);
    expect(r.code).toBe(1);
  });

  it('explain: the query on the hostile table is reported escaped, and so is a hostile file name', async () => {
    const evilFile = path.join(dir, `q${EVIL}.sql`);
    writeFileSync(evilFile, `SELECT body FROM evil.${quoteIdent(table)} WHERE body = 'a';\n`);
    const r = await runCli(['explain', ...facts(), '--schema', 'evil', '--fail-on', 'never', path.join(dir, 'q.sql'), evilFile]);
    expectInert(r);
    expect(r.stdout).toContain(`t${SHOWN}evil`);
    expect(r.stdout).toContain(`q${SHOWN}.sql`);
    expect(r.code).toBe(0);
  });

  it('a missing file with a hostile name: the error message is escaped', async () => {
    const r = await runCli(['validate', '--policies', path.join(dir, `missing${EVIL}.yaml`)]);
    expectInert(r);
    expect(r.stderr).toContain(`missing${SHOWN}.yaml`);
    expect(r.code).toBe(2);
  });
});
