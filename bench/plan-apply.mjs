// Benchmark of `plan` and `apply` on a database with many declared tenant tables.
//
//   npm run build && node bench/plan-apply.mjs [TABLES]     (default 1000)
//
// Uses DATABASE_URL when set (its user must be allowed to create databases and
// roles), else starts an embedded PostgreSQL. Budgets (issue 3, on a 2-core
// machine): plan on a converged database under 2 s, the first apply (empty
// tables) under 30 s. Also measured side by side: the same with a tenth of the
// tables, to show how the cost grows.
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { startEmbeddedServer } from '../dist/embedded/embedded-server.js';
import { openDatabase } from '../dist/db/connection.js';
import { parsePolicy } from '../dist/policy/load-policy.js';
import { buildPlan } from '../dist/plan/build-plan.js';
import { applyPlan } from '../dist/apply/apply-plan.js';
import { introspectCatalog } from '../dist/catalog/introspect-catalog.js';
import { report, emit, stats, QUICK } from './lib.mjs';

const TABLES = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 1000);
const REPEATS = QUICK ? 1 : 3;
const PLAN_BUDGET_MS = 2000;
const APPLY_BUDGET_MS = 30000;

const server = process.env.DATABASE_URL ? undefined : await startEmbeddedServer();
const adminUrl = process.env.DATABASE_URL ?? server.url;
const app = `bench_app_${randomBytes(3).toString('hex')}`;

function urlFor(database) {
  const u = new URL(adminUrl);
  u.pathname = `/${database}`;
  return u.toString();
}

async function withClient(url, fn) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function time(fn) {
  const start = process.hrtime.bigint();
  const value = await fn();
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, value };
}

const median = (xs) => stats(xs).median;

async function scenario(n) {
  const name = `bench_${n}_${randomBytes(3).toString('hex')}`;
  await withClient(adminUrl, (c) => c.query(`CREATE DATABASE ${name}`));
  const url = urlFor(name);
  try {
    await withClient(url, async (c) => {
      await c.query('CREATE SCHEMA bench');
      await c.query(`
        DO $$ BEGIN
          FOR i IN 1..${n} LOOP
            EXECUTE format('CREATE TABLE bench.t%s (tenant_id uuid NOT NULL, id bigint PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now(), body text)', lpad(i::text, 4, '0'));
          END LOOP;
        END $$;`);
    });
    const yaml = [
      'version: 1',
      `roles: { app: [${app}] }`,
      'schemas:',
      '  bench:',
      '    tables:',
      ...Array.from({ length: n }, (_, i) => `      t${String(i + 1).padStart(4, '0')}: tenant`),
      '',
    ].join('\n');
    const model = await parsePolicy([{ file: 'bench.yaml', text: yaml }]);
    const db = await openDatabase({ db: url });
    try {
      const first = await time(() => buildPlan(db.pool, model));
      const apply = await time(() => applyPlan(db, first.value));
      const converged = [];
      let statements = -1;
      for (let run = 0; run < 3; run++) {
        const t = await time(() => buildPlan(db.pool, model));
        converged.push(t.ms);
        statements = t.value.statements.length;
      }
      const introspect = await time(() => introspectCatalog(db.pool, { schemas: ['bench'] }));
      return {
        convergedSamples: converged,
        tables: n,
        firstPlanMs: first.ms,
        firstPlanStatements: first.value.statements.length,
        firstApplyMs: apply.ms,
        convergedPlanMs: median(converged),
        convergedStatements: statements,
        introspectMs: introspect.ms,
      };
    } finally {
      await db.close();
    }
  } finally {
    await withClient(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).catch(() => undefined);
  }
}

try {
  await withClient(adminUrl, (c) => c.query(`CREATE ROLE ${app} NOLOGIN`));
  const major = await withClient(adminUrl, async (c) => (await c.query("SELECT current_setting('server_version') AS v")).rows[0].v);
  console.log(`rlsctl plan/apply benchmark: PostgreSQL ${major}${server ? ' (embedded)' : ''}, ${TABLES} tenant tables`);
  const small = await scenario(Math.max(1, Math.round(TABLES / 10)));
  const larges = [];
  for (let r = 0; r < REPEATS; r++) larges.push(await scenario(TABLES));
  const large = larges[larges.length - 1];
  const row = (r) =>
    `${String(r.tables).padStart(6)} tables | first plan ${r.firstPlanMs.toFixed(0).padStart(6)} ms (${r.firstPlanStatements} statements) | ` +
    `first apply ${r.firstApplyMs.toFixed(0).padStart(6)} ms | converged plan ${r.convergedPlanMs.toFixed(0).padStart(5)} ms (${r.convergedStatements} statements) | ` +
    `catalog read ${r.introspectMs.toFixed(0).padStart(4)} ms`;
  console.log(row(small));
  console.log(row(large));
  console.log(
    `growth x${(large.tables / small.tables).toFixed(0)} tables: converged plan x${(large.convergedPlanMs / small.convergedPlanMs).toFixed(2)}, first apply x${(large.firstApplyMs / small.firstApplyMs).toFixed(2)}`,
  );
  console.log(
    `budget: converged plan ${large.convergedPlanMs.toFixed(0)} ms of ${PLAN_BUDGET_MS} ms (${((100 * large.convergedPlanMs) / PLAN_BUDGET_MS).toFixed(0)}%) ${large.convergedPlanMs < PLAN_BUDGET_MS ? 'OK' : 'OVER'}; ` +
      `first apply ${(large.firstApplyMs / 1000).toFixed(1)} s of ${APPLY_BUDGET_MS / 1000} s (${((100 * large.firstApplyMs) / APPLY_BUDGET_MS).toFixed(0)}%) ${large.firstApplyMs < APPLY_BUDGET_MS ? 'OK' : 'OVER'}`,
  );
  if (large.convergedStatements !== 0) console.log(`WARNING: the converged plan is not empty (${large.convergedStatements} statements)`);
  const k = TABLES === 1000 ? '1k' : String(TABLES);
  emit([
    report(
      `plan_converged_${k}_tables_s`,
      larges.flatMap((r) => r.convergedSamples.map((ms) => ms / 1000)),
      's',
      '<= 2',
    ),
    report(
      `apply_first_${k}_tables_s`,
      larges.map((r) => r.firstApplyMs / 1000),
      's',
      '<= 30',
    ),
    report(
      `plan_growth_${Math.max(1, Math.round(TABLES / 10))}_to_${TABLES}`,
      larges.map((r) => r.convergedPlanMs / small.convergedPlanMs),
      'ratio',
      'report',
    ),
  ]);
} finally {
  await withClient(adminUrl, (c) => c.query(`DROP ROLE IF EXISTS ${app}`)).catch(() => undefined);
  await server?.stop();
}
