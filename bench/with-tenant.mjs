#!/usr/bin/env node
// What withTenant and withTenantQuery (one round trip) cost around a point
// lookup, against the same lookup run bare on the pool, and which way of
// sending BEGIN + set_config is fastest.
//
//   npm run build && node bench/with-tenant.mjs [--rounds 40] [--iterations 60]
//
// Uses DATABASE_URL when set (its user must be allowed to create databases and
// roles; the bench makes its own database and role and drops both), else starts
// an embedded PostgreSQL. Every variant runs in every round, one after another,
// so they share the machine's state; a variant's figure is the median over the
// rounds of its mean time per call, and its ratio the median over the rounds of
// (its mean / the bare lookup's mean in the same round): short rounds and
// same-round ratios keep a burst of load on a shared machine from deciding the
// result. One connection per pool, calls one after another: this measures
// latency, where the round trips show. The figures of the pg path and of
// withTenantQuery come from a second phase where the bare lookup and the call
// measured alternate call by call on one pool (see `paired` below).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadavg, cpus } from 'node:os';
import pg from 'pg';
import { CompiledQuery, Kysely, PostgresDialect } from 'kysely';
import { withTenant } from '../dist/tenant/with-tenant.js';
import { withTenantQuery } from '../dist/tenant/with-tenant-query.js';
import { parsePolicy } from '../dist/policy/load-policy.js';
import { compileScript } from '../dist/compile/render-sql.js';
import { runScript } from '../dist/db/run-script.js';
import { startEmbeddedServer } from '../dist/embedded/embedded-server.js';
import { report, emit, stats, QUICK } from './lib.mjs';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const ROUNDS = option('rounds', QUICK ? 10 : 40);
const ITERATIONS = option('iterations', QUICK ? 30 : 60);
const WARMUP_ROUNDS = 3;
const ROWS_PER_TENANT = 5000;

// pg 8.23 warns that queuing a query on a busy client is deprecated (removed in
// pg 9); the "queued" variant below does exactly that, on purpose, once.
process.noDeprecation = true;

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';
const SETTING = 'app.tenant_id';
const LOOKUP = 'SELECT id, body FROM rt.notes WHERE id = $1';

