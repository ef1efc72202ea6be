import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, ROOT } from '../helpers/cli.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { CANARY, createCanary, expectUntouched, snapshotDatabase } from '../helpers/hostile.js';

/** The real binary: exit codes, the summary line, and the JSON and SARIF documents. */

// runCli removes DATABASE_URL; with no --db either, verify uses the embedded default (as in CI without PG* variables).
describe('rlsctl verify, pre-merge mode (embedded PostgreSQL, no database named)', () => {
  it('builds a throwaway database from the schema, applies the policies, seeds two tenants, probes everything: exit 0', async () => {
    // --strict: nothing was skipped either (every table got rows of both tenants), so exit 0 still.
    const r = await runCli(['verify', '--schema', 'fixtures/demo/schema.sql', '--policies', 'policies/', '--strict']);
    expect(r.stderr).toContain('no database named');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('no findings');
    expect(r.stdout).toMatch(/^9 relations, \d+ probes, 0 leaks, 0 skipped$/m);
    expect(r.stdout).toContain('(synthetic)');
  });

  it('fails a pull request whose migration leaks tenant rows through a view: exit 1, JSON names the view', async () => {
    const r = await runCli(['verify', '--schema', 'fixtures/verify/pr-broken', '--policies', 'policies/', '--format', 'json']);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.version).toBe(1);
    expect(doc.command).toBe('verify');
    const read = doc.findings.find((f: { rule: string }) => f.rule === 'VER001');
    expect(read).toMatchObject({
      name: 'cross-tenant-read',
      severity: 'error',
      object: { kind: 'view', schema: 'app', name: 'task_overview' },
      fingerprint: 'VER001:app.task_overview:app_user',
    });
    expect(doc.summary.error).toBeGreaterThanOrEqual(1);
    expect(doc.stats).toMatchObject({
      relations: 10,
      leaks: doc.findings.filter((f: { severity: string }) => f.severity === 'error').length,
      roles: ['app_user'],
    });
    expect(doc.stats.probes).toBeGreaterThan(0);
  });
});

