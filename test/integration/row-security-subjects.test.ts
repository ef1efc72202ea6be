import type pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Command, PolicyCommand } from '../../src/policy/model.js';
import type { PolicyShape } from '../../src/rls/policy-semantics.js';
import {
  isSecurityInvoker,
  rowSecurityFor,
  type RowSecurityVerdict,
  type SubjectCode,
  type SubjectRelation,
  type SubjectRole,
  type SubjectView,
} from '../../src/rls/row-security-subjects.js';
import { runAudit } from '../../src/audit/run-audit.js';
import { runExplain } from '../../src/explain/run-explain.js';
import { runVerify } from '../../src/verify/run-verify.js';
import { openDatabase, type Database } from '../../src/db/connection.js';
import { factsFromModel, inferFacts } from '../../src/facts/resolve-facts.js';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { CANARY, createCanary, expectUntouched, snapshotDatabase } from '../helpers/hostile.js';
import { quoteIdent } from '../../src/compile/quote.js';

/**
 * src/rls/row-security-subjects.ts against a real server: for every subject
 * (superuser, BYPASSRLS, the owner by SET ROLE, a member that inherits the
 * owner's privileges, a NOINHERIT member, a plain role, the role a policy
 * names), every table shape (RLS off, on, forced, with no policy, with a
 * policy for another role), views that run as their owner (owned by the table
 * owner, a plain role, a BYPASSRLS role) and security_invoker views (15+,
 * nested too), partitions read directly and through their parent, with
 * row_security on and off, the module's verdict must be what the query as
 * that role gets. The module's inputs are read from the catalog, never
 * written here.
 *
 * Every table holds the rows n = 1 and n = 2 (the partitioned one: two of
 * each); policies admit n = 1, the partition pt_b's own policy n = 2. So the
 * rows a query returns tell apart every outcome: all rows, the policies'
 * rows (and whose), no row, or the row_security error.
 */

const SU = uniqueName('rs_su');
const BYP = uniqueName('rs_byp');
const OWN = uniqueName('rs_own');
const HEIR = uniqueName('rs_heir');
const NOHEIR = uniqueName('rs_noheir');
const APP = uniqueName('rs_app');
const OTHER = uniqueName('rs_other');
const SUBJECTS = [SU, BYP, OWN, HEIR, NOHEIR, APP, OTHER];
const TABLES = ['t_off', 't_on', 't_forced', 't_nopol', 't_nopol_forced', 't_other'];

