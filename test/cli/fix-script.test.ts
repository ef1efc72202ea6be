import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AUDIT_RULES } from '../../src/audit/registry.js';
import type { Finding } from '../../src/report/finding.js';
import { describeEachServer } from '../helpers/db.js';
import { runCli } from '../helpers/cli.js';
import { runPsql } from '../helpers/psql.js';
import { fixtureRoles, ownFixesOnly, readAuditFixture } from '../helpers/audit-fixtures.js';

/**
 * `rlsctl audit --fix-script`, end to end: one database with one of every
 * defect (each rule's bad fixture in a schema of its own; those that need a
 * policy file or a pretended server version left out), the real binary writes
 * the script, the real psql runs it, and the audit then finds no error but
 * those whose fix needs a decision, and verify no leak.
 */

/** Rules whose bad fixture needs a policy file (RLS005-007, RLS044's membership model) or a pretended server version (RLS070). */
const APART = new Set(['RLS005', 'RLS006', 'RLS007', 'RLS044', 'RLS070']);

/** The fixture's schema `app` renamed; the setting app.tenant_id (and app.locale) kept. */
function inSchema(sql: string, schema: string): string {
  return sql.replace(/\bSCHEMA app\b/g, `SCHEMA ${schema}`).replace(/\bapp\.(?!tenant_id\b|locale\b)/g, `${schema}.`);
}

describeEachServer('rlsctl audit --fix-script', (ctx) => {
  const fixture = fixtureRoles();
  const { roles } = fixture;
  const rules = AUDIT_RULES.map((r) => r.code).filter((c) => !APART.has(c));
  const schemas = rules.map((c) => `fx_${c.toLowerCase()}`);
  let dir: string;
  const flags = () => [
    '--db',
    ctx.db.url,
    ...schemas.flatMap((s) => ['--schema', s]),
    '--tenant-column',
    'tenant_id',
    '--tenant-setting',
    'app.tenant_id',
    '--app-role',
    roles.app,
    '--bypass-role',
    roles.bypass,
  ];
  const audit = async (extra: string[] = []): Promise<{ code: number; findings: Finding[] }> => {
    const r = await runCli(['audit', ...flags(), '--format', 'json', ...extra]);
    expect(r.stderr).not.toMatch(/error:/i);
    const ours = fixture.ours((JSON.parse(r.stdout) as { findings: Finding[] }).findings, ctx.db.name);
    return { code: r.code, findings: ours };
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'rlsctl-fix-script-'));
    await fixture.create(ctx.db);
    for (const [i, rule] of rules.entries()) await ctx.db.runScript(fixture.fill(inSchema(readAuditFixture(rule, 'bad.sql')!, schemas[i])));
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    for (const s of schemas) await ctx.db.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`).catch(() => undefined);
    await ctx.db.query(`ALTER ROLE ${roles.app} RESET ALL`).catch(() => undefined);
    await fixture.drop(ctx.db);
  });

  it('writes one script that psql runs, after which no error is left but those that need a decision, and verify finds no leak', async () => {
    const verifyBefore = await runCli(['verify', ...flags(), '--format', 'json']);
    const leaksBefore = (JSON.parse(verifyBefore.stdout) as { findings: Finding[] }).findings;
    const before = await audit(['--fix-script', path.join(dir, 'fixes.sql'), '--fix-warnings']);
    expect(before.code).toBe(1); // exit codes unchanged: errors were found
    const errors = before.findings.filter((f) => f.severity === 'error');
    // One of every defect: each rule of the database fires.
    expect(new Set(before.findings.map((f) => f.rule))).toEqual(new Set(rules));
    const script = readFileSync(path.join(dir, 'fixes.sql'), 'utf8');
    // Policies before ENABLE, one transaction, index builds after it.
    const begin = script.indexOf('BEGIN;');
    const commit = script.indexOf('COMMIT;');
    expect(begin).toBeGreaterThan(-1);
    expect(script.indexOf('CREATE POLICY')).toBeGreaterThan(begin);
    expect(script.indexOf('CREATE POLICY')).toBeLessThan(script.indexOf('ENABLE ROW LEVEL SECURITY'));
    expect(script.indexOf('CREATE INDEX CONCURRENTLY')).toBeGreaterThan(commit);

    writeFileSync(path.join(dir, 'ours.sql'), ownFixesOnly(script, [...Object.values(roles), ctx.db.name]));
    const run = await runPsql(ctx.db.url, ['-f', path.join(dir, 'ours.sql')]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);

    const after = await audit();
    const manual = new Set(errors.filter((f) => !f.fix?.runnable).map((f) => f.fingerprint));
    expect(after.findings.filter((f) => f.severity === 'error' && !manual.has(f.fingerprint))).toEqual([]);
    // Errors whose fix needs a decision: RLS024 (which server-set claim holds the tenant), RLS035 (what the helper that breaks the cycle returns), and RLS050 on 14 (no security_invoker).
    const decided = new Set(errors.filter((f) => !f.fix?.runnable).map((f) => f.rule));
    expect([...decided].sort()).toEqual(ctx.server.major >= 15 ? ['RLS024', 'RLS035'] : ['RLS024', 'RLS035', 'RLS050']);
    // Every runnable fix of a warning took too.
    const fixed = new Set(before.findings.filter((f) => f.fix?.runnable).map((f) => f.fingerprint));
    expect(after.findings.filter((f) => fixed.has(f.fingerprint))).toEqual([]);

    const verifyAfter = await runCli(['verify', ...flags(), '--format', 'json']);
    const leaksAfter = (JSON.parse(verifyAfter.stdout) as { findings: Finding[] }).findings.filter((f) => f.severity === 'error');
    expect(leaksBefore.filter((f) => f.severity === 'error').length).toBeGreaterThan(0);
    // The defects whose fix is a decision stay, and verify still sees them (RLS035's recursion fails every query); the rest hold.
    const undecided = new Set([...decided].map((rule) => `fx_${rule.toLowerCase()}`));
    expect(leaksAfter.filter((f) => !undecided.has(f.object.schema ?? ''))).toEqual([]);
  });

  it('--fix-warnings without --fix-script is bad input (exit 2)', async () => {
    const r = await runCli(['audit', ...flags(), '--fix-warnings']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--fix-script');
  });
});