function withDatabase(url, database) {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

function asRole(url, role, password) {
  const u = new URL(url);
  u.username = role;
  u.password = password;
  return u.toString();
}

async function adminQuery(url, sql) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function main() {
  const embedded = process.env.DATABASE_URL ? undefined : await startEmbeddedServer();
  const serverUrl = process.env.DATABASE_URL ?? embedded.url;
  const suffix = randomBytes(4).toString('hex');
  const database = `rlsctl_bench_${suffix}`;
  const role = `rlsctl_bench_app_${suffix}`;
  const password = randomBytes(18).toString('base64url');
  const pools = [];
  try {
    await adminQuery(serverUrl, `CREATE DATABASE ${database}`);
    const url = withDatabase(serverUrl, database);
    const setup = new pg.Client({ connectionString: url });
    await setup.connect();
    try {
      const version = (await setup.query("SELECT current_setting('server_version') AS v")).rows[0].v;
      const pgVersion = JSON.parse(readFileSync(new URL('../node_modules/pg/package.json', import.meta.url), 'utf8')).version;
      console.log(`PostgreSQL ${version}${embedded ? ' (embedded)' : ''}; node ${process.version}; pg ${pgVersion}`);
      await setup.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
      await setup.query(`
        CREATE SCHEMA rt;
        CREATE TABLE rt.notes (tenant_id uuid NOT NULL, id int NOT NULL, body text, PRIMARY KEY (tenant_id, id));
        INSERT INTO rt.notes SELECT t, g, 'note ' || g FROM unnest(ARRAY['${A}', '${B}']::uuid[]) t, generate_series(1, ${ROWS_PER_TENANT}) g;
        GRANT USAGE ON SCHEMA rt TO ${role};
        GRANT SELECT ON rt.notes TO ${role};
        ANALYZE rt.notes;`);
      const model = await parsePolicy([
        {
          file: 'bench.yaml',
          text: `version: 1\ntenant:\n  setting: ${SETTING}\n  type: uuid\nroles:\n  app: [${role}]\nschemas:\n  rt:\n    tables:\n      notes: tenant\n`,
        },
      ]);
      await runScript(setup, compileScript(model, { transactional: true }));
    } finally {
      await setup.end();
    }

    const appUrl = asRole(url, role, password);
    const pool = (extra = {}) => {
      const p = new pg.Pool({ connectionString: appUrl, max: 1, ...extra });
      p.on('error', () => undefined);
      pools.push(p);
      return p;
    };
    // The baseline: the tenant set for the whole session at connect time, the
    // unsafe way withTenant replaces. The same lookup then finds the same row
    // under the same policies, with no transaction around it.
    const session = pool({ options: `-c ${SETTING}=${A}` });
    const plain = pool();
    const piped = pool({ pipeline: true });
    const kyselySessionPool = pool({ options: `-c ${SETTING}=${A}` });
    const kyselySession = new Kysely({ dialect: new PostgresDialect({ pool: kyselySessionPool }) });
    const kyselyPlain = new Kysely({ dialect: new PostgresDialect({ pool: pool() }) });

    const check = (result) => {
      if (result.rows.length !== 1) throw new Error(`the lookup found ${result.rows.length} rows, expected 1`);
    };
    const id = (i) => (i % ROWS_PER_TENANT) + 1;

    /** A hand-written tenant transaction around the lookup, with `begin` opening it. */
    const manual = (p, begin) => async (i) => {
      const client = await p.connect();
      try {
        await begin(client);
        check(await client.query(LOOKUP, [id(i)]));
        await client.query('COMMIT');
      } finally {
        client.release();
      }
    };
    const literal = `BEGIN; SELECT pg_catalog.set_config('${SETTING}', '${A}', true)`;

    const variants = [
      {
        name: 'bare lookup, tenant set per session',
        note: '1 round trip',
        run: async (i) => check(await session.query(LOOKUP, [id(i)])),
      },
      {
        name: 'BEGIN, then set_config($1,$2,true)',
        note: 'awaited one by one: 4 round trips',
        run: manual(plain, async (c) => {
          await c.query('BEGIN');
          await c.query('SELECT pg_catalog.set_config($1, $2, true)', [SETTING, A]);
        }),
      },
      {
        name: 'BEGIN + set_config($1,$2,true) queued',
        note: "no await in between: pg sends the second after the first's reply; deprecated in pg 8.23",
        run: manual(plain, async (c) => {
          await Promise.all([c.query('BEGIN'), c.query('SELECT pg_catalog.set_config($1, $2, true)', [SETTING, A])]);
        }),
      },
      {
        name: "'BEGIN; SELECT set_config(lit,lit,true)'",
        note: 'one simple-protocol query: 3 round trips (what withTenant does on pg)',
        run: manual(plain, (c) => c.query(literal)),
      },
      {
        name: 'BEGIN + set_config($1,$2,true), pipeline pool',
        note: 'pg pipeline mode (pool option pipeline: true): both on the wire at once',
        run: manual(piped, async (c) => {
          await Promise.all([c.query('BEGIN'), c.query('SELECT pg_catalog.set_config($1, $2, true)', [SETTING, A])]);
        }),
      },
      {
        name: 'withTenant(pg.Pool)',
        note: 'the real thing',
        run: (i) => withTenant(plain, A, async (client) => check(await client.query(LOOKUP, [id(i)]))),
      },
      {
        name: 'withTenantQuery(pg.Pool)',
        note: 'set_config + lookup + Sync in one flight: 1 round trip',
        run: async (i) => check(await withTenantQuery(plain, A, LOOKUP, [id(i)])),
      },
      {
        name: 'withTenant(pg.Pool), pipeline pool',
        note: 'the real thing on a pipeline-mode pool',
        run: (i) => withTenant(piped, A, async (client) => check(await client.query(LOOKUP, [id(i)]))),
      },
      {
        name: 'Kysely bare lookup, tenant set per session',
        note: 'Kysely baseline',
        run: async (i) => check(await kyselySession.executeQuery(CompiledQuery.raw(LOOKUP, [id(i)]))),
      },
      {
        name: 'withTenant(Kysely)',
        note: 'Kysely sends BEGIN, then set_config: 4 round trips',
        run: (i) => withTenant(kyselyPlain, A, async (trx) => check(await trx.executeQuery(CompiledQuery.raw(LOOKUP, [id(i)])))),
      },
      {
        name: 'withTenantQuery(pool, Kysely compiled)',
        note: "the Kysely baseline's compiled query sent in one flight",
        run: async (i) => check(await withTenantQuery(plain, A, CompiledQuery.raw(LOOKUP, [id(i)]))),
      },
    ];

    // Every variant must see the tenant's row and nothing else before it is timed.
    for (const v of variants) await v.run(0);

    const perRound = new Map(variants.map((v) => [v.name, []]));
    for (let round = 0; round < ROUNDS + WARMUP_ROUNDS; round++) {
      for (const v of variants) {
        const start = process.hrtime.bigint();
        for (let i = 0; i < ITERATIONS; i++) await v.run(i);
        const micros = Number(process.hrtime.bigint() - start) / 1000 / ITERATIONS;
        if (round >= WARMUP_ROUNDS) perRound.get(v.name).push(micros);
      }
    }
    const median = (xs) => stats(xs).median;
    const BARE = variants[0].name;
    const KYSELY_BARE = 'Kysely bare lookup, tenant set per session';
    const KYSELY_VARIANTS = ['withTenant(Kysely)', 'withTenantQuery(pool, Kysely compiled)'];
    const baseOf = (name) => (KYSELY_VARIANTS.includes(name) ? KYSELY_BARE : BARE);
    const figure = new Map(variants.map((v) => [v.name, median(perRound.get(v.name))]));
    /** Median over the rounds of variant / base measured in the same round. */
    const ratio = (name, base = baseOf(name)) => median(perRound.get(name).map((x, r) => x / perRound.get(base)[r]));

    console.log(
      `\n${ROUNDS} rounds x ${ITERATIONS} calls per variant; one connection, calls in sequence; ` +
        `load average ${loadavg()
          .map((l) => l.toFixed(1))
          .join(' ')} on ${cpus().length} cores\n`,
    );
    const width = Math.max(...variants.map((v) => v.name.length));
    console.log(`${'variant'.padEnd(width)}  µs/call  ratio  ${'(vs)'.padEnd(12)} ${'p10-p90 µs'.padEnd(12)} note`);
    for (const v of variants) {
      const xs = [...perRound.get(v.name)].sort((a, b) => a - b);
      const p = (q) => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))].toFixed(0);
      const vs = baseOf(v.name) === BARE ? 'bare' : 'Kysely bare';
      console.log(
        `${v.name.padEnd(width)}  ${figure.get(v.name).toFixed(1).padStart(7)}  ${ratio(v.name).toFixed(2).padStart(5)}  ${vs.padEnd(12)} ${`${p(0.1)}-${p(0.9)}`.padEnd(12)} ${v.note}`,
      );
    }

    const candidates = ['BEGIN, then set_config($1,$2,true)', 'BEGIN + set_config($1,$2,true) queued', "'BEGIN; SELECT set_config(lit,lit,true)'"];
    const fastest = candidates.reduce((best, name) => (ratio(name) < ratio(best) ? name : best));
    console.log(`\nfastest way to open the tenant transaction on a default (non-pipeline) pool: ${fastest}`);
    console.log(`withTenant(pg.Pool) / bare lookup: ${ratio('withTenant(pg.Pool)').toFixed(2)}x`);
    console.log(`withTenant(pg.Pool) / hand-written one-query transaction: ${ratio('withTenant(pg.Pool)', candidates[2]).toFixed(2)}x`);
    console.log(`BEGIN then set_config($1,$2,true) / one-query transaction: ${ratio(candidates[0], candidates[2]).toFixed(2)}x`);
    console.log(`withTenantQuery(pg.Pool) / bare lookup: ${ratio('withTenantQuery(pg.Pool)').toFixed(2)}x`);
    console.log(`withTenant(Kysely) / Kysely bare lookup: ${ratio('withTenant(Kysely)').toFixed(2)}x`);
    console.log(`withTenantQuery(pool, Kysely compiled) / Kysely bare lookup: ${ratio('withTenantQuery(pool, Kysely compiled)').toFixed(2)}x`);
    const perRoundRatio = (name, base) => perRound.get(name).map((x, r) => x / perRound.get(base)[r]);

    // The one-flight figures, call by call: the bare lookup and withTenantQuery
    // alternate on the same pool (and so on the same connection; its session
    // tenant changes nothing for withTenantQuery, which sets the tenant anyway),
    // each timed alone, which order first alternating too; a round's ratio is
    // the median call of one over the median call of the other. A burst of load
    // then hits both, and a call stalled by the scheduler does not decide it.
    const paired = async (bare, oneFlight) => {
      const ratios = [];
      for (let round = 0; round < ROUNDS + WARMUP_ROUNDS; round++) {
        const times = [[], []];
        for (let i = 0; i < ITERATIONS; i++) {
          for (const which of i % 2 ? [1, 0] : [0, 1]) {
            const start = process.hrtime.bigint();
            await (which === 0 ? bare : oneFlight)(i);
            times[which].push(Number(process.hrtime.bigint() - start));
          }
        }
        if (round >= WARMUP_ROUNDS) ratios.push(median(times[1]) / median(times[0]));
      }
      return ratios;
    };
    const pgPaired = await paired(variants[0].run, async (i) => check(await withTenantQuery(session, A, LOOKUP, [id(i)])));
    const fnPaired = await paired(variants[0].run, (i) => withTenant(session, A, async (client) => check(await client.query(LOOKUP, [id(i)]))));
    const kyselyPaired = await paired(
      async (i) => check(await kyselySession.executeQuery(CompiledQuery.raw(LOOKUP, [id(i)]))),
      async (i) => check(await withTenantQuery(kyselySessionPool, A, CompiledQuery.raw(LOOKUP, [id(i)]))),
    );
    console.log(
      `\nalternating call by call on one pool: withTenantQuery / bare lookup ${median(pgPaired).toFixed(2)}x; ` +
        `withTenant / bare lookup ${median(fnPaired).toFixed(2)}x; withTenantQuery with a compiled Kysely query / Kysely bare lookup ${median(kyselyPaired).toFixed(2)}x`,
    );
    emit([
      // The one-round-trip path for a single statement (withTenantQuery); the
      // transaction around a function (withTenant) is with_tenant_fn_overhead_ratio.
      report('with_tenant_overhead_ratio', pgPaired, 'ratio', '<= 1.25 (1 round trip vs 1)'),
      report('with_tenant_fn_overhead_ratio', fnPaired, 'ratio', 'report (3 round trips vs 1)'),
      report('with_tenant_kysely_overhead_ratio', perRoundRatio('withTenant(Kysely)', KYSELY_BARE), 'ratio', 'report (4 round trips vs 1)'),
      report('with_tenant_kysely_one_flight_ratio', kyselyPaired, 'ratio', 'report (1 round trip vs 1)'),
    ]);
  } finally {
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
    await adminQuery(serverUrl, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => undefined);
    await adminQuery(serverUrl, `DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
    await embedded?.stop();
  }
}

main().catch((error) => {
  // Never print a connection string: it holds a password.
  console.error(`bench failed: ${error?.message ?? error}`);
  process.exitCode = 1;
});
