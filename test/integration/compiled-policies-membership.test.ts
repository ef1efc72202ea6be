import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type pg from 'pg';
import { parsePolicy } from '../../src/policy/load-policy.js';
import type { PolicyModel } from '../../src/policy/model.js';
import { compileScript } from '../../src/compile/render-sql.js';
import { buildPlan } from '../../src/plan/build-plan.js';
import { planProblems } from '../../src/plan/plan.js';
import { convergeDatabase } from '../../src/apply/converge.js';
import { openDatabase, type Database } from '../../src/db/connection.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { ROOT } from '../helpers/cli.js';
import { runPsql } from '../helpers/psql.js';
import { runAudit } from '../../src/audit/run-audit.js';
import { factsFromModel } from '../../src/facts/resolve-facts.js';
import { planOnClient } from '../../src/plan/build-plan.js';
import { runExplain } from '../../src/explain/run-explain.js';

/**
 * The six required behaviours for the membership model (tenant.membership), applied by the
 * owner of the tables (who then owns the lookup function), run as the app role on a real server.
 */

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';
const C = '00000000-0000-4000-8000-00000000000c';
const U1 = '00000000-0000-4000-8000-0000000000f1'; // member of A and B
const U2 = '00000000-0000-4000-8000-0000000000f2'; // member of B
const U3 = '00000000-0000-4000-8000-0000000000f3'; // member of nothing

function fixture(name: string, roles: Record<string, string>): string {
  return readFileSync(path.join(ROOT, 'fixtures/compile', name), 'utf8').replace(/\{\{(\w+)\}\}/g, (_, k: string) => roles[k]);
}

