import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import type pg from 'pg';
import { DatabaseError, UsageError } from '../../src/errors.js';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { factsFromModel, type TenantFacts } from '../../src/facts/resolve-facts.js';
import { runExplain, type ExplainFinding, type ExplainQuery, type ExplainResult } from '../../src/explain/run-explain.js';
import { readQueryFile } from '../../src/explain/read-query-file.js';
import { readExplainCatalog } from '../../src/explain/read-explain-catalog.js';
import { formatExplainText } from '../../src/explain/format-explain-text.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { ROOT } from '../helpers/cli.js';

/**
 * rlsctl explain against real PostgreSQL 18 and 14: the verdicts of
 * EXP001-EXP004 on the schema of fixtures/explain/schema.sql, generic plans
 * for parameters of every common type, and nothing written.
 */

const fixture = (name: string) => path.join(ROOT, 'fixtures/explain', name);
const withRoles = (text: string, roles: Record<string, string>) => text.replace(/\{\{(\w+)\}\}/g, (_, k: string) => roles[k]);

describeEachServer('explain', (ctx) => {
  const roles = { app: uniqueName('exp_app'), login: uniqueName('exp_login') };
  let facts: TenantFacts;

  beforeAll(async () => {
    await ctx.db.query(`CREATE ROLE ${roles.app}`);
    await ctx.db.query(`CREATE ROLE ${roles.login} LOGIN PASSWORD 'secret'`);
    await ctx.db.runScript(withRoles(readFileSync(fixture('schema.sql'), 'utf8'), roles));
    // Statistics say app.items is tiny: as is, the planner would rather read it sequentially.
    await ctx.db.query('ANALYZE app.items');
    const model = await parsePolicy([{ file: 'policy.yaml', text: withRoles(readFileSync(fixture('policy.yaml'), 'utf8'), roles) }]);
    facts = factsFromModel(model);
  });

  async function explain(queries: Array<string | ExplainQuery>, options: Parameters<typeof runExplain>[3] = {}): Promise<ExplainResult> {
    const client = await ctx.db.client();
    try {
      const list = queries.map((q, i) => (typeof q === 'string' ? { name: `q${i + 1}`, text: q, file: 'queries.sql', line: 10 * (i + 1), column: 1 } : q));
      return await runExplain(client, facts, list, options);
    } finally {
      await client.end();
    }
  }
  const rules = (findings: ExplainFinding[], name: string) =>
    findings
      .filter((f) => f.object.name === name)
      .map((f) => f.rule)
      .sort();

  it('does not flag queries a tenant-leading index serves, even on a tiny table', async () => {
    const { findings, queries } = await explain([
      'SELECT * FROM app.items WHERE id = $1',
      'SELECT name FROM app.items ORDER BY id LIMIT 10',
      'SELECT count(*) FROM app.items',
      'UPDATE app.items SET name = $2 WHERE id = $1',
      'DELETE FROM app.items WHERE name = $1',
      "INSERT INTO app.items (tenant_id, id, name) VALUES ($1, $2, 'x')",
    ]);
    expect(queries.every((q) => q.planned)).toBe(true);
    expect(findings).toEqual([]);
    // The table is tiny: as is, the planner reads it sequentially; the verdict comes from the second plan.
    expect(JSON.stringify(queries[2].plans!.asIs)).toContain('"Seq Scan"');
    expect(JSON.stringify(queries[2].plans!.noSeqScan)).not.toContain('"Seq Scan"');
  });

  it('flags a table without a tenant-leading index even when it is empty; the suggested index fixes it', async () => {
    expect((await ctx.db.query('SELECT count(*)::int AS n FROM app.bare')).rows[0].n).toBe(0);
    const query = 'SELECT id, created_at FROM app.bare b WHERE b.project_id = $1 AND b.created_at >= $2 ORDER BY b.created_at';
    const { findings } = await explain([query]);
    expect(findings).toHaveLength(1);
    const [f] = findings;
    expect(f).toMatchObject({
      rule: 'EXP001',
      name: 'seq-scan-on-tenant-table',
      severity: 'error',
      object: { kind: 'query', name: 'q1' },
      fingerprint: 'EXP001:q1:app.bare',
      location: { file: 'queries.sql', line: 10, column: 1 },
    });
    expect(f.detail?.nodeType).toBe('Seq Scan');
    expect(f.detail?.fragment?.[0]).toBe('Seq Scan on app.bare b');
    expect(f.detail?.fragment?.[1]).toMatch(/^ {2}Filter: .*b\.tenant_id = /);
    expect(f.help?.split('\n')[0]).toBe(
      'CREATE INDEX CONCURRENTLY IF NOT EXISTS bare_tenant_id_project_id_created_at_idx ON app.bare (tenant_id, project_id, created_at);',
    );
    await ctx.db.query(f.help!.split('\n')[0]);
    try {
      expect((await explain([query])).findings).toEqual([]);
    } finally {
      await ctx.db.query('DROP INDEX app.bare_tenant_id_project_id_created_at_idx');
    }
  });

  it('does not flag a lookup by a unique key, which reads at most one row', async () => {
    const { findings, queries } = await explain(['SELECT * FROM app.bare WHERE id = $1']);
    expect(JSON.stringify(queries[0].plans!.noSeqScan)).toContain('"Index Name":"bare_pkey"');
    expect(findings).toEqual([]);
  });

  it('flags a fail-open OR predicate, with the policy rewrite as the fix', async () => {
    const { findings } = await explain(['SELECT * FROM app.failopen']);
    expect(rules(findings, 'q1')).toEqual(['EXP001']);
    expect(findings[0].message).toMatch(/under an OR/);
    expect(findings[0].help).toContain(
      `ALTER POLICY fail_open ON app.failopen USING (tenant_id = (SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid))`,
    );
  });

  it('shows a volatile function in a policy as per-row work', async () => {
    const { findings } = await explain(['SELECT * FROM app.volatile', 'SELECT * FROM app.volatile WHERE id = $1']);
    expect(rules(findings, 'q1')).toEqual(['EXP001']);
    expect(rules(findings, 'q2')).toEqual(['EXP002']);
    for (const f of findings) {
      expect(f.message).toMatch(/calls app\.current_tenant_volatile\(\) for every row it reads/);
      expect(f.help).toContain('ALTER POLICY per_row_function ON app.volatile');
    }
  });

  it('flags a correlated policy sub-query that runs per row (SubPlan, not InitPlan)', async () => {
    const { findings } = await explain(['SELECT id FROM app.owned WHERE id = $1']);
    const exp003 = findings.filter((f) => f.rule === 'EXP003');
    expect(exp003).toHaveLength(1);
    expect(exp003[0].message).toMatch(/SubPlan \d+ .*on app\.members.* runs for every row .*app\.owned.*owner_member/);
    expect(exp003[0].fingerprint).toBe('EXP003:q1:app.owned');
    // the generated policies' lookup is an InitPlan: no EXP003 for them
    expect((await explain(['SELECT * FROM app.items WHERE id = $1'])).findings).toEqual([]);
  });

  it('counts partitions as their parent tenant table', async () => {
    const { findings } = await explain(['SELECT msg FROM app.logs WHERE at >= $1 ORDER BY at DESC LIMIT 20']);
    expect(findings.map((f) => f.fingerprint)).toEqual(['EXP001:q1:app.logs']);
    expect(findings[0].message).toContain('app.logs_b (a partition of app.logs)');
    expect(findings[0].help).toMatch(/^CREATE INDEX IF NOT EXISTS logs_tenant_id_at_idx ON app\.logs \(tenant_id, at\);/);
  });

  it('flags a via table read without its parent key, and not one read by it', async () => {
    const { findings } = await explain([
      'SELECT count(*) FROM app.notes',
      'SELECT body FROM app.notes WHERE item_tenant = $1 AND item_id = $2',
      // the fix the finding suggests: read it through the parent
      'SELECT count(*) FROM app.items p JOIN app.notes c ON c.item_tenant = p.tenant_id AND c.item_id = p.id',
    ]);
    expect(rules(findings, 'q1')).toEqual(['EXP001']);
    expect(findings[0].help).toContain('JOIN app.notes c ON c.item_tenant = p.tenant_id AND c.item_id = p.id');
    expect(rules(findings, 'q2')).toEqual([]);
    expect(rules(findings, 'q3')).toEqual([]);
  });

  it('plans parameters of every common type with the generic plan', async () => {
    const typed: Array<[string, string]> = [
      ['uuid', 'ref = $1'],
      ['int', 'n = $1'],
      ['bigint', 'big = $1'],
      ['text', 'label = $1'],
      ['timestamptz', 'at >= $1'],
      ['boolean', 'flag = $1'],
      ['numeric', 'amount > $1'],
      ['jsonb', 'doc @> $1'],
      ['text[]', 'tags && $1'],
      ['int[]', '$1 = ANY (ids)'],
    ];
    const all = typed.map(([type, where]) => ({ name: type, text: `SELECT id FROM app.typed WHERE ${where} AND id = $2` }));
    // pg_stat_statements writes a constant of the select list as a parameter whose type nothing says: planned as text.
    all.push({ name: 'untyped', text: 'SELECT $1 AS constant, id FROM app.typed WHERE id = $2' });
    all.push({
      name: 'many',
      text: 'SELECT id FROM app.typed WHERE ref = $1 AND n = $2 AND big = $3 AND label = $4 AND at < $5 AND flag = $6 AND amount = $7 AND doc ? $8 AND $9 = ANY (tags) LIMIT $10',
    });
    const { findings, queries } = await explain(all);
    expect(findings.filter((f) => f.rule === 'EXP004')).toEqual([]);
    expect(queries.every((q) => q.planned)).toBe(true);
    // A generic plan keeps the parameters; a custom plan for NULLs would fold them away.
    for (const q of queries) expect(JSON.stringify(q.plans!.noSeqScan)).toMatch(/\$1\b/);
    expect(JSON.stringify(queries.at(-1)!.plans!.noSeqScan)).toMatch(/\$9\b/);
    expect(findings).toEqual([]);
  });

  it('reports a syntax error (from the file) and a planning error (from the server) as EXP004 at their line', async () => {
    const file = await readQueryFile(fixture('syntax-error.sql'));
    const { findings, queries } = await explain(
      [...file.queries, { name: 'unknown_column', text: 'SELECT id,\n       nope FROM app.items', file: 'q.sql', line: 4, column: 1 }],
      { problems: file.problems },
    );
    expect(queries.filter((q) => q.planned).map((q) => q.name)).toEqual(['ok_before', 'ok_after']);
    const broken = findings.find((f) => f.object.name === 'broken')!;
    expect(broken).toMatchObject({ rule: 'EXP004', severity: 'error', location: { file: fixture('syntax-error.sql'), line: 7, column: 7 } });
    expect(broken.message).toMatch(/syntax error at or near "id"/);
    const unknown = findings.find((f) => f.object.name === 'unknown_column')!;
    expect(unknown).toMatchObject({ rule: 'EXP004', location: { file: 'q.sql', line: 5, column: 8 } });
    expect(unknown.message).toMatch(/column "nope" does not exist/);
  });

  it('refuses statements that are not queries without sending them, and leaves nothing behind', async () => {
    const client = await ctx.db.client();
    try {
      const before = (await client.query('SELECT count(*)::int AS n FROM app.items')).rows[0].n;
      const { findings } = await runExplain(client, facts, [
        { name: 'smuggled', text: 'SELECT 1; DROP TABLE app.items' },
        { name: 'set', text: "SET app.tenant_id = 'x'" },
        { name: 'insert', text: "INSERT INTO app.items (tenant_id, id) VALUES ('00000000-0000-4000-8000-00000000000a', 99)" },
        { name: 'delete', text: 'DELETE FROM app.items' },
        { name: 'params', text: 'UPDATE app.items SET note = $1 WHERE id = $2' },
        { name: 'fails', text: 'SELECT * FROM app.items WHERE id = $1 AND nope = $2' },
      ]);
      expect(findings.map((f) => [f.object.name, f.rule])).toEqual(
        expect.arrayContaining([
          ['smuggled', 'EXP004'],
          ['set', 'EXP004'],
          ['fails', 'EXP004'],
        ]),
      );
      expect(findings.find((f) => f.object.name === 'set')?.message).toMatch(/a SET is not a query/);
      expect(findings.filter((f) => ['insert', 'delete', 'params'].includes(f.object.name))).toEqual([]);
      const { rows } = await client.query(
        "SELECT (SELECT count(*)::int FROM app.items) AS n, current_user AS who, pg_catalog.current_setting('app.tenant_id', true) AS tenant, (SELECT count(*)::int FROM pg_catalog.pg_prepared_statements) AS prepared, pg_catalog.to_regclass('app.items') IS NOT NULL AS still_there",
      );
      const superuser = (await ctx.db.query('SELECT current_user AS u')).rows[0].u;
      // Back to the connecting role, no tenant, no prepared statement, no row changed, no table dropped.
      expect({ ...rows[0], tenant: rows[0].tenant ?? '' }).toEqual({ n: before, who: superuser, tenant: '', prepared: 0, still_there: true });
      // No transaction left open: a new statement starts a transaction of its own.
      expect((await client.query('SELECT pg_catalog.now() = pg_catalog.statement_timestamp() AS fresh')).rows[0].fresh).toBe(true);
    } finally {
      await client.end();
    }
  });

  it('exits 3 with the missing GRANT when the connecting role cannot SET ROLE to the app role', async () => {
    const { default: pgModule } = await import('pg');
    const client: pg.Client = new pgModule.Client({ connectionString: ctx.db.urlAs(roles.login) });
    await client.connect();
    try {
      const error = await runExplain(client, facts, [{ name: 'q', text: 'SELECT 1' }]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DatabaseError);
      expect((error as DatabaseError).exitCode).toBe(3);
      expect((error as DatabaseError).hint).toContain(`GRANT ${roles.app} TO ${roles.login};`);
    } finally {
      await client.end();
    }
  });

  it('refuses a tenant that is not of the tenant type, and tables the database lacks (exit 2)', async () => {
    await expect(explain(['SELECT 1'], { tenant: 'acme' })).rejects.toThrow(UsageError);
    const missing = { ...facts, tenantTables: [...facts.tenantTables, { schema: 'app', name: 'nope', column: 'tenant_id' }] };
    const client = await ctx.db.client();
    try {
      await expect(runExplain(client, missing, [{ name: 'q', text: 'SELECT 1' }])).rejects.toThrow(/lacks a table .*app\.nope/);
    } finally {
      await client.end();
    }
  });

  it('detects hypopg with a catalog query and says so when it is not there', async () => {
    const client = await ctx.db.client();
    try {
      const catalog = await readExplainCatalog(client, facts.tenantTables);
      const { rows } = await client.query("SELECT count(*)::int AS n FROM pg_catalog.pg_available_extensions WHERE name = 'hypopg'");
      expect(catalog.hypopg.available).toBe(rows[0].n > 0);
      const installed = (await client.query("SELECT count(*)::int AS n FROM pg_catalog.pg_extension WHERE extname = 'hypopg'")).rows[0].n > 0;
      expect(catalog.hypopg.installed).toBe(installed);
      expect(catalog.major).toBe(ctx.server.major);
      expect(catalog.relations.get('app.logs_b')?.table.name).toBe('logs');
    } finally {
      await client.end();
    }
    const result = await explain(['SELECT * FROM app.bare WHERE project_id = $1']);
    expect(result.context.hypopg.used).toBe(false);
    const text = formatExplainText(result.findings, result.queries, result.context, { color: false });
    expect(text).toMatch(/hypopg: (not available on this server|available on the server but not installed)/);
    expect(result.findings[0].detail?.hypothetical).toBeUndefined();
  });

  it('plans the queries of pg_stat_statements CSV and JSON exports', async () => {
    for (const name of ['pg_stat_statements.csv', 'pg_stat_statements.json', 'pg_stat_statements.ndjson']) {
      const read = await readQueryFile(fixture(name));
      const { findings, queries } = await explain(read.queries, { problems: read.problems });
      expect(findings.filter((f) => f.object.name !== 'queryid:46')).toEqual([]);
      expect(queries.filter((q) => q.planned).length).toBe(read.queries.length);
      expect(read.queries.length).toBeGreaterThan(1);
      expect(findings.filter((f) => f.rule !== 'EXP004')).toEqual([]);
      expect(findings.filter((f) => f.rule === 'EXP004').map((f) => f.object.name)).toEqual(name.endsWith('.json') ? ['queryid:46'] : []);
    }
  });
});