function setupSql(major: number): string {
  const view = (name: string, table: string, owner: string, invoker = false) =>
    `CREATE VIEW s.${name}${invoker ? ' WITH (security_invoker = true)' : ''} AS SELECT n FROM s.${table};\nALTER VIEW s.${name} OWNER TO ${owner}`;
  const table = (name: string, flags: string, policy: string | undefined) =>
    [
      `CREATE TABLE s.${name} (n int NOT NULL)`,
      `INSERT INTO s.${name} VALUES (1), (2)`,
      `ALTER TABLE s.${name} OWNER TO ${OWN}`,
      flags ? `ALTER TABLE s.${name} ${flags}` : '',
      policy ? `CREATE POLICY p ON s.${name} FOR SELECT TO ${policy} USING (n = 1)` : '',
    ]
      .filter(Boolean)
      .join(';\n');
  return (
    [
      `CREATE ROLE ${SU} SUPERUSER`,
      `CREATE ROLE ${BYP} BYPASSRLS`,
      `CREATE ROLE ${OWN}`,
      `CREATE ROLE ${HEIR} INHERIT`,
      `CREATE ROLE ${NOHEIR} NOINHERIT`,
      `CREATE ROLE ${APP}`,
      `CREATE ROLE ${OTHER}`,
      `GRANT ${OWN} TO ${HEIR}`,
      `GRANT ${OWN} TO ${NOHEIR}`,
      'CREATE SCHEMA s',
      `GRANT USAGE ON SCHEMA s TO PUBLIC`,
      table('t_off', '', 'PUBLIC'),
      table('t_on', 'ENABLE ROW LEVEL SECURITY', 'PUBLIC'),
      table('t_forced', 'ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', 'PUBLIC'),
      table('t_nopol', 'ENABLE ROW LEVEL SECURITY', undefined),
      table('t_nopol_forced', 'ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', undefined),
      table('t_other', 'ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', OTHER),
      // A partitioned table under forced RLS; pt_a has no RLS of its own, pt_b its own policy (n = 2) and owner.
      `CREATE TABLE s.pt (k int NOT NULL, n int NOT NULL) PARTITION BY LIST (k)`,
      `CREATE TABLE s.pt_a PARTITION OF s.pt FOR VALUES IN (1)`,
      `CREATE TABLE s.pt_b PARTITION OF s.pt FOR VALUES IN (2)`,
      `INSERT INTO s.pt VALUES (1, 1), (1, 2), (2, 1), (2, 2)`,
      `ALTER TABLE s.pt OWNER TO ${OWN}`,
      `ALTER TABLE s.pt_a OWNER TO ${OWN}`,
      `ALTER TABLE s.pt_b OWNER TO ${APP}`,
      `ALTER TABLE s.pt ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY`,
      `CREATE POLICY p ON s.pt FOR SELECT TO PUBLIC USING (n = 1)`,
      `ALTER TABLE s.pt_b ENABLE ROW LEVEL SECURITY`,
      `CREATE POLICY p ON s.pt_b FOR SELECT TO PUBLIC USING (n = 2)`,
      // A materialized view holds what its creator (a superuser) saw.
      `CREATE MATERIALIZED VIEW s.m_on AS SELECT n FROM s.t_on`,
      `ALTER MATERIALIZED VIEW s.m_on OWNER TO ${OWN}`,
      ...TABLES.flatMap((t) => [
        view(`${t}_v_own`, t, OWN),
        view(`${t}_v_app`, t, APP),
        view(`${t}_v_byp`, t, BYP),
        ...(major >= 15 ? [view(`${t}_vi_own`, t, OWN, true)] : []),
      ]),
      ...(major >= 15
        ? [
            // A view that runs as its owner, over an invoker view: the inner one still runs as the current user.
            view('nest_inner_inv', 't_on', BYP, true),
            `CREATE VIEW s.nest_def_over_inv AS SELECT n FROM s.nest_inner_inv;\nALTER VIEW s.nest_def_over_inv OWNER TO ${APP}`,
            // An invoker view over a view that runs as its owner (BYPASSRLS).
            `CREATE VIEW s.nest_inv_over_def WITH (security_invoker = true) AS SELECT n FROM s.t_forced_v_byp;\nALTER VIEW s.nest_inv_over_def OWNER TO ${OWN}`,
          ]
        : []),
      `GRANT SELECT ON ALL TABLES IN SCHEMA s TO PUBLIC`,
    ].join(';\n') + ';'
  );
}

interface CatalogRow {
  name: string;
  kind: string;
  owner: string;
  rls: boolean;
  force: boolean;
  partition: boolean;
  options: string[] | null;
}

/** An access path: what the query names, the relation whose row security counts, the views on the way. */
interface Path {
  query: string;
  relation: string;
  views: string[];
}

function paths(major: number): Path[] {
  const out: Path[] = [];
  for (const t of TABLES) {
    out.push({ query: t, relation: t, views: [] });
    for (const v of ['v_own', 'v_app', 'v_byp', ...(major >= 15 ? ['vi_own'] : [])]) out.push({ query: `${t}_${v}`, relation: t, views: [`${t}_${v}`] });
  }
  out.push({ query: 'pt', relation: 'pt', views: [] });
  out.push({ query: 'pt_a', relation: 'pt_a', views: [] });
  out.push({ query: 'pt_b', relation: 'pt_b', views: [] });
  out.push({ query: 'm_on', relation: 'm_on', views: [] });
  if (major >= 15) {
    out.push({ query: 'nest_def_over_inv', relation: 't_on', views: ['nest_def_over_inv', 'nest_inner_inv'] });
    out.push({ query: 'nest_inv_over_def', relation: 't_forced', views: ['nest_inv_over_def', 't_forced_v_byp'] });
  }
  return out;
}

/** The rows (values of n, sorted) the policies of `relation` admit, read through it: the fixture's design above. */
function policyRows(relation: string): number[] {
  if (relation === 'pt') return [1, 1];
  if (relation === 'pt_b') return [2];
  return [1];
}

function allRows(relation: string): number[] {
  return relation === 'pt' ? [1, 1, 2, 2] : [1, 2];
}