describeEachServer('rlsctl verify on a named database', (ctx) => {
  const roles = { app: uniqueName('vcapp'), app2: uniqueName('vcapp2') };
  const prober = uniqueName('vcprober');
  let policy = '';

  beforeAll(async () => {
    const fill = (name: string) =>
      readFileSync(path.join(ROOT, 'fixtures/verify', name), 'utf8').replace(/\{\{(\w+)\}\}/g, (_, k: string) => roles[k as keyof typeof roles]);
    await ctx.db.runScript(fill('schema.sql'));
    policy = path.join(mkdtempSync(path.join(tmpdir(), 'rlsctl-verify-')), 'policy.yaml');
    writeFileSync(policy, fill('policy.yaml'));
    await ctx.db.query(`CREATE ROLE ${prober} LOGIN BYPASSRLS PASSWORD 'secret'`);
  });

  afterAll(async () => {
    for (const role of [roles.app, roles.app2, prober]) {
      await ctx.db.query(`DROP OWNED BY ${role}`).catch(() => undefined);
      await ctx.db.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
    }
  });

  it('prints each leak with its table, role, tenants and statement, and the summary line: exit 1', async () => {
    const r = await runCli(['verify', '--db', ctx.db.url, '--policies', policy]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('vt.insert_leak');
    expect(r.stdout).toMatch(
      /error VER004 cross-tenant-insert .* acting as tenant 00000000-0000-4000-8000-00000000000a inserted a row for tenant 00000000-0000-4000-8000-00000000000b into vt\.insert_leak: INSERT INTO/,
    );
    const summary = /^(\d+) relations, (\d+) probes, (\d+) leaks, (\d+) skipped$/m.exec(r.stdout);
    expect(summary).not.toBeNull();
    expect(Number(summary![3])).toBeGreaterThan(10);
    // vt.unmakeable (no row can be made) and vt.trigger_boom (the insert cannot decide): skipped, and counted.
    expect(Number(summary![4])).toBeGreaterThan(0);
  });

  it('counts what it did not prove: stats.skipped and the skipped probes with reasons; --strict exits 1 on any skip', async () => {
    const json = await runCli(['verify', '--db', ctx.db.url, '--policies', policy, '--format', 'json', '--fail-on', 'never']);
    expect(json.code, json.stderr).toBe(0);
    const stats = JSON.parse(json.stdout).stats;
    expect(stats.skipped).toBe(stats.skippedProbes.length);
    expect(stats.skippedProbes).toContainEqual(
      expect.objectContaining({
        schema: 'vt',
        name: 'unmakeable',
        kind: 'table',
        role: roles.app,
        probe: 'insert',
        reason: expect.stringContaining('required column spot (point)'),
      }),
    );
    expect(stats.skippedProbes).toContainEqual(
      expect.objectContaining({ name: 'trigger_boom', probe: 'insert', reason: expect.stringContaining('could not decide') }),
    );
    expect(stats.unprobedViews).toEqual([]);
    const strict = await runCli(['verify', '--db', ctx.db.url, '--policies', policy, '--fail-on', 'never', '--strict', '--quiet']);
    expect(strict.code).toBe(1);
    expect(strict.stderr).toContain(`verify --strict: ${stats.skipped} probes were skipped, so isolation is not proven everywhere`);
    expect(strict.stdout).toMatch(new RegExp(`, ${stats.skipped} skipped$`, 'm'));
  });

  it('--fail-on never reports the same leaks and exits 0', async () => {
    const r = await runCli(['verify', '--db', ctx.db.url, '--policies', policy, '--fail-on', 'never', '--quiet']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('VER001');
    expect(r.stderr).toBe('');
  });

  it('writes SARIF with the verify rules and stable fingerprints', async () => {
    const r = await runCli(['verify', '--db', ctx.db.url, '--policies', policy, '--format', 'sarif']);
    expect(r.code).toBe(1);
    const sarif = JSON.parse(r.stdout);
    const run = sarif.runs[0];
    const ids = run.tool.driver.rules.map((rule: { id: string }) => rule.id);
    expect(ids).toEqual(expect.arrayContaining(['VER001', 'VER002', 'VER003', 'VER004', 'VER005', 'VER006', 'VER010']));
    const result = run.results.find(
      (x: { partialFingerprints: Record<string, string> }) => x.partialFingerprints['rlsctlFingerprint/v1'] === `VER006:vt.delete_leak:${roles.app}`,
    );
    expect(result).toMatchObject({ ruleId: 'VER006', level: 'error' });
  });

  it('exits 3 and says what to grant when the connecting role cannot SET ROLE; never prints the password', async () => {
    const r = await runCli(['verify', '--db', ctx.db.urlAs(prober), '--policies', policy]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`cannot SET ROLE to ${roles.app}`);
    expect(r.stderr).toContain(`GRANT ${roles.app} TO ${prober};`);
    expect(r.stderr + r.stdout).not.toContain('secret');
  });

  it('--app-role with --policies: a login role that is a member of a declared app role is probed as itself; another role is exit 2', async () => {
    const member = uniqueName('vcmember');
    const stranger = uniqueName('vcstranger');
    // A member through another role (transitive), with INHERIT: the file's policies TO app apply to it.
    const middle = uniqueName('vcmiddle');
    await ctx.db.query(`CREATE ROLE ${middle} IN ROLE ${roles.app}`);
    await ctx.db.query(`CREATE ROLE ${member} LOGIN IN ROLE ${middle}`);
    await ctx.db.query(`CREATE ROLE ${stranger} LOGIN`);
    try {
      const r = await runCli(['verify', '--db', ctx.db.url, '--policies', policy, '--app-role', member, '--format', 'json']);
      expect(r.code, r.stderr).toBe(1);
      const doc = JSON.parse(r.stdout);
      expect(doc.stats.roles).toEqual([member]);
      expect(doc.stats.appRoles).toEqual([{ role: member, appRole: roles.app, membership: 'inherit' }]);
      expect(doc.findings.some((f: { fingerprint: string }) => f.fingerprint === `VER006:vt.delete_leak:${member}`)).toBe(true);
      const text = await runCli(['verify', '--db', ctx.db.url, '--policies', policy, '--app-role', member, '--fail-on', 'never']);
      expect(text.stdout).toContain(`as ${member} (a member of ${roles.app}, an app role of the policy file)`);
      const other = await runCli(['verify', '--db', ctx.db.url, '--policies', policy, '--app-role', stranger]);
      expect(other.code).toBe(2);
      expect(other.stderr).toContain(`${stranger} is neither an app role of the policy file (${roles.app}, ${roles.app2}) nor a member of one`);
      // A hostile role name is a value of a query, never SQL: exit 2, nothing ran.
      await createCanary(ctx.db);
      const before = await snapshotDatabase(ctx.db);
      for (const name of [`x'; DROP TABLE public.${CANARY}; --`, `${roles.app}"; CREATE ROLE pwned_h9; --`]) {
        const hostile = await runCli(['verify', '--db', ctx.db.url, '--policies', policy, '--app-role', name]);
        expect(hostile.code, hostile.stderr).toBe(2);
        expect(hostile.stderr).toContain('does not exist in this database');
      }
      await expectUntouched(ctx.db, before);
    } finally {
      for (const role of [member, middle, stranger]) await ctx.db.query(`DROP ROLE ${role}`);
    }
  });

  it('--app-role with --policies: a member with SET only (PostgreSQL 16+) is checked as the app role it would SET ROLE to', async () => {
    const setOnly = uniqueName('vcsetonly');
    const major = Number((await ctx.db.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0].v) / 10000;
    await ctx.db.query(`CREATE ROLE ${setOnly} LOGIN`);
    // Before 16 every membership inherits: the role is then probed as itself, as above.
    await ctx.db.query(major >= 16 ? `GRANT ${roles.app} TO ${setOnly} WITH INHERIT FALSE, SET TRUE` : `GRANT ${roles.app} TO ${setOnly}`);
    try {
      const r = await runCli(['verify', '--db', ctx.db.url, '--policies', policy, '--app-role', setOnly, '--format', 'json', '--fail-on', 'never']);
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout);
      if (major >= 16) {
        expect(doc.stats.appRoles).toEqual([{ role: setOnly, appRole: roles.app, membership: 'set' }]);
        expect(doc.stats.roles).toEqual([roles.app]);
      } else {
        expect(doc.stats.appRoles).toEqual([{ role: setOnly, appRole: roles.app, membership: 'inherit' }]);
        expect(doc.stats.roles).toEqual([setOnly]);
      }
      expect(doc.findings.some((f: { rule: string }) => f.rule === 'VER006')).toBe(true);
    } finally {
      await ctx.db.query(`DROP ROLE ${setOnly}`);
    }
  });

  it('exits 2 for SQL to load while a database is named, and for a tenant of the wrong type', async () => {
    const sql = await runCli(['verify', '--db', ctx.db.url, '--policies', policy, '--schema', 'fixtures/verify/schema.sql']);
    expect(sql.code).toBe(2);
    expect(sql.stderr).toContain('embedded');
    const tenant = await runCli(['verify', '--db', ctx.db.url, '--policies', policy, '--tenant', 'acme']);
    expect(tenant.code).toBe(2);
    expect(tenant.stderr).toContain('--tenant acme is not a valid uuid');
  });
});
