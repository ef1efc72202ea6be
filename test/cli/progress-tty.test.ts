import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { BIN, runCli } from '../helpers/cli.js';

/**
 * Progress goes to stderr, and only when stderr is a terminal; `--format json`
 * on stdout stays one parseable document while it is drawn. `script` (util-linux)
 * gives the command a pseudo-terminal; inside it, stdout is redirected to a
 * file, so stderr is a terminal and stdout is not, as in `rlsctl apply
 * --format json > plan.json` typed at a prompt. What `script` prints is what
 * the terminal showed.
 */

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Run rlsctl under a pseudo-terminal with stdout sent to `out`; returns what the terminal showed and the exit code. */
function onTerminal(args: string[], out: string, cwd: string): Promise<{ code: number; terminal: string }> {
  const command = `${[process.execPath, BIN, ...args].map(quote).join(' ')} > ${quote(out)}`;
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
    delete env.DATABASE_URL;
    // -e: script exits with the command's exit code; -f: flush as it goes; the typescript file is thrown away.
    const child = spawn('script', ['-qfec', command, '/dev/null'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let terminal = '';
    child.stdout.on('data', (d) => (terminal += d));
    child.stderr.on('data', (d) => (terminal += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, terminal }));
  });
}

describeEachServer('progress on a terminal, JSON on stdout', (ctx) => {
  const app = uniqueName('ttyapp');
  let work = '';
  let policy = '';

  beforeAll(async () => {
    await ctx.db.runScript(`
      CREATE ROLE ${app};
      CREATE SCHEMA tty;
      GRANT USAGE ON SCHEMA tty TO ${app};
      CREATE TABLE tty.notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant_id uuid NOT NULL, body text NOT NULL);
      CREATE TABLE tty.tags (tenant_id uuid NOT NULL, name text NOT NULL, PRIMARY KEY (tenant_id, name));
      GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA tty TO ${app};
      INSERT INTO tty.notes (tenant_id, body) SELECT CASE WHEN g % 2 = 0 THEN '${A}'::uuid ELSE '${B}'::uuid END, 'note ' || g FROM generate_series(1, 500) g;
      INSERT INTO tty.tags VALUES ('${A}', 'red'), ('${B}', 'blue');`);
    work = mkdtempSync(path.join(tmpdir(), 'rlsctl-tty-'));
    policy = path.join(work, 'policy.yaml');
    writeFileSync(
      policy,
      `version: 1\ntenant: { setting: app.tenant_id, type: uuid }\nroles: { app: [${app}] }\nschemas:\n  tty:\n    tables:\n      notes: tenant\n      tags: tenant\n`,
    );
    // Everything but one index, so that the apply under test is one index build.
    const first = await runCli(['apply', '--db', ctx.db.url, '--policies', policy, '--quiet']);
    expect(first.code, first.stderr).toBe(0);
    await ctx.db.query('DROP INDEX tty.notes_tenant_id_idx');
  });

  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
  });

  it('apply --format json: the index build shows on the terminal, stdout holds only the JSON', async () => {
    const out = path.join(work, 'apply.json');
    const run = await onTerminal(['apply', '--db', ctx.db.url, '--policies', policy, '--format', 'json'], out, work);
    expect(run.code, run.terminal).toBe(0);
    const doc = JSON.parse(readFileSync(out, 'utf8'));
    expect(doc).toMatchObject({ version: 1, command: 'apply', summary: { statements: 1, concurrent: 1 } });
    expect(doc.statements[0].sql).toBe('CREATE INDEX CONCURRENTLY notes_tenant_id_idx ON tty.notes (tenant_id);');
    // The progress line, drawn with \r and erased when apply ends.
    expect(run.terminal).toMatch(/\r\x1b\[2K\[1\/1\] build index notes_tenant_id_idx on tty\.notes/);
    expect(run.terminal).toMatch(/\r\x1b\[2K\s*$/);
    expect(run.terminal).not.toContain('"command"');
    expect(run.terminal).not.toContain('secret');
  });

  it('verify --format json: relations done of total on the terminal, stdout holds only the JSON', async () => {
    const out = path.join(work, 'verify.json');
    const run = await onTerminal(['verify', '--db', ctx.db.url, '--policies', policy, '--format', 'json'], out, work);
    expect(run.code, run.terminal).toBe(0);
    const doc = JSON.parse(readFileSync(out, 'utf8'));
    expect(doc).toMatchObject({ version: 1, command: 'verify', findings: [], stats: { relations: 2, leaks: 0 } });
    expect(run.terminal).toMatch(/\r\x1b\[2Kverify: pass 1\/3 \(no tenant, fresh session\): 0 of 2 relations done, probing /);
    // The start line and the summary are notes: whole lines, the summary after the progress line is erased.
    expect(run.terminal).toMatch(/^verify: 2 relations, app role /m);
    expect(run.terminal).toMatch(/\r\x1b\[2Kverify: 2 relations, \d+ probes, 0 leaks, 0 skipped in [^\r]*\r?\n$/);
    expect(run.terminal).not.toContain('"command"');
  });

  it('with stderr a pipe there is no progress line, and --quiet on a terminal draws none', async () => {
    const piped = await runCli(['verify', '--db', ctx.db.url, '--policies', policy, '--format', 'json']);
    expect(piped.code).toBe(0);
    JSON.parse(piped.stdout);
    expect(piped.stderr).toMatch(/^verify: 2 relations, app role /m);
    expect(piped.stderr).not.toContain('\r');
    expect(piped.stderr).not.toContain('pass 1/3');

    const out = path.join(work, 'quiet.json');
    const quiet = await onTerminal(['verify', '--db', ctx.db.url, '--policies', policy, '--format', 'json', '--quiet'], out, work);
    expect(quiet.code).toBe(0);
    JSON.parse(readFileSync(out, 'utf8'));
    expect(quiet.terminal).toBe('');
  });
});