describeEachServer('compiled policies, membership model', (ctx) => {
  const roles = { app: uniqueName('app'), owner: uniqueName('owner'), bypass: uniqueName('bypass') };
  let model: PolicyModel;
  let active: PolicyModel;
  let owner: Database;

  /** Run `sql` as `role` with the user (and active tenant) set, or not, in a transaction that is rolled back. */
  async function as(role: string, user: string | null, sql: string, activeTenant?: string): Promise<pg.QueryResult> {
    const client = await ctx.db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SET LOCAL ROLE ${role}`);
      if (user !== null) await client.query("SELECT set_config('app.user_id', $1, true)", [user]);
      if (activeTenant !== undefined) await client.query("SELECT set_config('app.active_tenant', $1, true)", [activeTenant]);
      return await client.query(sql);
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release();
    }
  }

  beforeAll(async () => {
    await ctx.db.runScript(fixture('membership-schema.sql', roles));
    model = await parsePolicy([{ file: 'membership.yaml', text: fixture('membership.yaml', roles) }]);
    active = await parsePolicy([{ file: 'membership-active.yaml', text: fixture('membership-active.yaml', roles) }]);
    owner = await openDatabase({ db: ctx.db.urlAs(roles.owner) });
    const plan = await buildPlan(owner.pool, model);
    // plan shows the lookup function and the index the lookup needs
    expect(plan.statements[0].sql).toContain('CREATE OR REPLACE FUNCTION app.rlsctl_member_tenants() RETURNS uuid[]');
    expect(plan.statements.map((s) => s.sql).join('\n')).toMatch(
      /CREATE INDEX CONCURRENTLY memberships_user_id_org_id_idx ON app\.memberships \(user_id, org_id\)/,
    );
    await convergeDatabase(owner, model);
    await convergeDatabase(owner, active);
  });
  afterAll(async () => {
    await owner?.close();
  });

  it('apply makes the lookup function (owner, search_path, SECURITY DEFINER, STABLE, EXECUTE for the app roles only) and its index; applying again changes nothing', async () => {
    const { rows } = await ctx.db.query(
      `SELECT pg_get_userbyid(p.proowner) AS owner, p.prosecdef, p.provolatile, p.proconfig,
              has_function_privilege($1, p.oid, 'EXECUTE') AS app, has_function_privilege($2, p.oid, 'EXECUTE') AS bypass
         FROM pg_proc p WHERE p.oid = 'app.rlsctl_member_tenants()'::regprocedure`,
      [roles.app, roles.bypass],
    );
    expect(rows).toEqual([{ owner: roles.owner, prosecdef: true, provolatile: 's', proconfig: ['search_path=pg_catalog, pg_temp'], app: true, bypass: false }]);
    const { rows: indexes } = await ctx.db.query("SELECT indexname FROM pg_indexes WHERE schemaname = 'app' AND tablename = 'memberships' ORDER BY 1");
    expect(indexes.map((r) => r.indexname)).toEqual(['memberships_pkey', 'memberships_user_id_org_id_idx']);
    for (const m of [model, active]) {
      const again = await buildPlan(owner.pool, m);
      expect(again.statements.map((s) => s.summary)).toEqual([]);
      expect(again.drift).toEqual([]);
    }
  });

  it('compile emits the lookup function and the index; the compiled script run by the owner leaves a database apply sees as converged', async () => {
    const script = compileScript(model);
    expect(script).toContain('CREATE OR REPLACE FUNCTION app.rlsctl_member_tenants() RETURNS uuid[]');
    expect(script).toContain('LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp');
    expect(script).toContain(`GRANT EXECUTE ON FUNCTION app.rlsctl_member_tenants() TO ${roles.app};`);
    expect(script).toContain('memberships_user_id_org_id_idx');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rlsctl-membership-'));
    try {
      writeFileSync(path.join(dir, 'rls.sql'), script);
      const r = await runPsql(ctx.db.urlAs(roles.owner), ['-f', path.join(dir, 'rls.sql')]);
      expect(r.code, r.stderr).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect((await buildPlan(owner.pool, model)).statements.map((s) => s.summary)).toEqual([]);
  });

  it('audit of the database applied from the membership files: no finding about their objects; without the lookup index, RLS044', async () => {
    const client = await ctx.db.client();
    try {
      for (const m of [model, active]) {
        const result = await runAudit(client, factsFromModel(m), { plan: () => planOnClient(client, m, { prune: false, inTransaction: false }) });
        // Roles are cluster-wide: other test files' roles are not this database's business.
        const mine = result.findings.filter((f) => f.object.kind !== 'role' || Object.values(roles).includes(f.object.name));
        // RLS007 (info) lists the exempt membership table with its reason, as it lists every exempt table.
        expect(
          mine.filter((f) => f.object.kind !== 'database').map((f) => `${f.rule} ${f.severity} ${f.message}`),
          JSON.stringify(mine, null, 2),
        ).toEqual([`RLS007 info ${m.tables[0].schema}.${m.tables[0].name} is exempt from tenant isolation: ${(m.tables[0] as { reason: string }).reason}`]);
      }
      await client.query('BEGIN');
      await client.query('DROP INDEX app.memberships_user_id_org_id_idx');
      const broken = await runAudit(client, factsFromModel(model), { transaction: 'caller' });
      expect(broken.findings.filter((f) => f.rule === 'RLS044').map((f) => f.message)).toEqual([
        'app.memberships has no valid index that leads with (user_id, org_id): the membership lookup reads the whole table for every statement on a tenant table',
      ]);
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end();
    }
  });

  it('explain knows the model: an index seek on the tenant column through the membership lookup; without the tenant index, EXP001', async () => {
    const queries = [{ name: 'list_projects', text: 'SELECT id FROM app.projects' }];
    const first = await openDatabase({ db: ctx.db.url });
    const good = await runExplain(first, factsFromModel(model), queries, { role: roles.app, hypopg: false }).finally(() => first.close());
    expect(good.findings).toEqual([]);
    expect(good.queries.map((q) => q.planned)).toEqual([true]);
    // The indexes that lead with the tenant column (the primary key (org_id, id), and the one the compiled script of
    // an earlier test may have built) are dropped, and put back after: explain refuses to run inside the caller's
    // transaction, so this cannot be rolled back.
    const { rows: keep } = await ctx.db.query<{ tbl: string; name: string; def: string }>(
      `SELECT conrelid::regclass::text AS tbl, quote_ident(conname) AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint
        WHERE (conrelid = 'app.projects'::regclass AND contype = 'p') OR confrelid = 'app.projects'::regclass ORDER BY contype = 'p' DESC`,
    );
    await ctx.db.query(`ALTER TABLE app.projects DROP CONSTRAINT ${keep[0].name} CASCADE`);
    const { rows: indexes } = await ctx.db.query<{ name: string; def: string }>(
      `SELECT quote_ident(i.relname) AS name, pg_get_indexdef(x.indexrelid) AS def FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = 'app.projects'::regclass AND x.indkey[0] = (SELECT attnum FROM pg_attribute WHERE attrelid = 'app.projects'::regclass AND attname = 'org_id')`,
    );
    for (const i of indexes) await ctx.db.query(`DROP INDEX app.${i.name}`);
    const db = await openDatabase({ db: ctx.db.url });
    try {
      const bad = await runExplain(db, factsFromModel(model), queries, { role: roles.app, hypopg: false });
      expect(
        bad.findings.map((f) => f.rule),
        JSON.stringify(bad.queries[0].plans),
      ).toEqual(['EXP001']);
      expect(bad.findings[0].message).toContain('app.projects');
    } finally {
      await db.close();
      for (const c of keep) await ctx.db.query(`ALTER TABLE ${c.tbl} ADD CONSTRAINT ${c.name} ${c.def}`);
      for (const i of indexes) await ctx.db.query(i.def);
    }
  });

  it('1. a member sees and changes the rows of its tenants only', async () => {
    expect((await as(roles.app, U1, 'SELECT id FROM app.projects ORDER BY id')).rows.map((r) => r.id)).toEqual([1, 2, 3]);
    expect((await as(roles.app, U2, 'SELECT id FROM app.projects ORDER BY id')).rows.map((r) => r.id)).toEqual([3]);
    expect((await as(roles.app, U3, 'SELECT id FROM app.projects')).rowCount).toBe(0);
    expect((await as(roles.app, U2, "UPDATE app.projects SET name = 'x'")).rowCount).toBe(1);
    expect((await as(roles.app, U1, 'DELETE FROM app.projects WHERE id = 4')).rowCount).toBe(0);
    expect((await as(roles.app, U1, 'SELECT id FROM app.tasks')).rows).toEqual([{ id: 1 }]);
  });

  it('1. the membership table keeps its own policy, which reads a tenant table, and nothing recurses', async () => {
    // As the app role: the memberships policy reads app.projects, whose policy calls the lookup, which reads app.memberships as its owner.
    const { rows } = await as(roles.app, U2, 'SELECT user_id, org_id FROM app.memberships ORDER BY user_id');
    expect(rows).toEqual([
      { user_id: U1, org_id: B },
      { user_id: U2, org_id: B },
    ]);
    expect((await as(roles.app, U1, 'SELECT count(*)::int AS n FROM app.projects p JOIN app.memberships m USING (org_id)')).rows).toEqual([{ n: 4 }]);
  });

  it('2. with no user set, every query returns zero rows and raises no error; writes are rejected', async () => {
    expect((await as(roles.app, null, 'SELECT * FROM app.projects')).rowCount).toBe(0);
    expect((await as(roles.app, null, 'SELECT * FROM app.tasks')).rowCount).toBe(0);
    await expect(as(roles.app, null, `INSERT INTO app.projects VALUES ('${A}', 10, 'n')`)).rejects.toThrow(/row-level security/);
    expect((await as(roles.app, null, "UPDATE app.projects SET name = 'x'")).rowCount).toBe(0);
  });

  it('2. after a transaction-local user ended, the empty setting returns zero rows, no error', async () => {
    const client = await ctx.db.pool.connect();
    try {
      await client.query(`SET ROLE ${roles.app}`);
      await client.query('BEGIN');
      await client.query(`SET LOCAL app.user_id = '${U1}'`);
      expect((await client.query('SELECT * FROM app.projects')).rowCount).toBe(3);
      await client.query('COMMIT');
      expect((await client.query("SELECT current_setting('app.user_id')")).rows[0].current_setting).toBe('');
      expect((await client.query('SELECT * FROM app.projects')).rowCount).toBe(0);
    } finally {
      await client.query('RESET ROLE');
      client.release();
    }
  });

  it('3. an INSERT or UPDATE into a tenant the user is not a member of is rejected', async () => {
    await expect(as(roles.app, U2, `INSERT INTO app.projects VALUES ('${A}', 11, 'n')`)).rejects.toThrow(/row-level security/);
    await expect(as(roles.app, U1, `INSERT INTO app.projects VALUES ('${C}', 12, 'n')`)).rejects.toThrow(/row-level security/);
    await expect(as(roles.app, U1, `UPDATE app.projects SET org_id = '${C}' WHERE id = 1`)).rejects.toThrow(/row-level security/);
    expect((await as(roles.app, U1, `UPDATE app.projects SET org_id = '${B}' WHERE id = 1`)).rowCount).toBe(1);
    expect((await as(roles.app, U2, `INSERT INTO app.projects VALUES ('${B}', 13, 'n')`)).rowCount).toBe(1);
  });

  it('4. a permissive USING (true) policy added by hand cannot widen access beyond the memberships', async () => {
    const client = await ctx.db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`CREATE POLICY wide_open ON app.projects AS PERMISSIVE FOR ALL TO ${roles.app} USING (true) WITH CHECK (true)`);
      await client.query(`SET LOCAL ROLE ${roles.app}`);
      await client.query("SELECT set_config('app.user_id', $1, true)", [U2]);
      expect((await client.query('SELECT id FROM app.projects ORDER BY id')).rows.map((r) => r.id)).toEqual([3]);
      await client.query('SAVEPOINT s');
      await expect(client.query(`INSERT INTO app.projects VALUES ('${A}', 14, 'n')`)).rejects.toThrow(/row-level security/);
      await client.query('ROLLBACK TO SAVEPOINT s');
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('5. the membership lookup is an InitPlan, the tenant predicate an index condition, and the lookup itself an index seek', async () => {
    const client = await ctx.db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL enable_seqscan = off');
      await client.query(`SET LOCAL ROLE ${roles.app}`);
      await client.query("SELECT set_config('app.user_id', $1, true)", [U1]);
      const { rows } = await client.query('EXPLAIN (FORMAT JSON) SELECT * FROM app.projects WHERE name IS NOT NULL');
      const plan = JSON.stringify(rows[0]['QUERY PLAN']);
      expect(plan).toMatch(/"Index Cond":"\(org_id = ANY \(\(?(\$0|\(InitPlan 1\)\.col1)\)?\)\)"/);
      expect(plan).toContain('"Parent Relationship":"InitPlan"');
      expect(plan).not.toContain('"Parent Relationship":"SubPlan"');
      // The lookup's own statement (the function body), as its owner: an index seek on (user_id, org_id).
      await client.query('RESET ROLE');
      const body = (await client.query("SELECT prosrc FROM pg_proc WHERE oid = 'app.rlsctl_member_tenants()'::regprocedure")).rows[0].prosrc;
      const lookup = JSON.stringify((await client.query(`EXPLAIN (FORMAT JSON) ${body}`)).rows[0]['QUERY PLAN']);
      expect(lookup).toContain('"Index Name":"memberships_user_id_org_id_idx"');
      expect(lookup).toMatch(/"Index Cond":"\(user_id = /);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('6. the owner is subject to the policies; superusers and declared bypass roles are not', async () => {
    expect((await as(roles.owner, U1, 'SELECT * FROM app.projects')).rowCount).toBe(0);
    expect((await as(roles.owner, null, 'SELECT * FROM app.projects')).rowCount).toBe(0);
    expect((await as(roles.bypass, null, 'SELECT * FROM app.projects')).rowCount).toBe(4);
    expect((await ctx.db.query('SELECT * FROM app.projects')).rowCount).toBe(4);
  });

  it('active tenant: only that tenant, only for a member; no active tenant, or one the user is not a member of: zero rows', async () => {
    const q = 'SELECT id FROM act.notes ORDER BY id';
    expect((await as(roles.app, U1, q, A)).rows).toEqual([{ id: 1 }]);
    expect((await as(roles.app, U1, q, B)).rows).toEqual([{ id: 2 }]);
    expect((await as(roles.app, U1, q, C)).rowCount).toBe(0);
    expect((await as(roles.app, U2, q, A)).rowCount).toBe(0);
    expect((await as(roles.app, U1, q)).rowCount).toBe(0);
    expect((await as(roles.app, null, q, A)).rowCount).toBe(0);
    await expect(as(roles.app, U1, `INSERT INTO act.notes VALUES ('${B}', 9, 'n')`, A)).rejects.toThrow(/row-level security/);
    expect((await as(roles.app, U1, `INSERT INTO act.notes VALUES ('${A}', 9, 'n')`, A)).rowCount).toBe(1);
  });

  it('user.claim: the user is read from a JSON setting at the claim path; no claims, an empty setting or a missing claim: zero rows; a claim of another type or form: zero rows (read like tenant.claim); malformed JSON: an error', async () => {
    const claims = await parsePolicy([
      {
        file: 'claims.yaml',
        text: fixture('membership-active.yaml', roles)
          .replace('  setting: app.active_tenant\n', '')
          .replace('user: { setting: app.user_id, type: uuid }', 'user: { setting: request.jwt.claims, claim: app_metadata.uid, type: uuid }'),
      },
    ]);
    await ctx.db.runScript(compileScript(claims, { transactional: true }));
    const read = async (value: string | null) => {
      const client = await ctx.db.pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(`SET LOCAL ROLE ${roles.app}`);
        if (value !== null) await client.query("SELECT set_config('request.jwt.claims', $1, true)", [value]);
        return (await client.query('SELECT id FROM act.notes ORDER BY id')).rows.map((r) => r.id);
      } finally {
        await client.query('ROLLBACK').catch(() => undefined);
        client.release();
      }
    };
    expect(await read(JSON.stringify({ sub: 'x', app_metadata: { uid: U1 } }))).toEqual([1, 2]);
    expect(await read(null)).toEqual([]);
    expect(await read('')).toEqual([]);
    expect(await read(JSON.stringify({ sub: U1 }))).toEqual([]);
    expect(await read(JSON.stringify({ app_metadata: { uid: '' } }))).toEqual([]);
    await expect(read('{not json')).rejects.toThrow(/invalid input syntax for type json/);
    expect(await read(JSON.stringify({ app_metadata: { uid: 42 } }))).toEqual([]);
    expect(await read(JSON.stringify({ app_metadata: { uid: 'not-a-uuid' } }))).toEqual([]);
    expect(await read(JSON.stringify({ app_metadata: { uid: { id: U1 } } }))).toEqual([]);
    // back to the setting form for the other tests
    await ctx.db.runScript(compileScript(active, { transactional: true }));
  });

  it('tenant.claim beside membership: the active tenant is a claim of the same request.jwt.claims as the user (sub); member of it: its rows; else zero rows', async () => {
    const claims = await parsePolicy([
      {
        file: 'claims-active.yaml',
        text: fixture('membership-active.yaml', roles)
          .replace('  setting: app.active_tenant\n', '  claim: app_metadata.org_id\n')
          .replace('user: { setting: app.user_id, type: uuid }', 'user: { setting: request.jwt.claims, claim: sub, type: uuid }'),
      },
    ]);
    expect(claims.tenant).toMatchObject({ setting: 'request.jwt.claims', claim: ['app_metadata', 'org_id'] });
    expect(claims.tenant.membership?.activeTenant).toBe(true);
    await ctx.db.runScript(compileScript(claims, { transactional: true }));
    const read = async (claimsJson: unknown) => {
      const client = await ctx.db.pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(`SET LOCAL ROLE ${roles.app}`);
        await client.query("SELECT set_config('request.jwt.claims', $1, true)", [JSON.stringify(claimsJson)]);
        return (await client.query('SELECT id FROM act.notes ORDER BY id')).rows.map((r) => r.id);
      } finally {
        await client.query('ROLLBACK').catch(() => undefined);
        client.release();
      }
    };
    try {
      expect(await read({ sub: U1, app_metadata: { org_id: A } })).toEqual([1]);
      expect(await read({ sub: U1, app_metadata: { org_id: B } })).toEqual([2]);
      expect(await read({ sub: U1, app_metadata: { org_id: C } })).toEqual([]);
      expect(await read({ sub: U1 })).toEqual([]);
      expect(await read({ sub: U1, app_metadata: { org_id: 42 } })).toEqual([]);
      expect(await read({ sub: U3, app_metadata: { org_id: A } })).toEqual([]);
    } finally {
      await ctx.db.runScript(compileScript(active, { transactional: true }));
    }
  });

  it('plan reports a membership table or column the database lacks, before anything runs', async () => {
    const text = fixture('membership.yaml', roles);
    const missingTable = await parsePolicy([{ file: 'm.yaml', text: text.replace('table: app.memberships', 'table: act.nope') }]);
    expect(planProblems(await buildPlan(owner.pool, missingTable))).toContain('the policy file declares 1 table that the database lacks: act.nope');
    const missingColumn = await parsePolicy([{ file: 'm.yaml', text: text.replace('user_column: user_id', 'user_column: member_id') }]);
    expect(planProblems(await buildPlan(owner.pool, missingColumn))).toContain(
      'the policy file names 1 column that the database lacks: app.memberships.member_id',
    );
  });
});
