import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { BIN, readableCliCopy, ROOT, runCli, type CliResult } from '../helpers/cli.js';

/** `rlsctl plan` and `rlsctl apply` as a CI job runs them: exit codes, JSON, markdown, messages. */

function fixture(name: string, roles: Record<string, string>): string {
  return readFileSync(path.join(ROOT, 'fixtures/live', name), 'utf8').replace(/\{\{(\w+)\}\}/g, (_, k: string) => roles[k]);
}

/** No database named anywhere: the embedded default. */
const NO_DATABASE = { DATABASE_URL: '', PGHOST: '', PGPORT: '', PGUSER: '', PGDATABASE: '', PGPASSWORD: '', PGSSLMODE: '' };

describeEachServer('plan and apply CLI', (ctx) => {
  const roles = { app: uniqueName('app'), owner: uniqueName('owner'), other: uniqueName('other') };
  const weak = uniqueName('weak');
  let work = '';
  let policy = '';
  const cli = (args: string[]) => runCli([...args, '--policies', policy, '--db', ctx.db.url]);
  /** RLS flags of a table, read directly: cheaper than another run of the binary. */
  const flags = async (table: string) =>
    (await ctx.db.query(`SELECT relrowsecurity AS enabled, relforcerowsecurity AS forced FROM pg_class WHERE oid = $1::regclass`, [table])).rows[0];

  beforeAll(async () => {
    await ctx.db.runScript(fixture('schema.sql', roles));
    await ctx.db.runScript(`CREATE ROLE ${weak} LOGIN PASSWORD 'secret'; GRANT USAGE ON SCHEMA shop, archive TO ${weak};`);
    work = mkdtempSync(path.join(tmpdir(), 'rlsctl-cli-'));
    policy = path.join(work, 'policy.yaml');
    writeFileSync(policy, fixture('policy.yaml', roles));
  });

  it('plan --check --format json: exit 1 on a database that differs, one JSON document', async () => {
    const result = await cli(['plan', '--check', '--format', 'json']);
    expect(result.code).toBe(1);
    const doc = JSON.parse(result.stdout);
    expect(doc).toMatchObject({ version: 1, command: 'plan', drift: [] });
    expect(doc.statements.length).toBe(doc.summary.statements);
    expect(doc.summary.transaction + doc.summary.concurrent).toBe(doc.summary.statements);
    for (const s of doc.statements) {
      expect(Object.keys(s).sort()).toEqual(['hazards', 'phase', 'reasons', 'sql', 'summary', 'target']);
      // Every hazard with its reason, in the same order.
      expect(s.reasons.map((r: { code: string }) => r.code)).toEqual(s.hazards);
      for (const r of s.reasons) expect(r.message).toMatch(/\w{3}/);
      expect(['transaction', 'concurrent']).toContain(s.phase);
    }
    expect(doc.summary.hazards.INDEX_BUILD).toBeGreaterThan(0);
    expect(result.stderr).toMatch(/the database differs from the policy file/);
  });

  it('plan --format markdown: a pull-request comment with a table and the SQL', async () => {
    const result = await cli(['plan', '--format', 'markdown']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^### rlsctl plan\n/);
    expect(result.stdout).toContain('| # | phase | object | change | hazards |');
    expect(result.stdout).toMatch(/\| 1 \| transaction \| `shop\.Odd Table policy rlsctl_tenant_guard` \|/);
    expect(result.stdout).toContain('```sql\nCREATE POLICY');
  });

  it('apply as a role that owns no table: exit 3 naming the privilege and the tables; nothing changed', async () => {
    const u = new URL(ctx.db.url);
    u.username = weak;
    u.password = 'secret';
    const result = await runCli(['apply', '--policies', policy, '--db', u.toString()]);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(`permission denied: role ${weak} must own the tables it changes`);
    expect(result.stderr).toContain(`shop.accounts (owner ${roles.owner})`);
    expect(result.stderr).toMatch(/hint: run apply as the tables' owner/);
    expect(result.stderr).not.toContain('secret');
    expect(await flags('shop.accounts')).toEqual({ enabled: false, forced: false });
  });

  it('apply --dry-run prints the plan and changes nothing', async () => {
    const dry = await cli(['apply', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^-- dry run: nothing is changed/);
    expect(dry.stdout).toContain('CREATE INDEX CONCURRENTLY accounts_tenant_id_idx ON shop.accounts (tenant_id);');
    expect(await flags('shop.accounts')).toEqual({ enabled: false, forced: false });
  });

  it('apply, then a second apply that says there is nothing to do, then plan --check exits 0', async () => {
    const first = await cli(['apply']);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('applied enable and force row level security on shop.accounts');
    expect(first.stdout).toMatch(/\napplied \d+ statements \(\d+ in one transaction, \d+ outside it for indexes\)/);
    const second = await cli(['apply']);
    expect(second.code).toBe(0);
    expect(second.stdout).toBe('nothing to do: the database already matches the policy file\n');
    const check = await cli(['plan', '--check']);
    expect(check.code).toBe(0);
    expect(check.stdout).toBe('nothing to do: the database matches the policy file\n');
  });

  it('drift: plan --check sees FORCE removed; apply --format json repairs it', async () => {
    await ctx.db.query('ALTER TABLE shop.currencies NO FORCE ROW LEVEL SECURITY');
    const check = await cli(['plan', '--check']);
    expect(check.code).toBe(1);
    expect(check.stdout).toContain('-- [1] force row level security on shop.currencies');
    const applied = await cli(['apply', '--format', 'json']);
    expect(applied.code).toBe(0);
    const doc = JSON.parse(applied.stdout);
    expect(doc.command).toBe('apply');
    expect(doc.statements.map((s: { sql: string }) => s.sql)).toEqual(['ALTER TABLE shop.currencies FORCE ROW LEVEL SECURITY;']);
    expect(await flags('shop.currencies')).toEqual({ enabled: true, forced: true });
  });

  it('a policy the file does not declare: drift for plan --check, kept by apply, dropped by apply --prune', async () => {
    await ctx.db.query(`CREATE POLICY by_hand ON shop.orders FOR SELECT TO ${roles.other} USING (true)`);
    const check = await cli(['plan', '--check', '--format', 'json']);
    expect(check.code).toBe(1);
    expect(JSON.parse(check.stdout).drift).toMatchObject([{ schema: 'shop', table: 'orders', policy: 'by_hand' }]);
    const kept = await cli(['apply']);
    expect(kept.code).toBe(0);
    expect(kept.stdout).toMatch(/nothing to change\ndrift policy by_hand on shop\.orders .* kept \(apply --prune drops it\)/);
    const pruned = await cli(['apply', '--prune']);
    expect(pruned.code).toBe(0);
    expect(pruned.stdout).toContain('applied drop policy by_hand on shop.orders');
    expect((await ctx.db.query("SELECT 1 FROM pg_policy WHERE polname = 'by_hand'")).rowCount).toBe(0);
  });

  it('a table the database lacks, or an undeclared table in a managed schema: exit 2 naming it, nothing changed', async () => {
    const ghost = path.join(work, 'ghost.yaml');
    writeFileSync(ghost, fixture('policy.yaml', roles).replace('      accounts: tenant', '      accounts: tenant\n      ghost: tenant'));
    await ctx.db.query('ALTER TABLE shop.accounts NO FORCE ROW LEVEL SECURITY');
    try {
      const missing = await runCli(['apply', '--policies', ghost, '--db', ctx.db.url]);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain('the policy file declares 1 table that the database lacks: shop.ghost');
      await ctx.db.query('CREATE TABLE shop.stray (id int)');
      const undeclared = await cli(['apply']);
      expect(undeclared.code).toBe(2);
      expect(undeclared.stderr).toContain('1 table in a managed schema is not declared in the policy file: shop.stray');
      expect(undeclared.stderr).toMatch(/hint: declare every table of a managed schema/);
      // nothing was changed: the flag removed above is still missing
      expect(await flags('shop.accounts')).toEqual({ enabled: true, forced: false });
    } finally {
      await ctx.db.query('DROP TABLE IF EXISTS shop.stray');
    }
  });

  it('an invalid policy file exits 2 before any database is touched', async () => {
    const bad = path.join(work, 'bad.yaml');
    writeFileSync(bad, 'version: 2\n');
    const result = await runCli(['plan', '--policies', bad, '--db', 'postgres://nobody@127.0.0.1:1/none']);
    expect(result.code).toBe(2);
    expect(result.stderr).not.toContain('cannot connect');
  });
});

/** Run the binary as another user (uid/gid), with the embedded default. */
function runAs(uid: number, args: string[], home: string, project = ROOT): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, ...NO_DATABASE, NO_COLOR: '1', HOME: home };
    const child = spawn(process.execPath, [path.join(project, path.relative(ROOT, BIN)), ...args], { cwd: project, env, uid, gid: uid });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end();
  });
}

