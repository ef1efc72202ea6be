#!/usr/bin/env node
// `node bench/audit-100k.mjs [--quick] [--rebuild] [--build-only]` after `npm run build`: `rlsctl audit` as a
// user runs it (`node bin/rlsctl.js audit --db URL ...`, node start included) on a database of
// time-partitioned tenant tables: 100 tables with 1,000 partitions each (100,100 relations), and
// the same shape at 10 tables (10,010 relations) measured in the same run for the growth.
//
// Aims (issue 13, item 6): 100,000 relations audited in at most 10 s; 10k -> 100k at most 11-fold.
//
// The databases take minutes to build, so they are kept between runs on DATABASE_URL's server
// (`rlsctl_bench_audit_parts_<n>`, marked by a comment that names their shape); `--rebuild`
// drops and builds them again (an interrupted build resumes where it stopped);
// `--build-only` builds them and measures nothing. Without DATABASE_URL they are built on a throwaway embedded
// server each run. Each partition carries its parent's two policies, RLS flags and grant, as
// `rlsctl apply` gives them, except a sprinkling of defects (a partition without RLS, one
// without its policies, a parent not forced).
import pg from 'pg';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { benchServer, report, emit, QUICK } from './lib.mjs';

const REBUILD = process.argv.includes('--rebuild');
const BUILD_ONLY = process.argv.includes('--build-only');
const PARTITIONS = QUICK ? 100 : 1000;
const SIZES = QUICK ? [2, 20] : [10, 100];
const SAMPLES = QUICK ? 3 : 5;
const SHAPE = `rlsctl bench audit-100k shape 1: %s tables x ${PARTITIONS} partitions`;
const here = path.dirname(fileURLToPath(import.meta.url));
const T = "(SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid)";

/** Parent table i and its partitions, built server-side in one transaction. */
function parentSql(i) {
  const t = `app.t${i}`;
  const notForced = i % 7 === 3;
  return `BEGIN;
SET LOCAL ROLE bench_owner;
CREATE TABLE ${t} (tenant_id uuid NOT NULL, id bigint NOT NULL, day int NOT NULL, amount int, PRIMARY KEY (tenant_id, id, day)) PARTITION BY RANGE (day);
DO $$
DECLARE
  part text;
BEGIN
  FOR d IN 0..${PARTITIONS - 1} LOOP
    part := 't${i}_d' || d;
    EXECUTE format('CREATE TABLE app.%I PARTITION OF ${t} FOR VALUES FROM (%s) TO (%s)', part, d, d + 1);
    -- Defects: about one partition in a thousand without RLS, one without its policies.
    IF (d + ${i}) % 997 <> 5 THEN
      EXECUTE format('ALTER TABLE app.%I ENABLE ROW LEVEL SECURITY', part);
      ${notForced ? '' : "EXECUTE format('ALTER TABLE app.%I FORCE ROW LEVEL SECURITY', part);"}
    END IF;
    IF (d + ${i}) % 991 <> 7 THEN
      EXECUTE format('CREATE POLICY rlsctl_tenant_guard ON app.%I AS RESTRICTIVE FOR ALL TO bench_app USING (tenant_id = ${T.replaceAll("'", "''")}) WITH CHECK (tenant_id = ${T.replaceAll("'", "''")})', part);
      EXECUTE format('CREATE POLICY rlsctl_tenant_access ON app.%I AS PERMISSIVE FOR ALL TO bench_app USING (tenant_id = ${T.replaceAll("'", "''")}) WITH CHECK (tenant_id = ${T.replaceAll("'", "''")})', part);
    END IF;
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON app.%I TO bench_app', part);
  END LOOP;
END $$;
CREATE POLICY rlsctl_tenant_guard ON ${t} AS RESTRICTIVE FOR ALL TO bench_app USING (tenant_id = ${T}) WITH CHECK (tenant_id = ${T});
CREATE POLICY rlsctl_tenant_access ON ${t} AS PERMISSIVE FOR ALL TO bench_app USING (tenant_id = ${T}) WITH CHECK (tenant_id = ${T});
GRANT SELECT, INSERT, UPDATE, DELETE ON ${t} TO bench_app;
ALTER TABLE ${t} ENABLE ROW LEVEL SECURITY;
${notForced ? '' : `ALTER TABLE ${t} FORCE ROW LEVEL SECURITY;`}
COMMIT;`;
}

