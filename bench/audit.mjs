#!/usr/bin/env node
// `node bench/audit.mjs [--quick]` after `npm run build`: rlsctl audit on a database with
// 1,000 and 10,000 tenant tables (policies, indexes, a sprinkling of defects), measured
// side by side with reading the same catalog rows once with plain queries.
//
// Aims (issue 4): 10,000 tables audited in under 3 s on a 2-core machine; no more than 3x
// the plain catalog read; 1,000 -> 10,000 tables no more than 12-fold.
import pg from 'pg';
import { benchServer, freshDatabase, time, report, emit, QUICK } from './lib.mjs';
import { runAudit } from '../dist/audit/run-audit.js';
import { inferFacts } from '../dist/facts/resolve-facts.js';

const SIZES = QUICK ? [200, 2000] : [1000, 10000];
const SAMPLES = QUICK ? 3 : 5;
/** 10000 -> 10k, for the figure names of bench/results.json. */
const k = (n) => (n % 1000 === 0 ? `${n / 1000}k` : String(n));
const T = "(SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid)";

/** The DDL of table i: clean, or with one of a few defects (about 3% of tables). */
function tableSql(i) {
  const t = `app.t${i}`;
  const defect =
    i % 97 === 1 ? 'not-forced' : i % 89 === 2 ? 'no-index' : i % 83 === 3 ? 'bad-cast' : i % 79 === 4 ? 'no-rls' : i % 73 === 5 ? 'global-unique' : 'none';
  const key = defect === 'no-index' ? 'PRIMARY KEY (id)' : 'PRIMARY KEY (tenant_id, id)';
  const lookup = defect === 'bad-cast' ? "(current_setting('app.tenant_id')::uuid)" : T;
  const out = [
    `CREATE TABLE ${t} (tenant_id uuid NOT NULL, id bigint NOT NULL, name text, number int${defect === 'global-unique' ? ' UNIQUE' : ''}, ${key})`,
    `ALTER TABLE ${t} OWNER TO bench_owner`,
    `CREATE POLICY rlsctl_tenant_guard ON ${t} AS RESTRICTIVE FOR ALL TO bench_app USING (tenant_id = ${lookup}) WITH CHECK (tenant_id = ${lookup})`,
    `CREATE POLICY rlsctl_tenant_access ON ${t} AS PERMISSIVE FOR ALL TO bench_app USING (tenant_id = ${lookup}) WITH CHECK (tenant_id = ${lookup})`,
    `GRANT SELECT, INSERT, UPDATE, DELETE ON ${t} TO bench_app`,
  ];
  if (defect !== 'no-rls') out.push(`ALTER TABLE ${t} ENABLE ROW LEVEL SECURITY`);
  if (defect !== 'no-rls' && defect !== 'not-forced') out.push(`ALTER TABLE ${t} FORCE ROW LEVEL SECURITY`);
  return out.join(';\n') + ';';
}

