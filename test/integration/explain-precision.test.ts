import { beforeAll, expect, it } from 'vitest';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { factsFromModel, type TenantFacts } from '../../src/facts/resolve-facts.js';
import { runExplain, type ExplainQuery, type ExplainResult } from '../../src/explain/run-explain.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';

/**
 * explain's verdicts do not depend on table statistics, and its findings
 * say what is true of the schema (issue 15, "explain"): on PostgreSQL 18 and 14.
 */

const POLICY = `USING (tenant_id = (SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid))`;

describeEachServer('explain precision', (ctx) => {
  const app = uniqueName('prec_app');
  let facts: TenantFacts;

  beforeAll(async () => {
    await ctx.db.query(`CREATE ROLE ${app}`);
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
      GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO ${app};
      ALTER TABLE app.served ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
      ALTER TABLE app.unserved ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
      CREATE POLICY tenant_access ON app.served TO ${app} ${POLICY};
      CREATE POLICY tenant_access ON app.unserved TO ${app} ${POLICY};
    `);
    const model = await parsePolicy([
      {
        file: 'policy.yaml',
        text: `version: 1\ntenant: { setting: app.tenant_id, type: uuid }\nroles: { app: [${app}] }\nschemas:\n  app:\n    tables:\n      served: tenant\n      unserved: tenant\n`,
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
});
