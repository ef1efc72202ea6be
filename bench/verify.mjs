#!/usr/bin/env node
// `node bench/verify.mjs [--quick]` after `npm run build`: a full `rlsctl verify` of 200 tenant
// tables with 1,000 rows each (10 tenants), policies as rlsctl apply makes them, one app role.
// Every probe of every table: no tenant (fresh and after a local tenant ended), read, insert,
// update, move and delete across the boundary, as each of the two tenants.
//
// Aim (issue 6): the full verify in under 30 s on this machine; prints probes per second.
import pg from 'pg';
import { benchServer, freshDatabase, time, report, emit, QUICK } from './lib.mjs';
import { parsePolicy } from '../dist/policy/load-policy.js';
import { factsFromModel } from '../dist/facts/resolve-facts.js';
import { openDatabase } from '../dist/db/connection.js';
import { convergeDatabase } from '../dist/apply/converge.js';
import { runVerify } from '../dist/verify/run-verify.js';

const TABLES = QUICK ? 50 : 200;
const ROWS = 1000;
const TENANTS = 10;
const SAMPLES = QUICK ? 1 : 3;

const server = await benchServer();
try {
  const url = await freshDatabase(server, 'rlsctl_bench_verify');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_verify_app') THEN CREATE ROLE bench_verify_app NOLOGIN; END IF;
  END $$`);
  await client.query('CREATE SCHEMA app; GRANT USAGE ON SCHEMA app TO bench_verify_app');
  const tenants = `(SELECT array_agg(('00000000-0000-4000-8000-' || lpad(to_hex(k), 12, '0'))::uuid) FROM generate_series(1, ${TENANTS}) k)`;
  for (let start = 0; start < TABLES; start += 50) {
    const sql = [];
    for (let i = start; i < Math.min(TABLES, start + 50); i++) {
      sql.push(
        `CREATE TABLE app.t${i} (tenant_id uuid NOT NULL, id bigint GENERATED ALWAYS AS IDENTITY, title text NOT NULL, n integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tenant_id, id));`,
        `INSERT INTO app.t${i} (tenant_id, title, n) SELECT (${tenants})[1 + g % ${TENANTS}], 'row ' || g, g FROM generate_series(1, ${ROWS}) g;`,
        `GRANT SELECT, INSERT, UPDATE, DELETE ON app.t${i} TO bench_verify_app;`,
      );
    }
    await client.query(`BEGIN;\n${sql.join('\n')}\nCOMMIT;`);
  }
  await client.query('ANALYZE');
  await client.end();

  const yaml = [
    'version: 1',
    'tenant: { setting: app.tenant_id, type: uuid, column: tenant_id }',
    'roles: { app: [bench_verify_app] }',
    'schemas:',
    '  app:',
    '    tables:',
    ...Array.from({ length: TABLES }, (_, i) => `      t${i}: tenant`),
  ].join('\n');
  const model = await parsePolicy([{ file: 'bench.yaml', text: yaml }]);
  const db = await openDatabase({ db: url });
  try {
    await convergeDatabase(db, model);
    const facts = factsFromModel(model);
    process.stdout.write(`rlsctl verify: ${TABLES} tenant tables x ${ROWS} rows (${TENANTS} tenants), 1 app role, on ${server.label}\n`);
    const seconds = [];
    const rates = [];
    /** @type {Awaited<ReturnType<typeof runVerify>>} */
    let last;
    for (let s = 0; s < SAMPLES; s++) {
      seconds.push(
        await time(async () => {
          last = await runVerify(db, facts);
        }),
      );
      rates.push(last.probes / seconds[seconds.length - 1]);
    }
    if (last.leaks !== 0) throw new Error(`the benchmark database should pass, and verify found ${last.leaks} leaks: ${last.findings[0]?.message}`);
    process.stdout.write(`${last.relations} relations, ${last.probes} probes, ${last.leaks} leaks per run\n`);
    const figures = [report(`verify_${TABLES}_tables_s`, seconds, 's', '< 30 s'), report('verify_probes_per_s', rates, 'probes/s', 'report')];
    emit(figures);
  } finally {
    await db.close();
  }
} finally {
  await server.stop();
}
