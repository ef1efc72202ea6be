import { beforeAll, expect, it } from 'vitest';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { factsFromModel, type TenantFacts } from '../../src/facts/resolve-facts.js';
import { runExplain, type ExplainQuery, type ExplainResult } from '../../src/explain/run-explain.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readQueryFile } from '../../src/explain/read-query-file.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { createCanary, expectUntouched, snapshotDatabase } from '../helpers/hostile.js';

/**
 * explain's verdicts do not depend on table statistics, and its findings
 * say what is true of the schema (issue 15, "explain"): on PostgreSQL 18 and 14.
 */

const POLICY = `USING (tenant_id = (SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid))`;

describeEachServer('explain precision', (ctx) => {
  const app = uniqueName('prec_app');
  const owner = uniqueName('prec_owner');
  let facts: TenantFacts;

  beforeAll(async () => {
    await ctx.db.query(`CREATE ROLE ${app}`);
    await ctx.db.query(`CREATE ROLE ${owner}`);
    await ctx.db.runScript(`
      CREATE SCHEMA app;
      GRANT USAGE ON SCHEMA app TO ${app};
      -- A tenant index, and a small partial index the planner prefers while the table is empty.
      CREATE TABLE app.served (tenant_id uuid NOT NULL, id bigint PRIMARY KEY, deleted_at timestamptz, created_at timestamptz, name text, status text);
      CREATE INDEX served_tenant_idx ON app.served (tenant_id);
      CREATE INDEX served_live_idx ON app.served (id) WHERE deleted_at IS NULL;
      -- The same without a tenant index.
      CREATE TABLE app.unserved (tenant_id uuid NOT NULL, id bigint PRIMARY KEY, deleted_at timestamptz, created_at timestamptz, name text, status text);
      CREATE INDEX unserved_live_idx ON app.unserved (id) WHERE deleted_at IS NULL;
      -- A plain table a view's own sub-query reads.
      CREATE TABLE app.other (ref bigint, label text);
      -- Unique lookups through an implicit cast (varchar compared as text); no tenant index.
      CREATE TABLE app.coded (tenant_id uuid NOT NULL, id bigint NOT NULL, code varchar(20) NOT NULL UNIQUE, name text);
      -- A table whose owner is not forced into its policies.
      CREATE TABLE app.unforced (tenant_id uuid NOT NULL, id bigint PRIMARY KEY, name text);
      CREATE INDEX unforced_tenant_idx ON app.unforced (tenant_id);
      ALTER TABLE app.unforced OWNER TO ${owner};
      -- Mixed-case names: a via child of a parent named "Parent".
      CREATE TABLE app."Parent" (tenant_id uuid NOT NULL, id bigint NOT NULL, PRIMARY KEY (tenant_id, id));
      CREATE TABLE app.child (id bigint PRIMARY KEY, p_tenant uuid NOT NULL, p_id bigint NOT NULL, body text);
      CREATE INDEX "Child_Parent_idx" ON app.child (p_tenant, p_id);
      -- A policy that reads its membership table through an inlined set-returning SQL function.
      CREATE TABLE app.members (tenant_id uuid NOT NULL, user_name text NOT NULL, PRIMARY KEY (tenant_id, user_name));
      CREATE TABLE app.guarded (tenant_id uuid NOT NULL, id bigint NOT NULL, owner text, PRIMARY KEY (tenant_id, id));
      CREATE FUNCTION app.memberships(who text) RETURNS SETOF app.members LANGUAGE sql STABLE AS 'SELECT * FROM app.members WHERE user_name = who';
      GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO ${app};
      ALTER TABLE app.guarded ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
      CREATE POLICY member_of ON app.guarded TO ${app} USING (EXISTS (SELECT 1 FROM app.memberships(guarded.owner) m WHERE m.tenant_id = guarded.tenant_id));
      ALTER TABLE app.coded ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
      CREATE POLICY tenant_access ON app.coded TO ${app} ${POLICY};
      ALTER TABLE app.unforced ENABLE ROW LEVEL SECURITY;
      CREATE POLICY tenant_access ON app.unforced TO ${app}, ${owner} ${POLICY};
      ALTER TABLE app."Parent" ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
      CREATE POLICY tenant_access ON app."Parent" TO ${app} ${POLICY};
      ALTER TABLE app.child ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
      CREATE POLICY via_parent ON app.child TO ${app} USING (EXISTS (SELECT 1 FROM app."Parent" p WHERE p.tenant_id = child.p_tenant AND p.id = child.p_id));
      -- Views: one owned by the app role with a sub-query of its own, one owned by the superuser, one by the table's owner.
      CREATE VIEW app.served_counts AS SELECT s.id, (SELECT count(*) FROM app.other o WHERE o.ref = s.id) AS n FROM app.served s;
      ALTER VIEW app.served_counts OWNER TO ${app};
      CREATE VIEW app.served_all AS SELECT * FROM app.served;
      CREATE VIEW app.unforced_all AS SELECT * FROM app.unforced;
      ALTER VIEW app.unforced_all OWNER TO ${owner};
      GRANT SELECT ON app.served_all, app.unforced_all TO ${app};
      GRANT USAGE ON SCHEMA app TO ${owner};
      ALTER TABLE app.served ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
      ALTER TABLE app.unserved ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
      CREATE POLICY tenant_access ON app.served TO ${app} ${POLICY};
      CREATE POLICY tenant_access ON app.unserved TO ${app} ${POLICY};
    `);
    const model = await parsePolicy([
      {
        file: 'policy.yaml',
        text: `version: 1\ntenant: { setting: app.tenant_id, type: uuid }\nroles: { app: [${app}] }\nschemas:\n  app:\n    tables:\n      served: tenant\n      unserved: tenant\n      coded: tenant\n      guarded: tenant\n      unforced: tenant\n      Parent: tenant\n      child: { via: { parent: Parent, columns: [p_tenant, p_id], references: [tenant_id, id] } }\n`,
      },
    ]);
    facts = factsFromModel(model);
  });

  async function explain(queries: Array<string | ExplainQuery>): Promise<ExplainResult> {
    const client = await ctx.db.client();
    try {
      const list = queries.map((q, i) => (typeof q === 'string' ? { name: `q${i + 1}`, text: q } : q));
      return await runExplain(client, facts, list);
    } finally {
      await client.end();
    }
  }
  const verdicts = (result: ExplainResult) => result.findings.map((f) => f.fingerprint).sort();

  it('gives the same verdict on an empty table and on the same table with 100k rows', async () => {
    const queries = [
      'SELECT * FROM app.served WHERE deleted_at IS NULL',
      'SELECT * FROM app.unserved WHERE deleted_at IS NULL',
      'SELECT name FROM app.served WHERE deleted_at IS NULL AND name = $1',
    ];
    const empty = await explain(queries);
    // While the table is empty, the planner reads the small partial index whole: that is statistics, not the schema.
    expect(JSON.stringify(empty.queries[0].plans!.noSeqScan)).toContain('served_live_idx');
    for (const t of ['served', 'unserved']) {
      await ctx.db.query(
        `INSERT INTO app.${t} SELECT ('00000000-0000-4000-8000-' || lpad((i % 100)::text, 12, '0'))::uuid, i, CASE WHEN i % 10 = 0 THEN now() END, now(), 'n' || i, 's' FROM generate_series(1, 100000) AS i`,
      );
      await ctx.db.query(`ANALYZE app.${t}`);
    }
    const full = await explain(queries);
    expect(JSON.stringify(full.queries[0].plans!.noSeqScan)).toContain('served_tenant_idx');
    expect(verdicts(empty)).toEqual(['EXP001:q2:app.unserved']);
    expect(verdicts(full)).toEqual(verdicts(empty));
    // The table with no tenant index is flagged on both, and the message says that no index leads with the tenant column.
    expect(full.findings[0].message).toContain('no index leads with tenant_id');
  });

  it("does not blame a table's policies for a view's own sub-query", async () => {
    const { findings, queries } = await explain(['SELECT * FROM app.served_counts']);
    // The view's correlated sub-query is a per-row SubPlan on the scan of app.served ...
    expect(JSON.stringify(queries[0].plans!.asIs)).toMatch(/"Subplan Name":"SubPlan \d+"/);
    // ... but it is the view's, not a sub-query of the policy tenant_access.
    expect(findings).toEqual([]);
  });

  it("blames a policy for a SubPlan it causes through a function, and not for the query's own", async () => {
    const { findings, queries } = await explain([
      'SELECT id FROM app.guarded WHERE id = $1',
      'SELECT s.id, (SELECT count(*) FROM app.other o WHERE o.ref = s.id) AS n FROM app.served s',
    ]);
    expect(JSON.stringify(queries[0].plans!.asIs)).toMatch(/"Relation Name":"members"/);
    const exp003 = findings.filter((f) => f.rule === 'EXP003');
    expect(exp003.map((f) => f.fingerprint)).toEqual(['EXP003:q1:app.guarded']);
    expect(exp003[0].message).toMatch(/SubPlan \d+ .*on app\.members.* a sub-query of the policy member_of/);
  });

  it('says that the policies do not apply through a view whose owner bypasses them (RLS050)', async () => {
    const { findings } = await explain(['SELECT * FROM app.served_all', 'SELECT * FROM app.unforced_all']);
    expect(findings.map((f) => f.fingerprint).sort()).toEqual(['EXP001:q1:app.served', 'EXP001:q2:app.unforced']);
    const [superuser, tableOwner] = [findings.find((f) => f.object.name === 'q1')!, findings.find((f) => f.object.name === 'q2')!];
    expect(superuser.message).toMatch(
      /\S+ \(the owner of the view app\.served_all, which reads it as its owner\) is a superuser, so the policies of app\.served do not apply \(rlsctl audit RLS050\)/,
    );
    expect(tableOwner.message).toContain(
      `${owner} (the owner of the view app.unforced_all, which reads it as its owner) owns app.unforced, which does not force row level security`,
    );
    for (const f of [superuser, tableOwner]) {
      expect(f.help).toContain('RLS050');
      expect(f.help).not.toMatch(/RLS001|RLS010/);
      if (ctx.server.major >= 15) expect(f.help).toMatch(/^ALTER VIEW app\.(served|unforced)_all SET \(security_invoker = true\);/);
      else expect(f.help).toContain(`ALTER VIEW app.${f === superuser ? 'served' : 'unforced'}_all OWNER TO view_owner;`);
    }
  });

  it('recognises a unique lookup through an implicit cast', async () => {
    const { findings, queries } = await explain([
      'SELECT * FROM app.coded WHERE code = $1',
      'SELECT * FROM app.coded WHERE code::text = $1',
      'SELECT * FROM app.coded WHERE name = $1',
    ]);
    expect(JSON.stringify(queries[0].plans!.noSeqScan)).toMatch(/"Index Cond":"\(\(coded\.code\)::text = /);
    // Not a unique lookup: a seq scan with no tenant index is still flagged.
    expect(findings.map((f) => f.fingerprint)).toEqual(['EXP001:q3:app.coded']);
  });

  it('quotes every identifier of a fix, and says no index leads with the tenant column only where none does', async () => {
    const { findings } = await explain(['SELECT count(*) FROM app.child', 'SELECT * FROM app.unserved WHERE deleted_at IS NULL']);
    const via = findings.find((f) => f.object.name === 'q1')!;
    expect(via.help).toContain('SELECT ... FROM app."Parent" p JOIN app.child c ON c.p_tenant = p.tenant_id AND c.p_id = p.id');
    expect(via.help).toContain('one on "Child_Parent_idx"');
    expect(via.help).not.toMatch(/app\.Parent\b/);
    expect(findings.find((f) => f.object.name === 'q2')!.message).toContain('no index leads with tenant_id');
  });

  it('plans sqlc queries with their parameters translated; a name that tries to smuggle SQL runs nothing', async () => {
    await createCanary(ctx.db);
    const dir = mkdtempSync(path.join(tmpdir(), 'rlsctl-sqlc-'));
    const file = path.join(dir, 'queries.sql');
    writeFileSync(
      file,
      [
        '-- name: GetServed :one',
        'SELECT * FROM app.served WHERE id = @id;',
        '-- name: ListServed :many',
        'SELECT * FROM app.served WHERE name = sqlc.arg(name) AND deleted_at IS NOT DISTINCT FROM sqlc.narg(deleted) AND id IN (sqlc.slice(ids)) LIMIT @limit;',
        '-- name: Smuggle :one',
        "SELECT * FROM app.served WHERE id = sqlc.arg('x''); DROP TABLE public.hostile_canary; --');",
        '-- name: SmuggleQuoted :many',
        'SELECT * FROM app.served WHERE id = @"x; DELETE FROM public.hostile_canary; --";',
        '',
      ].join('\n'),
    );
    const before = await snapshotDatabase(ctx.db);
    const read = await readQueryFile(file);
    expect(read.problems).toEqual([]);
    const { findings, queries } = await explain(read.queries);
    expect(queries.map((q) => [q.name, q.planned])).toEqual([
      ['GetServed', true],
      ['ListServed', true],
      ['Smuggle', true],
      ['SmuggleQuoted', true],
    ]);
    expect(findings.filter((f) => f.rule === 'EXP004')).toEqual([]);
    for (const q of queries) expect(JSON.stringify(q.plans!.noSeqScan)).toMatch(/\$1\b/);
    await expectUntouched(ctx.db, before);
  });

  it('writes nothing: no statistics, no catalog row, no prepared statement outlives the run', async () => {
    const stats = async () =>
      (
        await ctx.db.query(
          `SELECT c.relname, c.relpages, c.reltuples, (SELECT count(*)::int FROM pg_catalog.pg_statistic s WHERE s.starelid = c.oid) AS columns
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'app' ORDER BY 1`,
        )
      ).rows;
    await createCanary(ctx.db);
    const before = { stats: await stats(), snapshot: await snapshotDatabase(ctx.db) };
    // The probe is planned for both tables (each is read without its tenant predicate as an index condition).
    const result = await explain(['SELECT * FROM app.served WHERE deleted_at IS NULL', 'SELECT * FROM app.unserved WHERE deleted_at IS NULL']);
    expect(result.queries.every((q) => q.planned)).toBe(true);
    expect(await stats()).toEqual(before.stats);
    await expectUntouched(ctx.db, before.snapshot);
  });
});
