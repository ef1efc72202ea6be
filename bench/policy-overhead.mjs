// policy_overhead_ratio and naive_policy_slowdown: what the generated policies cost at query time.
//
// 1,000,000 tasks and 100,000 projects of 1,000 tenants (--quick: a tenth), in two schemas with the
// same data: `gen` protected by the policies rlsctl compiles, `naive` by the policy most tutorials
// show (tenant_id = current_setting('app.tenant_id')::uuid, no sub-select, no tenant index).
// Four typical tenant queries run as the app role with the tenant set, against the same queries
// with an explicit WHERE tenant_id = $1 as a bypass role; runs are interleaved so both see the
// same machine state. The same data in `claim` and `citus` carries the policies of the other tenant
// models of docs/policy-file.md (the tenant as a claim of request.jwt.claims; engine: citus, no
// sub-select): policy_overhead_ratio_claim and policy_overhead_ratio_citus, against the same WHERE.
//
// The membership model (tenant.membership, issue 17): a third schema `mem` with the same rows,
// protected through a membership table; users with 1, 10 and 100 memberships run the same
// queries, against the explicit WHERE tenant_id = ANY($tenants) with the user's tenants
// (policy_overhead_ratio_membership_1, _10, _100; aim <= 1.5 at 10).
import pg from 'pg';
import { performance } from 'node:perf_hooks';
import { parsePolicy } from '../dist/policy/load-policy.js';
import { compileStatements } from '../dist/compile/render-sql.js';
import { QUICK, benchServer, freshDatabase, report, emit } from './lib.mjs';

const TENANTS = QUICK ? 100 : 1000;
const TASKS_PER_TENANT = 1000;
const PROJECTS_PER_TENANT = 100;
const ROUNDS = QUICK ? 3 : 5;
const SAMPLES_PER_ROUND = QUICK ? 60 : 150;
const NAIVE_SAMPLES = QUICK ? 4 : 6;

const uuidOf = (k) => `00000000-0000-4000-8000-${k.toString(16).padStart(12, '0')}`;

const QUERIES = {
  point: { policy: 'SELECT * FROM %s.tasks WHERE id = $1', explicit: 'SELECT * FROM %s.tasks WHERE tenant_id = $2 AND id = $1' },
  newest50: {
    policy: 'SELECT * FROM %s.tasks ORDER BY created_at DESC LIMIT 50',
    explicit: 'SELECT * FROM %s.tasks WHERE tenant_id = $1 ORDER BY created_at DESC LIMIT 50',
  },
  count: { policy: 'SELECT count(*) FROM %s.tasks', explicit: 'SELECT count(*) FROM %s.tasks WHERE tenant_id = $1' },
  join: {
    policy: 'SELECT p.name, count(*) FROM %s.projects p JOIN %s.tasks t ON t.project_id = p.id GROUP BY p.name ORDER BY 2 DESC, 1 LIMIT 10',
    explicit:
      'SELECT p.name, count(*) FROM %s.projects p JOIN %s.tasks t ON t.project_id = p.id AND t.tenant_id = p.tenant_id WHERE p.tenant_id = $1 GROUP BY p.name ORDER BY 2 DESC, 1 LIMIT 10',
  },
};

/** The other tenant models, each on its own copy of the data: schema -> the policy file's header. */
const MODELS = {
  claim: 'tenant: { claim: app_metadata.org_id, type: uuid }',
  citus: 'engine: citus\ntenant: { setting: app.tenant_id, type: uuid }',
};

function sql(text, schema) {
  return text.replaceAll('%s', schema);
}