function expected(verdict: RowSecurityVerdict, relation: string): number[] | 'error' {
  switch (verdict.outcome) {
    case 'all-rows':
      return allRows(relation);
    case 'no-rows':
      return [];
    case 'error':
      return 'error';
    case 'policies':
      return policyRows(relation);
  }
}

const POLCMD: Record<string, PolicyCommand> = { ALL: 'all', SELECT: 'select', INSERT: 'insert', UPDATE: 'update', DELETE: 'delete' };

describeEachServer('who row security applies to: the module against the server', (ctx) => {
  let client: pg.Client;
  const relations = new Map<string, CatalogRow>();
  const roles = new Map<string, SubjectRole>();
  const policies = new Map<string, PolicyShape[]>();

  beforeAll(async () => {
    await ctx.db.runScript(setupSql(ctx.server.major));
    const { rows: rels } = await ctx.db.query<CatalogRow>(
      `SELECT c.relname AS name, c.relkind::text AS kind, pg_catalog.pg_get_userbyid(c.relowner) AS owner, c.relrowsecurity AS rls,
              c.relforcerowsecurity AS force, c.relispartition AS partition, c.reloptions::text[] AS options
         FROM pg_catalog.pg_class c WHERE c.relnamespace = 's'::regnamespace`,
    );
    for (const r of rels) relations.set(r.name, r);
    // has_privs_of_role as PostgreSQL answers it (pg_has_role ... USAGE), for the roles the grid names.
    const { rows: roleRows } = await ctx.db.query<{ name: string; superuser: boolean; bypass: boolean; privs: string[] }>(
      `SELECT r.rolname AS name, r.rolsuper AS superuser, r.rolbypassrls AS bypass,
              ARRAY(SELECT o.rolname::text FROM pg_catalog.pg_roles o WHERE o.oid <> r.oid AND o.rolname = ANY ($1::text[])
                       AND pg_catalog.pg_has_role(r.oid, o.oid, 'USAGE')) AS privs
         FROM pg_catalog.pg_roles r WHERE r.rolname = ANY ($1::text[])`,
      [SUBJECTS],
    );
    for (const r of roleRows) {
      const privs = new Set(r.privs);
      roles.set(r.name, { name: r.name, superuser: r.superuser, bypassRls: r.bypass, hasPrivilegesOf: (other) => privs.has(other) });
    }
    const { rows: pols } = await ctx.db.query<{ table: string; roles: string[]; cmd: string; permissive: string }>(
      `SELECT tablename AS table, roles::text[] AS roles, cmd, permissive FROM pg_catalog.pg_policies WHERE schemaname = 's'`,
    );
    for (const p of pols) {
      const list = policies.get(p.table) ?? [];
      list.push({ permissive: p.permissive === 'PERMISSIVE', command: POLCMD[p.cmd], roles: p.roles, using: 'n = 1' });
      policies.set(p.table, list);
    }
    client = await ctx.db.client();
  });

  afterAll(async () => {
    await client?.end();
    await ctx.db.query(`DROP SCHEMA s CASCADE`).catch(() => undefined);
    for (const r of SUBJECTS) await ctx.db.query(`DROP ROLE IF EXISTS ${r}`).catch(() => undefined);
  });

  async function actual(role: string, setting: 'on' | 'off', name: string): Promise<number[] | 'error' | string> {
    await client.query('BEGIN');
    try {
      await client.query(`SET LOCAL ROLE ${role}`);
      await client.query(`SET LOCAL row_security = ${setting}`);
      const { rows } = await client.query<{ n: number }>(`SELECT n FROM s.${name} ORDER BY n`);
      return rows.map((r) => r.n);
    } catch (error) {
      const message = (error as Error).message;
      return /query would be affected by row-level security policy/.test(message) ? 'error' : `unexpected: ${message}`;
    } finally {
      await client.query('ROLLBACK');
    }
  }

  function subjectRelation(name: string): SubjectRelation {
    const r = relations.get(name)!;
    return { kind: r.kind, owner: r.owner, rowSecurity: r.rls, forceRowSecurity: r.force, isPartition: r.partition, label: `s.${name}` };
  }

  function view(name: string): SubjectView {
    const r = relations.get(name)!;
    return { owner: roles.get(r.owner)!, securityInvoker: isSecurityInvoker(r.options), label: `s.${name}` };
  }

  it('gives, for every subject, table, view and partition, with row_security on and off, what the server does', async () => {
    const mismatches: string[] = [];
    const codes = new Set<SubjectCode>();
    let cases = 0;
    for (const path of paths(ctx.server.major)) {
      for (const subject of SUBJECTS) {
        for (const setting of ['on', 'off'] as const) {
          const command: Command = 'select';
          const verdict = rowSecurityFor({
            relation: subjectRelation(path.relation),
            role: roles.get(subject)!,
            setting: { rowSecurity: setting },
            via: path.views.length > 0 ? { views: path.views.map(view), serverMajor: ctx.server.major } : undefined,
            policies: { list: policies.get(path.relation) ?? [], command },
          });
          codes.add(verdict.reason.code);
          cases++;
          const want = expected(verdict, path.relation);
          const got = await actual(subject, setting, path.query);
          if (JSON.stringify(want) !== JSON.stringify(got)) {
            mismatches.push(
              `${path.query} as ${subject.replace(/_[0-9a-f]{8}$/, '')}, row_security ${setting}: module ${verdict.outcome} (${verdict.reason.code}: ${verdict.reason.message}) expects ${JSON.stringify(want)}, server gives ${JSON.stringify(got)}`,
            );
          }
        }
      }
    }
    expect(mismatches).toEqual([]);
    // The grid reaches every rule of the module.
    expect([...codes].sort()).toEqual(
      ['bypassrls', 'default-deny', 'no-row-security', 'owner', 'owner-privileges', 'row-security-off', 'rls-disabled', 'subject', 'superuser'].sort(),
    );
    expect(cases).toBeGreaterThan(ctx.server.major >= 15 ? 500 : 380);
  });

  it("reads every spelling of row_security the server accepts as the server does (audit's RLS012 reads ALTER ROLE ... SET values with it)", async () => {
    for (const spelling of ['off', 'OFF', 'of', 'fal', 'false', 'f', 'no', 'n', '0', 'on', 'tr', 'yes', 'y', '1', 'true']) {
      const verdict = rowSecurityFor({ relation: subjectRelation('t_on'), role: roles.get(APP)!, setting: { rowSecurity: spelling } });
      await client.query('BEGIN');
      let server: string;
      try {
        await client.query(`SET LOCAL ROLE ${APP}`);
        await client.query(`SELECT pg_catalog.set_config('row_security', $1, true)`, [spelling]);
        server = (await client.query('SELECT n FROM s.t_on')).rows.length > 0 ? 'policies' : 'no rows';
      } catch (error) {
        server = /row-level security/.test((error as Error).message) ? 'error' : (error as Error).message;
      } finally {
        await client.query('ROLLBACK');
      }
      expect(`${spelling}: ${verdict.outcome}`).toBe(`${spelling}: ${server}`);
    }
  });

  it('a NOINHERIT member of the owner is subject, an inheriting one is not: ownership is has_privs_of_role', async () => {
    const heir = rowSecurityFor({ relation: subjectRelation('t_on'), role: roles.get(HEIR)! });
    const noheir = rowSecurityFor({ relation: subjectRelation('t_on'), role: roles.get(NOHEIR)! });
    expect([heir.reason.code, noheir.reason.code]).toEqual(['owner-privileges', 'subject']);
    expect(await actual(HEIR, 'on', 't_on')).toEqual([1, 2]);
    expect(await actual(NOHEIR, 'on', 't_on')).toEqual([1]);
  });
});

