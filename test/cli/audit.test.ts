import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { ROOT, runCli } from '../helpers/cli.js';

/**
 * `rlsctl audit`, the real binary: exit codes, the JSON envelope, SARIF, the
 * text report, --fail-on, baselines, the two ways to know the facts, and the
 * embedded default. The database is fixtures/audit/e2e/schema.sql (holes
 * planted); the policy file is its policy.yaml.
 */

const E2E = path.join(ROOT, 'fixtures/audit/e2e');
const sarifSchema = JSON.parse(readFileSync(path.join(ROOT, 'test/unit/report/sarif-2.1.0-subset.schema.json'), 'utf8'));

describeEachServer('rlsctl audit', (ctx) => {
  const roles: Record<string, string> = {
    app: uniqueName('app'),
    owner: uniqueName('owner'),
    migrator: uniqueName('migrator'),
    rogue: uniqueName('rogue'),
    power: uniqueName('power'),
  };
  const fill = (text: string) => text.replace(/\{\{(\w+)\}\}/g, (_, k: string) => roles[k]);
  let dir: string;
  const file = (name: string) => path.join(dir, name);
  const flags = () => ['--db', ctx.db.url, '--schema', 'app', '--tenant-column', 'org_id', '--app-role', roles.app, '--bypass-role', roles.migrator];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'rlsctl-audit-cli-'));
    await ctx.db.runScript(fill(readFileSync(path.join(E2E, 'schema.sql'), 'utf8')));
    writeFileSync(file('policy.yaml'), fill(readFileSync(path.join(E2E, 'policy.yaml'), 'utf8')));
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await ctx.db.query(`DROP OWNED BY ${Object.values(roles).join(', ')} CASCADE`).catch(() => undefined);
    for (const r of Object.values(roles)) await ctx.db.query(`DROP ROLE IF EXISTS ${r}`).catch(() => undefined);
  });

  it('prints the JSON envelope, sorted, and exits 1 on errors (the default --fail-on)', async () => {
    const r = await runCli(['audit', ...flags(), '--format', 'json']);
    expect(r.code, r.stderr).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ version: 1, command: 'audit' });
    expect(doc.summary.error).toBeGreaterThan(0);
    expect(doc.summary.error + doc.summary.warning + doc.summary.info).toBe(doc.findings.length);
    const order = { error: 0, warning: 1, info: 2 } as Record<string, number>;
    const ranks = doc.findings.map((f: { severity: string }) => order[f.severity]);
    expect(ranks).toEqual([...ranks].sort((a: number, b: number) => a - b));
    const rules = new Set(doc.findings.map((f: { rule: string }) => f.rule));
    for (const code of ['RLS001', 'RLS002', 'RLS010', 'RLS021', 'RLS050', 'RLS063']) expect(rules.has(code), code).toBe(true);
    expect(doc.context.facts).toBe('inferred');
    // Fact flags without --policies: the project's policies/ folder is not read, and that is said.
    expect(r.stderr).toContain('policies/ folder is not read');
  });

  it('writes SARIF 2.1.0 that validates, and a text report with the inferred facts, no colour off a terminal', async () => {
    const [sarif, text] = await Promise.all([runCli(['audit', ...flags(), '--format', 'sarif']), runCli(['audit', ...flags()])]);
    expect(sarif.code).toBe(1);
    const ajv = new Ajv({ allErrors: true });
    ajv.addFormat('uri', /^[a-z][a-z0-9+.-]*:[^\s]*$/i);
    ajv.addFormat('uri-reference', /^[^\s]*$/);
    const validate = ajv.compile(sarifSchema);
    const log = JSON.parse(sarif.stdout);
    expect(validate(log), JSON.stringify(validate.errors)).toBe(true);
    expect(log.runs[0].results.length).toBeGreaterThan(20);
    expect(text.code).toBe(1);
    expect(text.stdout).not.toMatch(/\x1b\[/);
    expect(text.stdout).toMatch(/^rlsctl audit of postgres:\/\//);
    expect(text.stdout).toContain('facts inferred from the catalog');
    expect(text.stdout).toContain('tenant setting: app.org_id');
    expect(text.stdout).toMatch(/\n\d+ errors, \d+ warnings, \d+ info\n$/);
    expect(text.stdout).toContain('table app.invoices\n  error RLS001 rls-disabled');
  });

  it('--fail-on decides the exit code', async () => {
    const [never, info] = await Promise.all([
      runCli(['audit', ...flags(), '--format', 'json', '--fail-on', 'never']),
      runCli(['audit', ...flags(), '--format', 'json', '--fail-on', 'info']),
    ]);
    expect(never.code).toBe(0);
    expect(info.code).toBe(1);
    expect(JSON.parse(never.stdout).findings.length).toBe(JSON.parse(info.stdout).findings.length);
  });

  it('a baseline hides known findings, and fails only on a new hole', async () => {
    const written = await runCli(['audit', ...flags(), '--format', 'json', '--write-baseline', file('baseline.json')]);
    expect(written.code, written.stderr).toBe(0);
    expect(JSON.parse(written.stdout).findings).toEqual([]);
    const baseline = JSON.parse(readFileSync(file('baseline.json'), 'utf8'));
    expect(baseline.fingerprints.length).toBeGreaterThan(20);
    const quiet = await runCli(['audit', ...flags(), '--format', 'json', '--baseline', file('baseline.json')]);
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(JSON.parse(quiet.stdout).context.baseline.hidden).toBe(baseline.fingerprints.length);
    await ctx.db.query('CREATE TABLE app.new_hole (org_id uuid NOT NULL, id bigint, PRIMARY KEY (org_id, id))');
    try {
      const loud = await runCli(['audit', ...flags(), '--format', 'json', '--baseline', file('baseline.json')]);
      expect(loud.code).toBe(1);
      // Roles are cluster-wide: a login role that another test file creates meanwhile
      // (an undeclared bypass role, RLS011) is a new finding too; only this file's count.
      const ours = JSON.parse(loud.stdout).findings.filter(
        (f: { object: { kind: string; name: string } }) => f.object.kind !== 'role' || Object.values(roles).includes(f.object.name),
      );
      expect(ours.map((f: { fingerprint: string }) => f.fingerprint)).toEqual(['RLS001:app.new_hole']);
    } finally {
      await ctx.db.query('DROP TABLE app.new_hole');
    }
  });

  it("with a policy file: the file's facts, drift (RLS006) and exempt tables (RLS007)", async () => {
    const r = await runCli(['audit', '--db', ctx.db.url, '--policies', file('policy.yaml'), '--format', 'json']);
    expect(r.code, r.stderr).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.context.facts).toBe('policy-file');
    const byRule = (code: string) => doc.findings.filter((f: { rule: string }) => f.rule === code);
    expect(byRule('RLS007').map((f: { object: { name: string } }) => f.object.name)).toEqual(['schema_migrations']);
    // clean_items carries hand-named policies (guard, access), not the file's: apply would change it.
    expect(
      byRule('RLS006').some((f: { object: { name: string; table?: string } }) => f.object.table === 'clean_items' || f.object.name === 'clean_items'),
    ).toBe(true);
    expect(byRule('RLS001').length).toBeGreaterThan(0);
  });

  it('exits 2 on contradicting inputs and a table the database lacks; 3 when the database fails, never printing the password', async () => {
    const both = await runCli(['audit', '--db', ctx.db.url, '--policies', file('policy.yaml'), '--app-role', roles.app]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--policies and --app-role both say the facts/);
    writeFileSync(file('missing.yaml'), readFileSync(file('policy.yaml'), 'utf8') + '      not_there: tenant\n');
    const missing = await runCli(['audit', '--db', ctx.db.url, '--policies', file('missing.yaml')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('app.not_there');
    const down = await runCli(['audit', '--db', 'postgres://someone:hunter2secret@127.0.0.1:1/nowhere']);
    expect(down.code).toBe(3);
    expect(down.stderr + down.stdout).not.toContain('hunter2secret');
    const badBaseline = await runCli(['audit', ...flags(), '--baseline', file('policy.yaml')]);
    expect(badBaseline.code).toBe(2);
  });
});

describe('rlsctl audit, the embedded default', () => {
  it('loads --schema into an embedded server, applies the policy file, and audits it', async () => {
    const r = await runCli(['audit', '--schema', 'fixtures/demo/schema.sql', '--policies', 'policies/saas.yaml', '--format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('no database named: auditing embedded PostgreSQL');
    const doc = JSON.parse(r.stdout);
    expect(doc.summary.error).toBe(0);
    // Converged by apply: no drift and no undeclared table; the exempt table is listed.
    expect(doc.findings.filter((f: { rule: string }) => f.rule === 'RLS006' || f.rule === 'RLS005')).toEqual([]);
    expect(doc.findings.filter((f: { rule: string }) => f.rule === 'RLS007').map((f: { message: string }) => f.message)).toEqual([
      'app.schema_migrations is exempt from tenant isolation: bookkeeping of the migration tool, holds no tenant data',
    ]);
  });
});
