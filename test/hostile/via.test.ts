import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import pg from 'pg';
import { parseSync } from 'libpg-query';
import { loadParser } from '../../src/policy/expression.js';
import { runCli } from '../helpers/cli.js';
import { runPsql } from '../helpers/psql.js';
import { describeEachServer, uniqueName, type TestDatabase } from '../helpers/db.js';
import { createCanary, expectUntouched, snapshotDatabase } from '../helpers/hostile.js';

/**
 * `via` isolation that would fail open (issue 14):
 * - a `via` whose `references` are not a unique key of the parent: with the
 *   parent keyed (tenant_id, id), `parent.id = child.invoice_id` matches the
 *   parent row of every tenant with that id, so each of them sees the child;
 * - a partition named like the alias of the generated EXISTS (`rls_parent`),
 *   read directly: `rls_parent.invoice_id = rls_parent.invoice_id` compared
 *   the parent's column with itself and admitted every row.
 * Each case is a real cross-tenant read (or its refusal) on 18 and 14.
 */

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';

describeEachServer('hostile: via', (ctx) => {
  const app = uniqueName('via_app');
  let dir: string;

  beforeAll(async () => {
    await ctx.db.query(`CREATE ROLE ${app} LOGIN PASSWORD 'secret'`);
    await createCanary(ctx.db);
    dir = mkdtempSync(path.join(os.tmpdir(), 'rlsctl-via-'));
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await ctx.db?.query(`DROP OWNED BY ${app}`).catch(() => undefined);
    await ctx.db?.query(`DROP ROLE IF EXISTS ${app}`).catch(() => undefined);
  });

  /** A policy file for one schema: `invoices` a tenant table, `lines` via it. */
  function policy(schema: string, via: string, extra = ''): string {
    const file = path.join(dir, `${schema}.yaml`);
    writeFileSync(
      file,
      [
        'version: 1',
        'tenant: { setting: app.tenant_id, type: uuid, column: tenant_id }',
        `roles: { app: [${app}] }`,
        'schemas:',
        `  ${schema}:`,
        '    tables:',
        '      invoices: tenant',
        `      lines: { via: ${via} }`,
        extra,
      ].join('\n'),
    );
    return file;
  }

  async function setUp(db: TestDatabase, schema: string, ddl: string): Promise<void> {
    await db.runScript(
      `CREATE SCHEMA ${schema};\n${ddl}\nGRANT USAGE ON SCHEMA ${schema} TO ${app};\nGRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO ${app};`,
    );
  }

  /** What tenant `tenant` reads with `sql`, as the app role. */
  async function readAs(tenant: string, sql: string): Promise<string[]> {
    const client = new pg.Client({ connectionString: ctx.db.urlAs(app) });
    await client.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT pg_catalog.set_config('app.tenant_id', $1, true)`, [tenant]);
      const { rows } = await client.query<{ note: string }>(sql);
      await client.query('ROLLBACK');
      return rows.map((r) => r.note).sort();
    } finally {
      await client.end();
    }
  }

  it('a via on a parent column that is not a unique key (parent key (tenant_id, id)) is refused by plan and apply, naming the key to add', async () => {
    await setUp(
      ctx.db,
      'via_leak',
      `CREATE TABLE via_leak.invoices (tenant_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
       CREATE TABLE via_leak.lines (invoice_id int NOT NULL, note text NOT NULL);
       INSERT INTO via_leak.invoices VALUES ('${A}', 1), ('${B}', 1);
       INSERT INTO via_leak.lines VALUES (1, 'line of invoice 1 of B');`,
    );
    const file = policy('via_leak', '{ parent: invoices, columns: [invoice_id], references: [id] }');
    const before = await snapshotDatabase(ctx.db);
    const plan = await runCli(['plan', '--policies', file, '--db', ctx.db.url]);
    expect(plan.code, plan.stderr).toBe(2);
    expect(plan.stderr).toContain('via_leak.lines');
    expect(plan.stderr).toContain('not a unique key of via_leak.invoices');
    expect(plan.stderr).toContain('ALTER TABLE via_leak.invoices ADD UNIQUE (id)');
    const apply = await runCli(['apply', '--policies', file, '--db', ctx.db.url]);
    expect(apply.code, apply.stdout + apply.stderr).toBe(2);
    expect(apply.stderr).toContain('not a unique key of via_leak.invoices');
    // Nothing was applied: no policy that would show B's line to A.
    await expectUntouched(ctx.db, before);
    // audit with the policy file says so too, before anything is applied.
    const audit = await runCli(['audit', '--policies', file, '--db', ctx.db.url, '--format', 'json', '--fail-on', 'never']);
    expect(audit.code, audit.stderr).toBe(0);
    const findings = (JSON.parse(audit.stdout) as { findings: Array<{ rule: string; message: string; help?: string }> }).findings.filter(
      (f) => f.rule === 'RLS033',
    );
    expect(findings.map((f) => f.message)).toEqual([
      'the policy file takes the tenant of via_leak.lines via via_leak.invoices, joined on (id), which is not a unique key of via_leak.invoices: a row of via_leak.lines is visible to every tenant that has a row of via_leak.invoices with that key',
    ]);
    expect(findings[0].help).toContain('ALTER TABLE via_leak.invoices ADD UNIQUE (id);');
  });

  it('audit of an embedded database built from --schema refuses such a via too (exit 2), before auditing', async () => {
    const schema = path.join(dir, 'embedded.sql');
    writeFileSync(
      schema,
      `CREATE ROLE ${app};
       CREATE SCHEMA via_embedded;
       CREATE TABLE via_embedded.invoices (tenant_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
       CREATE TABLE via_embedded.lines (invoice_id int NOT NULL, note text NOT NULL);`,
    );
    const file = policy('via_embedded', '{ parent: invoices, columns: [invoice_id], references: [id] }');
    const env = { DATABASE_URL: '', PGHOST: '', PGPORT: '', PGUSER: '', PGDATABASE: '', PGPASSWORD: '', PGSSLMODE: '' };
    const audit = await runCli(['audit', '--schema', schema, '--policies', file], { env });
    expect(audit.code, audit.stdout + audit.stderr).toBe(2);
    expect(audit.stderr).toContain('not a unique key of via_embedded.invoices');
    expect(audit.stderr).toContain('ALTER TABLE via_embedded.invoices ADD UNIQUE (id)');
  });

  it('audit RLS033 finds an existing via-style policy joined on a non-unique parent column; its printed fix, run, makes the finding go', async () => {
    const t = "(SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid)";
    const exists = 'EXISTS (SELECT 1 FROM via_audit.invoices AS rls_parent WHERE rls_parent.id = lines.invoice_id)';
    await setUp(
      ctx.db,
      'via_audit',
      `CREATE TABLE via_audit.invoices (tenant_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
       CREATE POLICY guard ON via_audit.invoices AS RESTRICTIVE FOR ALL TO ${app} USING (tenant_id = ${t}) WITH CHECK (tenant_id = ${t});
       CREATE POLICY access ON via_audit.invoices FOR ALL TO ${app} USING (tenant_id = ${t}) WITH CHECK (tenant_id = ${t});
       ALTER TABLE via_audit.invoices ENABLE ROW LEVEL SECURITY;
       CREATE TABLE via_audit.lines (invoice_id int NOT NULL, note text NOT NULL);
       CREATE POLICY guard ON via_audit.lines AS RESTRICTIVE FOR ALL TO ${app} USING (${exists}) WITH CHECK (${exists});
       CREATE POLICY access ON via_audit.lines FOR ALL TO ${app} USING (${exists}) WITH CHECK (${exists});
       ALTER TABLE via_audit.lines ENABLE ROW LEVEL SECURITY;
       INSERT INTO via_audit.invoices VALUES ('${A}', 1), ('${B}', 1);
       INSERT INTO via_audit.lines VALUES (1, 'line of invoice 1 of B');`,
    );
    // The shape is a real leak: A reads B's line.
    expect(await readAs(A, 'SELECT note FROM via_audit.lines')).toEqual(['line of invoice 1 of B']);
    const audit = async () => {
      const r = await runCli([
        'audit',
        '--db',
        ctx.db.url,
        '--schema',
        'via_audit',
        '--tenant-column',
        'tenant_id',
        '--app-role',
        app,
        '--format',
        'json',
        '--fail-on',
        'never',
      ]);
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { findings: Array<{ rule: string; message: string; help?: string }> }).findings.filter((f) => f.rule === 'RLS033');
    };
    const before = await audit();
    expect(before).toHaveLength(1);
    expect(before[0].message).toContain(
      'policies access, guard on via_audit.lines join via_audit.invoices on (id), which is not a unique key of via_audit.invoices',
    );
    expect(before[0].help).toContain('ALTER TABLE via_audit.invoices ADD UNIQUE (id);');
    // The fix needs ids that do not repeat: A's invoice 1 goes, then the printed fix runs as is.
    await ctx.db.query(`DELETE FROM via_audit.invoices WHERE tenant_id = '${A}'`);
    await ctx.db.runScript(before[0].help!);
    expect(await audit()).toEqual([]);
    expect(await readAs(A, 'SELECT note FROM via_audit.lines')).toEqual([]);
  });

  it('RLS033 with hostile names: the printed fix is one ALTER TABLE, the names quoted, a line break in a name kept out of the comment', async () => {
    const parent = 'in"v; DROP TABLE public.hostile_canary; --';
    const key = 'k\nDROP TABLE public.hostile_canary; --';
    const q = (name: string) => `"${name.replaceAll('"', '""')}"`;
    const exists = `EXISTS (SELECT 1 FROM via_names.${q(parent)} AS rls_parent WHERE rls_parent.${q(key)} = lines.invoice_id)`;
    await setUp(
      ctx.db,
      'via_names',
      `CREATE TABLE via_names.${q(parent)} (tenant_id uuid NOT NULL, ${q(key)} int NOT NULL, PRIMARY KEY (tenant_id, ${q(key)}));
       CREATE TABLE via_names.lines (invoice_id int NOT NULL, note text NOT NULL);
       CREATE POLICY guard ON via_names.lines AS RESTRICTIVE FOR ALL TO ${app} USING (${exists});
       ALTER TABLE via_names.lines ENABLE ROW LEVEL SECURITY;`,
    );
    const audit = async () => {
      const r = await runCli([
        'audit',
        '--db',
        ctx.db.url,
        '--schema',
        'via_names',
        '--tenant-column',
        'tenant_id',
        '--app-role',
        app,
        '--format',
        'json',
        '--fail-on',
        'never',
      ]);
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { findings: Array<{ rule: string; help?: string }> }).findings.filter((f) => f.rule === 'RLS033');
    };
    const [finding] = await audit();
    await loadParser();
    const { stmts } = parseSync(finding.help!) as { stmts: Array<{ stmt: Record<string, unknown> }> };
    expect(stmts.map((x) => Object.keys(x.stmt)[0])).toEqual(['AlterTableStmt']);
    await ctx.db.runScript(finding.help!);
    expect(await audit()).toEqual([]);
    expect((await ctx.db.query('SELECT count(*)::int AS n FROM public.hostile_canary')).rows[0].n).toBe(3);
  });

  it('unique keys that do not make the parent row unique for the join are refused too: partial, deferrable, on an expression', async () => {
    const keys = [
      'CREATE UNIQUE INDEX ON via_keys.invoices (id) WHERE id > 0',
      'ALTER TABLE via_keys.invoices ADD UNIQUE (id) DEFERRABLE INITIALLY DEFERRED',
      'CREATE UNIQUE INDEX ON via_keys.invoices ((id + 0))',
    ];
    for (const [k, key] of keys.entries()) {
      const schema = `via_keys_${k}`;
      await setUp(
        ctx.db,
        schema,
        `CREATE TABLE ${schema}.invoices (tenant_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
         CREATE TABLE ${schema}.lines (invoice_id int NOT NULL, note text NOT NULL);
         ${key.replace('via_keys', schema)};`,
      );
      const file = policy(schema, '{ parent: invoices, columns: [invoice_id], references: [id] }');
      const plan = await runCli(['plan', '--policies', file, '--db', ctx.db.url]);
      expect(plan.code, `${key}\n${plan.stderr}`).toBe(2);
      expect(plan.stderr).toContain(`not a unique key of ${schema}.invoices`);
    }
  });

  it('a unique index under its own collation does not count when the column compares case-insensitively: refused, as the leak it would be', async () => {
    await setUp(
      ctx.db,
      'via_ci',
      `CREATE COLLATION via_ci.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
       CREATE TABLE via_ci.invoices (tenant_id uuid NOT NULL, code text COLLATE via_ci.ci NOT NULL, PRIMARY KEY (tenant_id, code));
       CREATE UNIQUE INDEX invoices_code_c ON via_ci.invoices (code COLLATE "C");
       CREATE TABLE via_ci.lines (invoice_code text COLLATE via_ci.ci NOT NULL, note text NOT NULL);
       INSERT INTO via_ci.invoices VALUES ('${A}', 'x'), ('${B}', 'X');
       INSERT INTO via_ci.lines VALUES ('X', 'line of invoice X of B');`,
    );
    // The index holds 'x' and 'X' apart; `=` on the column does not.
    const { rows } = await ctx.db.query(`SELECT count(*)::int AS n FROM via_ci.invoices p JOIN via_ci.lines l ON p.code = l.invoice_code`);
    expect(rows[0].n).toBe(2);
    const file = policy('via_ci', '{ parent: invoices, columns: [invoice_code], references: [code] }');
    const plan = await runCli(['plan', '--policies', file, '--db', ctx.db.url]);
    expect(plan.code, plan.stderr).toBe(2);
    expect(plan.stderr).toContain('not a unique key of via_ci.invoices');
    // A unique key under the column's own collation counts.
    await expect(ctx.db.query('ALTER TABLE via_ci.invoices ADD UNIQUE (code)')).rejects.toThrow('could not create unique index');
    await ctx.db.query(`DELETE FROM via_ci.invoices WHERE tenant_id = '${A}'`);
    await ctx.db.query('ALTER TABLE via_ci.invoices ADD UNIQUE (code)');
    const again = await runCli(['apply', '--policies', file, '--db', ctx.db.url]);
    expect(again.code, again.stderr).toBe(0);
    expect(await readAs(A, 'SELECT note FROM via_ci.lines')).toEqual([]);
    expect(await readAs(B, 'SELECT note FROM via_ci.lines')).toEqual(['line of invoice X of B']);
  });

  it('with the unique key added (as the hint says), apply succeeds and a tenant sees only the lines of its own invoices', async () => {
    await setUp(
      ctx.db,
      'via_fixed',
      `CREATE TABLE via_fixed.invoices (tenant_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
       CREATE TABLE via_fixed.lines (invoice_id int NOT NULL, note text NOT NULL);
       INSERT INTO via_fixed.invoices VALUES ('${A}', 1), ('${B}', 2);
       INSERT INTO via_fixed.lines VALUES (1, 'A'), (2, 'B');`,
    );
    const file = policy('via_fixed', '{ parent: invoices, columns: [invoice_id], references: [id] }');
    expect((await runCli(['plan', '--policies', file, '--db', ctx.db.url])).code).toBe(2);
    await ctx.db.query('ALTER TABLE via_fixed.invoices ADD UNIQUE (id)');
    const apply = await runCli(['apply', '--policies', file, '--db', ctx.db.url]);
    expect(apply.code, apply.stderr).toBe(0);
    expect(await readAs(A, 'SELECT note FROM via_fixed.lines')).toEqual(['A']);
    expect(await readAs(B, 'SELECT note FROM via_fixed.lines')).toEqual(['B']);
  });

  it("a via on the parent's whole composite key (tenant_id, id) is accepted and matches the tenant column too: same id in two tenants, no leak", async () => {
    await setUp(
      ctx.db,
      'via_composite',
      `CREATE TABLE via_composite.invoices (tenant_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
       CREATE TABLE via_composite.lines (tenant_id uuid NOT NULL, invoice_id int NOT NULL, note text NOT NULL);
       INSERT INTO via_composite.invoices VALUES ('${A}', 1), ('${B}', 1);
       INSERT INTO via_composite.lines VALUES ('${A}', 1, 'A'), ('${B}', 1, 'B');`,
    );
    const file = policy('via_composite', '{ parent: invoices, columns: [tenant_id, invoice_id], references: [tenant_id, id] }');
    const apply = await runCli(['apply', '--policies', file, '--db', ctx.db.url]);
    expect(apply.code, apply.stderr).toBe(0);
    expect(await readAs(A, 'SELECT note FROM via_composite.lines')).toEqual(['A']);
    expect(await readAs(B, 'SELECT note FROM via_composite.lines')).toEqual(['B']);
  });

  // The partition is named like the alias of the generated EXISTS, and the
  // child's column like the parent's: a column reference qualified with the
  // partition's name must not resolve to the parent.
  const aliasDdl = (schema: string) => `
    CREATE TABLE ${schema}.invoices (tenant_id uuid NOT NULL, invoice_id int PRIMARY KEY);
    CREATE TABLE ${schema}.lines (invoice_id int NOT NULL, y int NOT NULL, note text NOT NULL) PARTITION BY LIST (y);
    CREATE TABLE ${schema}.rls_parent PARTITION OF ${schema}.lines FOR VALUES IN (2026);
    CREATE TABLE ${schema}.rls_parent_row PARTITION OF ${schema}.lines FOR VALUES IN (2027);
    INSERT INTO ${schema}.invoices VALUES ('${A}', 1), ('${B}', 2);
    INSERT INTO ${schema}.lines VALUES (1, 2026, 'A 2026'), (2, 2026, 'B 2026'), (1, 2027, 'A 2027'), (2, 2027, 'B 2027');`;

  it('compile: a partition named like the via alias, read directly, shows a tenant its own rows only', async () => {
    await setUp(ctx.db, 'via_alias', aliasDdl('via_alias'));
    const file = policy('via_alias', '{ parent: invoices, columns: [invoice_id], references: [invoice_id] }');
    const out = `${file}.sql`;
    const compiled = await runCli(['compile', '--policies', file, '-o', out]);
    expect(compiled.code, compiled.stderr).toBe(0);
    // As users run it: psql builds the partitioned table's index partition by partition.
    const run = await runPsql(ctx.db.url, ['-f', out]);
    expect(run.code, run.stderr).toBe(0);
    expect(await readAs(A, 'SELECT note FROM via_alias.rls_parent')).toEqual(['A 2026']);
    expect(await readAs(B, 'SELECT note FROM via_alias.rls_parent')).toEqual(['B 2026']);
    expect(await readAs(A, 'SELECT note FROM via_alias.rls_parent_row')).toEqual(['A 2027']);
    expect(await readAs(A, 'SELECT note FROM via_alias.lines')).toEqual(['A 2026', 'A 2027']);
    // compile and plan agree on the partition's policies: nothing left to do.
    const check = await runCli(['plan', '--check', '--policies', file, '--db', ctx.db.url]);
    expect(check.code, check.stdout + check.stderr).toBe(0);
  });

  it('apply: a partition named like the via alias, read directly, shows a tenant its own rows only', async () => {
    await setUp(ctx.db, 'via_alias_apply', aliasDdl('via_alias_apply'));
    const file = policy('via_alias_apply', '{ parent: invoices, columns: [invoice_id], references: [invoice_id] }');
    const apply = await runCli(['apply', '--policies', file, '--db', ctx.db.url]);
    expect(apply.code, apply.stderr).toBe(0);
    expect(await readAs(A, 'SELECT note FROM via_alias_apply.rls_parent')).toEqual(['A 2026']);
    expect(await readAs(B, 'SELECT note FROM via_alias_apply.rls_parent_row')).toEqual(['B 2027']);
  });
});