/**
 * The commands ask the module: what it says about a partition read directly
 * (its own owner counts) reaches audit's RLS053, and the server agrees.
 */
describeEachServer('who row security applies to: audit asks the module', (ctx) => {
  const app = uniqueName('rsa_app');
  const owner = uniqueName('rsa_owner');
  const tenantA = '00000000-0000-4000-8000-00000000000a';
  const tenantB = '00000000-0000-4000-8000-00000000000b';

  beforeAll(async () => {
    const guard = `tenant_id = (SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid)`;
    await ctx.db.runScript(
      [
        `CREATE ROLE ${app}`,
        `CREATE ROLE ${owner}`,
        `CREATE SCHEMA app AUTHORIZATION ${owner}`,
        `GRANT USAGE ON SCHEMA app TO ${app}`,
        `CREATE TABLE app.events (tenant_id uuid NOT NULL, k int NOT NULL) PARTITION BY LIST (k)`,
        `CREATE TABLE app.events_1 PARTITION OF app.events FOR VALUES IN (1)`,
        `INSERT INTO app.events VALUES ('${tenantA}', 1), ('${tenantB}', 1)`,
        `ALTER TABLE app.events OWNER TO ${owner}`,
        // The partition carries its parent's flags and policies, but the app role owns it.
        `ALTER TABLE app.events_1 OWNER TO ${app}`,
        ...['events', 'events_1'].flatMap((t) => [
          `CREATE POLICY rlsctl_tenant_access ON app.${t} AS PERMISSIVE FOR ALL TO ${app} USING (${guard}) WITH CHECK (${guard})`,
          `ALTER TABLE app.${t} ENABLE ROW LEVEL SECURITY`,
        ]),
        `GRANT SELECT ON app.events, app.events_1 TO ${app}`,
      ].join(';\n') + ';',
    );
  });

  afterAll(async () => {
    await ctx.db.query('DROP SCHEMA app CASCADE').catch(() => undefined);
    for (const r of [app, owner]) await ctx.db.query(`DROP ROLE IF EXISTS ${r}`).catch(() => undefined);
  });

  it('RLS053 reports an app role that owns a partition: read directly, it bypasses the policies its parent holds it to', async () => {
    const client = await ctx.db.client();
    try {
      // The server: through the parent the app role sees its tenant's row; naming the partition, every row.
      await client.query('BEGIN');
      await client.query(`SET LOCAL ROLE ${app}`);
      await client.query(`SELECT pg_catalog.set_config('app.tenant_id', '${tenantA}', true)`);
      const parent = await client.query('SELECT tenant_id FROM app.events');
      const direct = await client.query('SELECT tenant_id FROM app.events_1');
      await client.query('ROLLBACK');
      expect([parent.rowCount, direct.rowCount]).toEqual([1, 2]);

      const facts = await inferFacts({ schema: ['app'], tenantColumn: 'tenant_id', tenantSetting: 'app.tenant_id', appRole: [app] }, client);
      const { findings } = await runAudit(client, facts);
      const found = findings.filter((f) => f.rule === 'RLS053');
      expect(found.map((f) => f.object.name)).toEqual(['events_1']);
      expect(found[0].message).toContain(`app role ${app} bypasses it: ${app} owns app.events_1, which does not force row level security`);
    } finally {
      await client.end();
    }
  });
});