describe('the embedded default', () => {
  it('with no database named, apply starts an embedded PostgreSQL, loads --schema and applies', async () => {
    const result = await runCli(['apply', '--schema', 'fixtures/demo/schema.sql', '--policies', 'policies/saas.yaml', '--format', 'json'], {
      env: NO_DATABASE,
    });
    expect(result.code).toBe(0);
    const doc = JSON.parse(result.stdout);
    expect(doc.command).toBe('apply');
    expect(doc.statements.some((s: { sql: string }) => s.sql === 'ALTER TABLE app.tasks ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;')).toBe(true);
    expect(result.stderr).toMatch(/no database named: using embedded PostgreSQL \d+ \(a throwaway server\), loaded from fixtures\/demo\/schema\.sql/);
  });

  it('works for a normal user too (as root, PostgreSQL runs as the postgres system user)', async () => {
    // Run as root: also check the unprivileged path, as `nobody`; run as a normal user: that user.
    const uid = process.getuid?.() === 0 ? 65534 : (process.getuid?.() ?? 0);
    const home = mkdtempSync(path.join(tmpdir(), 'rlsctl-home-'));
    if (uid === 65534) await import('node:fs/promises').then((fs) => fs.chown(home, uid, uid));
    // `nobody` may not enter this checkout (a clone in a `mktemp -d` folder): it runs a readable copy of the built CLI.
    const project = uid === 65534 ? readableCliCopy(['fixtures/demo', 'policies']) : ROOT;
    let result: CliResult;
    try {
      result = await runAs(uid, ['plan', '--schema', 'fixtures/demo/schema.sql', '--policies', 'policies/saas.yaml', '--format', 'json'], home, project);
    } finally {
      if (project !== ROOT) rmSync(project, { recursive: true, force: true });
    }
    expect(result.stderr).toMatch(/no database named/);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).summary.statements).toBeGreaterThan(0);
  });
});