async function setup(url) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_app') THEN CREATE ROLE bench_app; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_bypass') THEN CREATE ROLE bench_bypass BYPASSRLS; END IF;
  END $$`);
  for (const schema of ['gen', 'naive', ...Object.keys(MODELS)]) {
    await c.query(`CREATE SCHEMA ${schema}`);
    await c.query(`CREATE TABLE ${schema}.projects (tenant_id uuid NOT NULL, id bigint PRIMARY KEY, name text NOT NULL)`);
    await c.query(
      `CREATE TABLE ${schema}.tasks (tenant_id uuid NOT NULL, id bigint PRIMARY KEY, project_id bigint NOT NULL, title text NOT NULL, created_at timestamptz NOT NULL)`,
    );
    await c.query(`GRANT USAGE ON SCHEMA ${schema} TO bench_app, bench_bypass`);
    await c.query(`GRANT SELECT ON ALL TABLES IN SCHEMA ${schema} TO bench_app, bench_bypass`);
  }
  const uuidExpr = (k) => `('00000000-0000-4000-8000-' || lpad(to_hex(${k}), 12, '0'))::uuid`;
  await c.query(`INSERT INTO gen.projects SELECT ${uuidExpr('(g - 1) / ' + PROJECTS_PER_TENANT + ' + 1')}, g, 'project ' || (g % ${PROJECTS_PER_TENANT})
                   FROM generate_series(1, ${TENANTS * PROJECTS_PER_TENANT}) g`);
  // Tasks of a tenant are spread over the table (id order is not tenant order), as in a real table.
  await c.query(`INSERT INTO gen.tasks
                 SELECT ${uuidExpr('(g % ' + TENANTS + ') + 1')}, g,
                        ((g % ${TENANTS})) * ${PROJECTS_PER_TENANT} + (g / ${TENANTS}) % ${PROJECTS_PER_TENANT} + 1,
                        'task ' || g, timestamptz '2026-01-01' + g * interval '1 second'
                   FROM generate_series(1, ${TENANTS * TASKS_PER_TENANT}) g`);
  for (const schema of ['naive', ...Object.keys(MODELS)]) {
    await c.query(`INSERT INTO ${schema}.projects SELECT * FROM gen.projects`);
    await c.query(`INSERT INTO ${schema}.tasks SELECT * FROM gen.tasks`);
  }

  for (const [schema, header] of [['gen', 'tenant: { setting: app.tenant_id, type: uuid }'], ...Object.entries(MODELS)]) {
    const model = await parsePolicy([
      {
        file: 'bench.yaml',
        text: `version: 1
${header}
roles: { app: [bench_app], bypass: [bench_bypass] }
schemas:
  ${schema}:
    tables:
      projects: tenant
      tasks:
        indexes:
          - [created_at]
          - [project_id]
`,
      },
    ]);
    const statements = compileStatements(model);
    await c.query('BEGIN');
    for (const s of statements.filter((s) => s.phase === 'transaction')) await c.query(s.sql);
    await c.query('COMMIT');
    for (const s of statements.filter((s) => s.phase === 'concurrent')) await c.query(s.sql);
  }
  // The baseline gets the same indexes; the naive schema gets none beyond its primary keys.
  await c.query(`ALTER TABLE naive.tasks ENABLE ROW LEVEL SECURITY; ALTER TABLE naive.tasks FORCE ROW LEVEL SECURITY;
                 ALTER TABLE naive.projects ENABLE ROW LEVEL SECURITY; ALTER TABLE naive.projects FORCE ROW LEVEL SECURITY;
                 CREATE POLICY tenant_isolation ON naive.tasks TO bench_app USING (tenant_id = current_setting('app.tenant_id')::uuid);
                 CREATE POLICY tenant_isolation ON naive.projects TO bench_app USING (tenant_id = current_setting('app.tenant_id')::uuid);`);
  await setupMembership(c);
  await c.query('VACUUM ANALYZE');
  await c.end();
}

const MEMBERSHIP_COUNTS = [1, 10, 100];
const USERS_PER_COUNT = 20;
const userOf = (n, u) => `00000000-0000-4000-9000-${(n * 1000 + u).toString(16).padStart(12, '0')}`;
/** The tenants of user u of those with n memberships: n consecutive tenants from a spread start. */
const tenantsOf = (n, u) => Array.from({ length: Math.min(n, TENANTS) }, (_, i) => uuidOf(((u * 37 + i) % TENANTS) + 1));

async function setupMembership(c) {
  await c.query('CREATE SCHEMA mem');
  await c.query('CREATE TABLE mem.memberships (user_id uuid NOT NULL, tenant_id uuid NOT NULL, PRIMARY KEY (tenant_id, user_id))');
  await c.query('CREATE TABLE mem.projects (LIKE gen.projects INCLUDING ALL)');
  await c.query('CREATE TABLE mem.tasks (LIKE gen.tasks INCLUDING ALL)');
  await c.query('INSERT INTO mem.projects SELECT * FROM gen.projects');
  await c.query('INSERT INTO mem.tasks SELECT * FROM gen.tasks');
  // Every tenant has other members too (200 per tenant), so the lookup seeks among many rows.
  await c.query(`INSERT INTO mem.memberships SELECT ('00000000-0000-4000-a000-' || lpad(to_hex(g), 12, '0'))::uuid, t.tenant_id
                   FROM generate_series(1, 200) g CROSS JOIN (SELECT DISTINCT tenant_id FROM gen.projects) t`);
  const rows = MEMBERSHIP_COUNTS.flatMap((n) =>
    Array.from({ length: USERS_PER_COUNT }, (_, u) => tenantsOf(n, u).map((t) => `('${userOf(n, u)}', '${t}')`)).flat(),
  );
  await c.query(`INSERT INTO mem.memberships VALUES ${rows.join(', ')}`);
  await c.query('GRANT USAGE ON SCHEMA mem TO bench_app, bench_bypass');
  await c.query('GRANT SELECT ON ALL TABLES IN SCHEMA mem TO bench_app, bench_bypass');
  const model = await parsePolicy([
    {
      file: 'bench-membership.yaml',
      text: `version: 1