/** The database of `tables` partitioned tables: kept when its comment says it was fully built. */
async function database(server, tables) {
  const name = `rlsctl_bench_audit_parts_${tables}${QUICK ? '_quick' : ''}`;
  const shape = SHAPE.replace('%s', String(tables));
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  try {
    const { rows } = await admin.query(
      `SELECT pg_catalog.shobj_description(d.oid, 'pg_database') AS comment FROM pg_catalog.pg_database d WHERE d.datname = $1`,
      [name],
    );
    if (!REBUILD && rows[0]?.comment === shape) return { url: server.urlFor(name), builtS: null };
    const started = performance.now();
    // An interrupted build (no comment yet) resumes: each table is built in a
    // transaction of its own, so the tables that exist are complete.
    const resume = !REBUILD && rows.length > 0;
    if (!resume) {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.query(`CREATE DATABASE ${name}`);
    }
    const client = new pg.Client({ connectionString: server.urlFor(name) });
    await client.connect();
    try {
      await client.query(`DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_app') THEN CREATE ROLE bench_app LOGIN; END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_owner') THEN CREATE ROLE bench_owner NOLOGIN; END IF;
      END $$`);
      await client.query('CREATE SCHEMA IF NOT EXISTS app AUTHORIZATION bench_owner; GRANT USAGE ON SCHEMA app TO bench_app');
      for (let i = 0; i < tables; i++) {
        if (resume && (await client.query(`SELECT pg_catalog.to_regclass('app.t${i}') IS NOT NULL AS built`)).rows[0].built) continue;
        await client.query(parentSql(i));
        if ((i + 1) % 10 === 0) process.stdout.write(`  built ${i + 1}/${tables} tables (${((performance.now() - started) / 1000).toFixed(0)} s)\n`);
      }
      await client.query('VACUUM ANALYZE');
    } finally {
      await client.end();
    }
    // The comment last: a build that was interrupted is built again next time.
    await admin.query(`COMMENT ON DATABASE ${name} IS '${shape}'`);
    return { url: server.urlFor(name), builtS: (performance.now() - started) / 1000 };
  } finally {
    await admin.end();
  }
}

/** One `rlsctl audit` process, node start included; its exit code is 1 (findings), its wall time returned. */
function auditOnce(url) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const args = [
      path.join(here, '..', 'bin', 'rlsctl.js'),
      'audit',
      '--db',
      url,
      '--schema',
      'app',
      '--tenant-column',
      'tenant_id',
      '--tenant-setting',
      'app.tenant_id',
      '--app-role',
      'bench_app',
      '--format',
      'json',
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DATABASE_URL: '' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.on('error', reject);
    child.on('close', (code) => {
      const wall = (performance.now() - started) / 1000;
      if (code !== 0 && code !== 1) reject(new Error(`rlsctl audit exited ${code}: ${err.slice(0, 500)}`));
      else resolve({ wall, out });
    });
  });
}

function summary(out) {
  const findings = JSON.parse(out).findings ?? [];
  const counts = {};
  for (const f of findings) counts[f.rule] = (counts[f.rule] ?? 0) + 1;
  return Object.entries(counts)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}

const server = await benchServer();
const figures = [];
try {
  process.stdout.write(`audit of partitioned tenant tables on ${server.label}${QUICK ? ' (quick)' : ''}\n`);
  const dbs = [];
  for (const tables of SIZES) {
    const { url, builtS } = await database(server, tables);
    const relations = tables * (PARTITIONS + 1);
    process.stdout.write(
      `${tables} tables x ${PARTITIONS} partitions = ${relations} relations: ${builtS === null ? 'kept from an earlier run' : `built in ${builtS.toFixed(0)} s`}\n`,
    );
    dbs.push({ tables, relations, url });
  }
  if (!BUILD_ONLY) figures.push(...(await measure(dbs)));
  emit(figures);
} finally {
  await server.stop();
}

async function measure(dbs) {
  // One warm-up of each, then alternate the sizes so that both see the same machine.
  for (const db of dbs) {
    const { out } = await auditOnce(db.url);
    process.stdout.write(`${db.relations} relations: findings ${summary(out)}\n`);
    db.samples = [];
  }
  for (let i = 0; i < SAMPLES; i++) for (const db of dbs) db.samples.push((await auditOnce(db.url)).wall);
  const [small, large] = dbs;
  /** 100100 -> 100k, for the figure names of bench/results.json (the quick run's small sizes as they are). */
  const k = (n) => (n >= 1000 ? `${Math.round(n / 1000)}k` : String(n));
  const a = report(`audit_${k(large.relations)}_tables_s`, large.samples, 's', QUICK ? undefined : '<= 10');
  const b = report(`audit_${k(small.relations)}_partitions_s`, small.samples, 's');
  const growth = a.median / b.median;
  process.stdout.write(`growth ${small.relations} -> ${large.relations} relations: ${growth.toFixed(2)}x (aim <= 11x)\n`);
  return [
    a,
    b,
    { name: `audit_growth_${k(small.relations)}_to_${k(large.relations)}`, unit: 'ratio', aim: '<= 11', median: growth, min: growth, max: growth, samples: 1 },
  ];
}