/**
 * explain asks the module too: a role that owns the table is told why no
 * policy filters its scan, and a partition the query names is judged by its
 * own policies, not its parent's.
 */
describeEachServer('who row security applies to: explain asks the module', (ctx) => {
  const app = uniqueName('rse_app');
  const byp = uniqueName('rse_byp');
  const guard = `tenant_id = (SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid)`;

  beforeAll(async () => {
    await ctx.db.runScript(
      [
        `CREATE ROLE ${app}`,
        'CREATE SCHEMA app',
        `GRANT USAGE ON SCHEMA app TO ${app}`,
        `CREATE FUNCTION app.tenant_volatile() RETURNS uuid LANGUAGE plpgsql VOLATILE AS $$ BEGIN RETURN NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid; END $$`,
        // Owned by the app role, not forced: its policy never applies to it.
        `CREATE TABLE app.mine (tenant_id uuid NOT NULL, id bigint PRIMARY KEY, body text)`,
        `ALTER TABLE app.mine OWNER TO ${app}`,
        `CREATE POLICY tenant_access ON app.mine TO ${app} USING (${guard}) WITH CHECK (${guard})`,
        `ALTER TABLE app.mine ENABLE ROW LEVEL SECURITY`,
        // The parent's policy is index-friendly; the partition's own calls a volatile function per row.
        `CREATE TABLE app.ev (tenant_id uuid NOT NULL, k int NOT NULL, body text) PARTITION BY LIST (k)`,
        `CREATE TABLE app.ev_1 PARTITION OF app.ev FOR VALUES IN (1)`,
        `CREATE INDEX ev_1_tenant_idx ON app.ev_1 (tenant_id)`,
        `CREATE POLICY tenant_access ON app.ev TO ${app} USING (${guard}) WITH CHECK (${guard})`,
        `CREATE POLICY per_row ON app.ev_1 TO ${app} USING (tenant_id = app.tenant_volatile())`,
        `ALTER TABLE app.ev ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY`,
        `ALTER TABLE app.ev_1 ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY`,
        // Forced, with the tenant policy and index; read through a view owned by a BYPASSRLS role.
        `CREATE ROLE ${byp} BYPASSRLS`,
        `CREATE TABLE app.guarded (tenant_id uuid NOT NULL, id bigint NOT NULL, body text, PRIMARY KEY (tenant_id, id))`,
        `CREATE POLICY tenant_access ON app.guarded TO ${app} USING (${guard}) WITH CHECK (${guard})`,
        `ALTER TABLE app.guarded ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY`,
        `GRANT USAGE ON SCHEMA app TO ${byp}`,
        `GRANT SELECT ON app.guarded TO ${byp}`,
        `CREATE VIEW app.guarded_all AS SELECT tenant_id, id, body FROM app.guarded`,
        `ALTER VIEW app.guarded_all OWNER TO ${byp}`,
        ...(ctx.server.major >= 15
          ? [
              `CREATE VIEW app.guarded_inv WITH (security_invoker = true) AS SELECT tenant_id, id, body FROM app.guarded`,
              `ALTER VIEW app.guarded_inv OWNER TO ${byp}`,
            ]
          : []),
        `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO ${app}`,
      ].join(';\n') + ';',
    );
  });

  afterAll(async () => {
    await ctx.db.query('DROP SCHEMA app CASCADE').catch(() => undefined);
    for (const r of [app, byp]) await ctx.db.query(`DROP ROLE IF EXISTS ${r}`).catch(() => undefined);
  });

  async function explain(text: string) {
    const client = await ctx.db.client();
    try {
      const facts = await inferFacts({ schema: ['app'], tenantColumn: 'tenant_id', tenantSetting: 'app.tenant_id', appRole: [app] }, client);
      return (await runExplain(client, facts, [{ name: 'q1', text }], { role: app, hypopg: false })).findings;
    } finally {
      await client.end();
    }
  }

  it('says why no policy filters the scan of a table the role owns, and the fix', async () => {
    const findings = await explain('SELECT body FROM app.mine');
    expect(findings.map((f) => f.rule)).toEqual(['EXP001']);
    expect(findings[0].message).toContain(
      `row level security does not filter app.mine for ${app}: ${app} owns app.mine, which does not force row level security`,
    );
    expect(findings[0].help).toContain('ALTER TABLE app.mine FORCE ROW LEVEL SECURITY;');
  });

  it('judges a table read through a view as the role the view runs as: its owner, or the caller for security_invoker', async () => {
    const findings = await explain('SELECT body FROM app.guarded_all');
    expect(findings.map((f) => f.rule)).toEqual(['EXP001']);
    expect(findings[0].message).toContain(`${byp} (the owner of the view app.guarded_all, which reads it as its owner) has BYPASSRLS`);
    expect(findings[0].help).toContain(
      ctx.server.major >= 15 ? 'ALTER VIEW app.guarded_all SET (security_invoker = true);' : 'ALTER VIEW app.guarded_all OWNER TO view_owner;',
    );
    // security_invoker: the caller's policies filter the scan, which the tenant index serves.
    if (ctx.server.major >= 15) expect(await explain('SELECT body FROM app.guarded_inv')).toEqual([]);
  });

  it('quotes a hostile view name in the fix it prints, and runs nothing of it', async () => {
    const name = `v'; DROP TABLE public.${CANARY}; --"x`;
    const view = `app.${quoteIdent(name)}`;
    await createCanary(ctx.db);
    await ctx.db.runScript(
      [`CREATE VIEW ${view} AS SELECT tenant_id, id, body FROM app.guarded`, `ALTER VIEW ${view} OWNER TO ${byp}`, `GRANT SELECT ON ${view} TO ${app}`].join(
        ';\n',
      ) + ';',
    );
    const before = await snapshotDatabase(ctx.db);
    const findings = await explain(`SELECT body FROM ${view}`);
    await expectUntouched(ctx.db, before);
    expect(findings.map((f) => f.rule)).toEqual(['EXP001']);
    const fix = findings[0].help!.split('\n').find((l) => l.startsWith('ALTER VIEW'))!;
    expect(fix.startsWith(`ALTER VIEW ${view} `)).toBe(true);
    if (ctx.server.major >= 15) {
      // The printed fix alters that view and nothing else: the canary stays, and the view reads as the caller.
      const statement = `ALTER VIEW ${view} SET (security_invoker = true);`;
      expect(fix.startsWith(statement)).toBe(true);
      await ctx.db.query(statement);
      expect((await ctx.db.query(`SELECT count(*)::int AS n FROM public.${CANARY}`)).rows[0].n).toBe(3);
      expect(await explain(`SELECT body FROM ${view}`)).toEqual([]);
    }
  });

  it("judges a partition the query names by its own policies: the rewrite is of the partition's policy", async () => {
    const findings = await explain('SELECT body FROM app.ev_1');
    const exp = findings.filter((f) => f.rule === 'EXP001' || f.rule === 'EXP002');
    expect(exp).toHaveLength(1);
    expect(exp[0].message).toMatch(/calls app\.tenant_volatile\(\) for every row/);
    expect(exp[0].help).toContain('ALTER POLICY per_row ON app.ev_1');
  });
});