tenant:
  membership: { table: mem.memberships, user_column: user_id, tenant_column: tenant_id, user: { setting: app.user_id, type: uuid } }
roles: { app: [bench_app], bypass: [bench_bypass] }
schemas:
  mem:
    tables:
      memberships: { mode: exempt, reason: membership table }
      projects: tenant
      tasks:
        indexes:
          - [created_at]
          - [project_id]
`,
    },
  ]);
  const statements = compileStatements(model);
  await c.query('BEGIN');
  for (const s of statements.filter((s) => s.phase === 'transaction')) await c.query(s.sql);
  await c.query('COMMIT');
  for (const s of statements.filter((s) => s.phase === 'concurrent')) await c.query(s.sql);
}

/** policy / explicit for users with n memberships: the same queries, the explicit side WHERE tenant_id = ANY($tenants). */
async function membershipRatios(app, bypass, random) {
  const figures = [];
  const explicit = {
    point: 'SELECT * FROM mem.tasks WHERE tenant_id = ANY ($2::uuid[]) AND id = $1',
    newest50: 'SELECT * FROM mem.tasks WHERE tenant_id = ANY ($1::uuid[]) ORDER BY created_at DESC LIMIT 50',
    count: 'SELECT count(*) FROM mem.tasks WHERE tenant_id = ANY ($1::uuid[])',
    join: 'SELECT p.name, count(*) FROM mem.projects p JOIN mem.tasks t ON t.project_id = p.id AND t.tenant_id = p.tenant_id WHERE p.tenant_id = ANY ($1::uuid[]) GROUP BY p.name ORDER BY 2 DESC, 1 LIMIT 10',
  };
  for (const n of MEMBERSHIP_COUNTS) {
    // Both sides must read the same rows, or the ratio means nothing.
    await app.query("SELECT set_config('app.user_id', $1, false)", [userOf(n, 0)]);
    const viaPolicy = (await app.query(sql(QUERIES.count.policy, 'mem'))).rows[0].count;
    const viaWhere = (await bypass.query(explicit.count, [tenantsOf(n, 0)])).rows[0].count;
    if (viaPolicy !== viaWhere || Number(viaPolicy) !== Math.min(n, TENANTS) * TASKS_PER_TENANT) {
      throw new Error(`membership bench: the policy reads ${viaPolicy} tasks, the explicit WHERE ${viaWhere}, for a user with ${n} memberships`);
    }
    const ratios = [];
    for (let round = 0; round < ROUNDS; round++) {
      let policyMs = 0;
      let explicitMs = 0;
      for (let i = 0; i < SAMPLES_PER_ROUND / 3; i++) {
        const u = Math.floor(random() * USERS_PER_COUNT);
        const tenants = tenantsOf(n, u);
        const k = Number.parseInt(tenants[0].slice(-12), 16);
        const taskId = k - 1 + TENANTS * Math.floor(random() * TASKS_PER_TENANT) || TENANTS;
        await app.query("SELECT set_config('app.user_id', $1, false)", [userOf(n, u)]);
        for (const [q, text] of Object.entries(QUERIES)) {
          const policyParams = q === 'point' ? [taskId] : [];
          const explicitParams = q === 'point' ? [taskId, tenants] : [tenants];
          const order = (i + round) % 2 === 0 ? ['p', 'e'] : ['e', 'p'];
          for (const side of order) {
            if (side === 'p') policyMs += (await timed(app, `m_${q}`, sql(text.policy, 'mem'), policyParams)).ms;
            else explicitMs += (await timed(bypass, `me_${q}`, explicit[q], explicitParams)).ms;
          }
        }
      }
      ratios.push(policyMs / explicitMs);
    }
    figures.push(report(`policy_overhead_ratio_membership_${n}`, ratios, 'ratio', n === 10 ? '<= 1.5' : 'report'));
  }
  return figures;
}

/** A session as `role`; `tenant` set for the session (the transaction-local form costs round trips, not query time). */
async function session(url, role) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`SET ROLE ${role}`);
  return c;
}

async function timed(client, name, text, params) {
  const start = performance.now();
  const r = await client.query({ name, text, values: params });
  const ms = performance.now() - start;
  return { ms, rows: r.rowCount };
}

export async function run() {
  const server = await benchServer();
  const figures = [];
  try {
    const url = await freshDatabase(server, 'bench_policy');
    const loadStart = performance.now();
    await setup(url);
    process.stdout.write(
      `loaded ${TENANTS * TASKS_PER_TENANT} tasks, ${TENANTS * PROJECTS_PER_TENANT} projects of ${TENANTS} tenants on ${server.label} in ${((performance.now() - loadStart) / 1000).toFixed(1)} s\n`,
    );
    const app = await session(url, 'bench_app');
    const bypass = await session(url, 'bench_bypass');
    const ratios = [];
    const modelRatios = Object.fromEntries(Object.keys(MODELS).map((m) => [m, []]));
    const slowdowns = [];
    const perQuery = {};
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let round = 0; round < ROUNDS; round++) {
      let policyMs = 0;
      let explicitMs = 0;
      const modelMs = Object.fromEntries(Object.keys(MODELS).map((m) => [m, 0]));
      for (let i = 0; i < SAMPLES_PER_ROUND; i++) {
        const k = 1 + Math.floor(random() * TENANTS);
        const tenant = uuidOf(k);
        const taskId = k - 1 + TENANTS * Math.floor(random() * TASKS_PER_TENANT) || TENANTS;
        await app.query("SELECT set_config('app.tenant_id', $1, false), set_config('request.jwt.claims', $2, false)", [
          tenant,
          JSON.stringify({ sub: uuidOf(0), role: 'authenticated', app_metadata: { org_id: tenant } }),
        ]);
        for (const [q, text] of Object.entries(QUERIES)) {
          const policyParams = q === 'point' ? [taskId] : [];
          const explicitParams = q === 'point' ? [taskId, tenant] : [tenant];
          // Rotate which side goes first, so caches favour none.
          const sides = ['p', 'e', ...Object.keys(MODELS)];
          const shift = (i + round) % sides.length;
          const order = [...sides.slice(shift), ...sides.slice(0, shift)];
          for (const side of order) {
            if (side in MODELS) {
              modelMs[side] += (await timed(app, `${side}_${q}`, sql(text.policy, side), policyParams)).ms;
            } else if (side === 'p') {
              const r = await timed(app, `p_${q}`, sql(text.policy, 'gen'), policyParams);
              policyMs += r.ms;
              (perQuery[q] ??= { policy: 0, explicit: 0 }).policy += r.ms;
            } else {
              const r = await timed(bypass, `e_${q}`, sql(text.explicit, 'gen'), explicitParams);
              explicitMs += r.ms;
              perQuery[q].explicit += r.ms;
            }
          }
        }
      }
      ratios.push(policyMs / explicitMs);
      for (const m of Object.keys(MODELS)) modelRatios[m].push(modelMs[m] / explicitMs);

      // The naive policy: the same queries, far fewer samples (each scans the whole table).
      let naiveMs = 0;
      let genMs = 0;
      for (let i = 0; i < NAIVE_SAMPLES; i++) {
        const k = 1 + Math.floor(random() * TENANTS);
        const taskId = k - 1 + TENANTS * Math.floor(random() * TASKS_PER_TENANT) || TENANTS;
        await app.query("SELECT set_config('app.tenant_id', $1, false)", [uuidOf(k)]);
        for (const [q, text] of Object.entries(QUERIES)) {
          const params = q === 'point' ? [taskId] : [];
          naiveMs += (await timed(app, `n_${q}`, sql(text.policy, 'naive'), params)).ms;
          genMs += (await timed(app, `p_${q}`, sql(text.policy, 'gen'), params)).ms;
        }
      }
      slowdowns.push(naiveMs / genMs);
    }
    const membership = await membershipRatios(app, bypass, random);
    await app.end();
    await bypass.end();
    for (const [q, t] of Object.entries(perQuery)) {
      process.stdout.write(
        `  ${q.padEnd(9)} policy ${(t.policy / (ROUNDS * SAMPLES_PER_ROUND)).toFixed(3)} ms, explicit ${(t.explicit / (ROUNDS * SAMPLES_PER_ROUND)).toFixed(3)} ms per query\n`,
      );
    }
    figures.push(report('policy_overhead_ratio', ratios, 'ratio', '<= 1.10'));
    for (const m of Object.keys(MODELS)) figures.push(report(`policy_overhead_ratio_${m}`, modelRatios[m], 'ratio', '<= 1.10'));
    figures.push(report('naive_policy_slowdown', slowdowns, 'ratio', 'report (expect >= 10)'));
    figures.push(...membership);
  } finally {
    await server.stop();
  }
  return figures;
}

if (import.meta.url === `file://${process.argv[1]}`) emit(await run());