async function buildDatabase(server, n) {
  const url = await freshDatabase(server, `rlsctl_bench_audit_${n}`);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_app') THEN CREATE ROLE bench_app LOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_owner') THEN CREATE ROLE bench_owner NOLOGIN; END IF;
  END $$`);
  await client.query('CREATE SCHEMA app AUTHORIZATION bench_owner; GRANT USAGE ON SCHEMA app TO bench_app');
  const batch = 250;
  for (let start = 0; start < n; start += batch) {
    const sql = [];
    for (let i = start; i < Math.min(n, start + batch); i++) sql.push(tableSql(i));
    await client.query(`BEGIN;\n${sql.join('\n')}\nCOMMIT;`);
  }
  await client.query('ANALYZE');
  return { url, client };
}

/** The same catalog rows the audit reads, read once with plain queries: no functions, no joins beyond naming. */
async function plainRead(client) {
  const user = "n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'";
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  await client.query(`SELECT c.oid, n.nspname, c.relname, c.relkind, c.relowner, c.relrowsecurity, c.relforcerowsecurity, c.reloptions, c.relispartition, c.relacl
                        FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                       WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND ${user}`);
  await client.query(`SELECT a.attrelid, a.attname, a.attnum, a.attnotnull, a.atttypid FROM pg_catalog.pg_attribute a
                       JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                      WHERE a.attname = 'tenant_id' AND ${user}`);
  await client.query('SELECT polrelid, polname, polcmd, polpermissive, polroles, polqual, polwithcheck FROM pg_catalog.pg_policy');
  await client.query(`SELECT x.indrelid, x.indexrelid, x.indisvalid, x.indisunique, x.indisprimary, x.indkey, x.indnkeyatts, x.indpred IS NOT NULL
                        FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class c ON c.oid = x.indrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE ${user}`);
  await client.query("SELECT conrelid, confrelid, conname, conkey, confkey FROM pg_catalog.pg_constraint WHERE contype = 'f'");
  await client.query('SELECT oid, rolname, rolsuper, rolbypassrls, rolcanlogin FROM pg_catalog.pg_roles');
  await client.query('SELECT roleid, member FROM pg_catalog.pg_auth_members');
  await client.query("SELECT ev_class, oid FROM pg_catalog.pg_rewrite WHERE rulename = '_RETURN'");
  await client.query('SELECT oid, proname, proowner FROM pg_catalog.pg_proc WHERE prosecdef');
  await client.query('SELECT setdatabase, setrole, setconfig FROM pg_catalog.pg_db_role_setting');
  await client.query('ROLLBACK');
}

const server = await benchServer();
const figures = [];
const medians = {};
try {
  process.stdout.write(`audit benchmark on ${server.label}${QUICK ? ' (quick)' : ''}\n`);
  for (const n of SIZES) {
    const built = Date.now();
    const { client } = await buildDatabase(server, n);
    process.stdout.write(`\n${n} tenant tables (built in ${((Date.now() - built) / 1000).toFixed(1)} s)\n`);
    const facts = await inferFacts(
      { schema: ['app'], tenantColumn: 'tenant_id', tenantSetting: 'app.tenant_id', appRole: ['bench_app'], bypassRole: [] },
      client,
    );
    // One warm-up of each, then alternate the two measurements so that both see the same machine.
    let result = await runAudit(client, facts);
    await plainRead(client);
    const auditSamples = [];
    const plainSamples = [];
    for (let i = 0; i < SAMPLES; i++) {
      auditSamples.push(await time(async () => (result = await runAudit(client, facts))));
      plainSamples.push(await time(() => plainRead(client)));
    }
    const counts = {};
    for (const f of result.findings) counts[f.rule] = (counts[f.rule] ?? 0) + 1;
    process.stdout.write(
      `findings: ${Object.entries(counts)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}; catalog ${result.stats.catalogMs} ms, rules ${result.stats.rulesMs} ms, ${result.stats.expressionsParsed} distinct expressions parsed\n`,
    );
    const large = n === SIZES[1];
    const a = report(`audit_${k(n)}_tables_s`, auditSamples, 's', large ? '<= 3' : undefined);
    const p = report(`catalog_read_${k(n)}_tables_s`, plainSamples, 's');
    const ratios = auditSamples.map((s, i) => s / plainSamples[i]);
    const r = report(large ? 'audit_vs_catalog_read_ratio' : `audit_vs_catalog_read_ratio_${k(n)}`, ratios, 'ratio', '<= 3');
    figures.push(a, p, r);
    medians[n] = a.median;
    await client.end();
  }
  const growth = medians[SIZES[1]] / medians[SIZES[0]];
  process.stdout.write(`\ngrowth ${SIZES[0]} -> ${SIZES[1]} tables: ${growth.toFixed(2)}x (aim <= 12x)\n`);
  figures.push({ name: `audit_growth_${k(SIZES[0])}_to_${k(SIZES[1])}`, unit: 'ratio', aim: '<= 12', median: growth, min: growth, max: growth, samples: 1 });
  emit(figures);
} finally {
  await server.stop();
}