/**
 * verify asks the module which fix a leak needs: a role that owns the table
 * it reads across (no policy applies to it) needs FORCE, not a better policy;
 * a security_invoker view reads as the role, so its tables' policies are the
 * hole, not the view.
 */
describeEachServer('who row security applies to: verify asks the module', (ctx) => {
  const app = uniqueName('rsv_app');
  const A = '00000000-0000-4000-8000-00000000000a';
  const B = '00000000-0000-4000-8000-00000000000b';
  let db: Database;

  beforeAll(async () => {
    const guard = `org_id = (SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid)`;
    await ctx.db.runScript(
      [
        `CREATE ROLE ${app}`,
        'CREATE SCHEMA vt',
        `GRANT USAGE ON SCHEMA vt TO ${app}`,
        // The app role owns it and it is not forced: its (right) policy never applies to the app role.
        `CREATE TABLE vt.owned (org_id uuid NOT NULL, id bigint PRIMARY KEY)`,
        `INSERT INTO vt.owned VALUES ('${A}', 1), ('${B}', 2)`,
        `CREATE POLICY tenant_access ON vt.owned TO ${app} USING (${guard}) WITH CHECK (${guard})`,
        `ALTER TABLE vt.owned ENABLE ROW LEVEL SECURITY`,
        `ALTER TABLE vt.owned OWNER TO ${app}`,
        // A policy that admits every row, read through a security_invoker view (15+).
        `CREATE TABLE vt.open (org_id uuid NOT NULL, id bigint PRIMARY KEY)`,
        `INSERT INTO vt.open VALUES ('${A}', 1), ('${B}', 2)`,
        `CREATE POLICY tenant_access ON vt.open TO ${app} USING (true)`,
        `ALTER TABLE vt.open ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY`,
        `CREATE VIEW vt.open_view${ctx.server.major >= 15 ? ' WITH (security_invoker = true)' : ''} AS SELECT org_id, id FROM vt.open`,
        `GRANT SELECT ON vt.open, vt.open_view TO ${app}`,
      ].join(';\n') + ';',
    );
    db = await openDatabase({ db: ctx.db.url });
  });

  afterAll(async () => {
    await db?.close();
    await ctx.db.query('DROP SCHEMA vt CASCADE').catch(() => undefined);
    await ctx.db.query(`DROP ROLE IF EXISTS ${app}`).catch(() => undefined);
  });

  it('gives the fix of why row security does not hold the role: FORCE for an owner, the tables for a security_invoker view', async () => {
    const yaml = `version: 1\ntenant: { setting: app.tenant_id, type: uuid, column: org_id }\nroles: { app: [${app}] }\nschemas:\n  vt:\n    tables:\n      owned: tenant\n      open: tenant\n`;
    const facts = factsFromModel(await parsePolicy([{ file: 'policy.yaml', text: yaml }]));
    const result = await runVerify(db, facts);
    const owned = result.findings.find((f) => f.fingerprint === `VER001:vt.owned:${app}`);
    expect(owned?.help).toContain(`${app} owns vt.owned, which does not force row level security`);
    expect(owned?.help).toContain('ALTER TABLE vt.owned FORCE ROW LEVEL SECURITY;');
    const view = result.findings.find((f) => f.fingerprint === `VER001:vt.open_view:${app}`);
    if (ctx.server.major >= 15) {
      expect(view?.help).toContain(`vt.open_view is security_invoker: it reads its tables as ${app}`);
      expect(view?.help).not.toContain('SET (security_invoker');
    } else {
      expect(view?.help).toContain('security_invoker = on');
    }
  });
});
