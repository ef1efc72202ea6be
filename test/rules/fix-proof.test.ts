import { afterAll, beforeAll, expect, it } from 'vitest';
import type pg from 'pg';
import { AUDIT_RULES } from '../../src/audit/registry.js';
import { splitStatements } from '../../src/audit/fix-script.js';
import { runScript } from '../../src/db/run-script.js';
import type { FactOptions } from '../../src/facts/resolve-facts.js';
import type { Finding } from '../../src/report/finding.js';
import { describeEachServer } from '../helpers/db.js';
import { auditOpenTransaction, fixtureRoles, readAuditFixture, type FixtureRoles } from '../helpers/audit-fixtures.js';

/**
 * Every fix is executed, not only parsed: for each rule, the fix that the
 * audit of fixtures/audit/<RULE>/bad.sql prints runs on that database (inside
 * the fixture's transaction, rolled back; an index build runs in its
 * non-concurrent form there), the audit runs again, and the finding must be
 * gone with no new error. A fix that is not runnable must say so: no SQL, a
 * note. Then the wrong fixes of issue 15, each run for real.
 */

/** Placeholders a runnable fix must never hold: names rlsctl would have invented. */
const PLACEHOLDERS = /\bapp_user\b|\btable_owner\b|\bview_owner\b|\bfunction_owner\b|\.\.\./;

/** The fix's statements in the order the fix script runs them, each runnable inside a transaction. */
function inTransaction(sql: string): string[] {
  const split = splitStatements(sql);
  if (!split) throw new Error(`the fix does not parse:\n${sql}`);
  const order = { transaction: 0, enable: 1, after: 2 } as const;
  return [...split.statements]
    .sort((a, b) => order[a.phase] - order[b.phase])
    .map((s) => (s.phase === 'after' ? s.sql.replace(/\bCONCURRENTLY\b/i, '') : s.sql));
}

/** SQL outside comments: what runs. */
function statementsOf(sql: string): string {
  return sql
    .split('\n')
    .filter((l) => !l.trim().startsWith('--'))
    .join('\n');
}

describeEachServer('audit fixes, run for real', (ctx) => {
  const fixture: FixtureRoles = fixtureRoles();
  const { roles } = fixture;
  beforeAll(() => fixture.create(ctx.db));
  afterAll(() => fixture.drop(ctx.db));

  /**
   * In one transaction, rolled back: `sql`, the audit, the fix of the finding
   * `pick` chooses, the audit again. Returns both audits and the finding.
   */
  async function proveFix(
    rule: string,
    sql: string,
    pick: (f: Finding) => boolean,
    options: { facts?: Partial<FactOptions>; after?: (client: pg.Client) => Promise<void> } = {},
  ): Promise<{ finding: Finding; before: Finding[]; after: Finding[] }> {
    const client: pg.Client = await ctx.db.client();
    try {
      await client.query('BEGIN');
      await runScript(client, fixture.fill(sql));
      const audit = () => auditOpenTransaction(client, fixture, ctx.db.name, rule, 'bad', options.facts);
      const before = await audit();
      const found = before.filter(pick);
      expect(found, JSON.stringify(before, null, 2)).toHaveLength(1);
      const finding = found[0];
      const fix = finding.fix!;
      expect(fix, `${rule} has a fix`).toBeDefined();
      if (!fix.runnable) return { finding, before, after: before };
      expect(typeof fix.sql).toBe('string');
      expect(statementsOf(fix.sql!)).not.toMatch(PLACEHOLDERS);
      for (const statement of inTransaction(fix.sql!)) await client.query(statement);
      const after = await audit();
      await options.after?.(client);
      return { finding, before, after };
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end();
    }
  }

  function expectSolved({ finding, before, after }: { finding: Finding; before: Finding[]; after: Finding[] }) {
    expect(after.filter((f) => f.fingerprint === finding.fingerprint)).toEqual([]);
    const errorsBefore = new Set(before.filter((f) => f.severity === 'error').map((f) => f.fingerprint));
    expect(after.filter((f) => f.severity === 'error' && !errorsBefore.has(f.fingerprint))).toEqual([]);
  }

  for (const rule of AUDIT_RULES) {
    it(`${rule.code} ${rule.name}: the fix runs on bad.sql, the finding is gone, no new error (or it says it is not runnable)`, async () => {
      const proof = await proveFix(rule.code, readAuditFixture(rule.code, 'bad.sql')!, (f) => f.rule === rule.code);
      const fix = proof.finding.fix!;
      if (fix.runnable) expectSolved(proof);
      else {
        expect(fix.sql).toBeNull();
        expect(fix.note?.length ?? 0).toBeGreaterThan(10);
      }
    });
  }

  it('the rules whose bad fixture has a runnable fix are most of them', async () => {
    // Not a test of any one fix: that the loop above proves fixes, not notes. RLS005, RLS007, RLS024, RLS031, RLS035 and RLS070 need a decision.
    const manual: string[] = [];
    for (const rule of AUDIT_RULES) {
      const client: pg.Client = await ctx.db.client();
      try {
        await client.query('BEGIN');
        await runScript(client, fixture.fill(readAuditFixture(rule.code, 'bad.sql')!));
        const f = (await auditOpenTransaction(client, fixture, ctx.db.name, rule.code, 'bad')).find((x) => x.rule === rule.code);
        if (!f?.fix?.runnable) manual.push(rule.code);
      } finally {
        await client.query('ROLLBACK').catch(() => undefined);
        await client.end();
      }
    }
    expect(manual.sort()).toEqual(['RLS005', 'RLS007', 'RLS024', 'RLS031', 'RLS035', ...(ctx.server.major >= 15 ? [] : ['RLS050']), 'RLS070'].sort());
  });

  // The wrong or invalid fixes of issue 15: each fix now runs.

  const table = `CREATE SCHEMA app AUTHORIZATION {{owner}};
GRANT USAGE ON SCHEMA app TO {{app}};
CREATE TABLE app.items (tenant_id uuid NOT NULL, id bigint NOT NULL, name text, PRIMARY KEY (tenant_id, id));
ALTER TABLE app.items OWNER TO {{owner}};
ALTER TABLE app.items ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.items FORCE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE, DELETE ON app.items TO {{app}};
`;

  it('RLS041 on an INSERT policy: the fix changes its WITH CHECK, never adds a USING (PostgreSQL refuses it)', async () => {
    const proof = await proveFix(
      'RLS041',
      `${table}CREATE POLICY items_read ON app.items FOR SELECT TO {{app}} USING (tenant_id = (SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid));
CREATE POLICY items_insert ON app.items FOR INSERT TO {{app}} WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);`,
      (f) => f.rule === 'RLS041',
    );
    expect(proof.finding.fix).toMatchObject({ runnable: true });
    expect(proof.finding.fix!.sql).not.toContain('USING');
    expectSolved(proof);
  });

  it('RLS022: the fix drops the fail-open branch and keeps the rest of the policy (its other condition, its tenant source)', async () => {
    const proof = await proveFix(
      'RLS022',
      `${table}CREATE POLICY items_tenant ON app.items FOR ALL TO {{app}}
  USING (name IS NOT NULL AND (current_setting('app.tenant_id', true) = '' OR tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)));`,
      (f) => f.rule === 'RLS022',
    );
    expect(proof.finding.fix!.sql).toContain('name IS NOT NULL');
    expect(proof.finding.fix!.sql).not.toMatch(/= ''::text\)? OR/);
    expectSolved(proof);
  });

  it('RLS021 on a JSON claims setting: NULLIF before the cast to jsonb, the claim kept; no cast of the claims to uuid, no other setting named', async () => {
    const proof = await proveFix(
      'RLS021',
      `${table}CREATE POLICY items_tenant ON app.items FOR ALL TO {{app}}
  USING (tenant_id = (SELECT (current_setting('request.jwt.claims', true)::jsonb ->> 'org_id')::uuid));`,
      (f) => f.rule === 'RLS021',
      {
        facts: { tenantSetting: 'request.jwt.claims' },
        after: async (client) => {
          // As the app role with the claims set to '' (what a transaction-local claim leaves): no error, no row.
          await client.query(`INSERT INTO app.items VALUES ('00000000-0000-4000-8000-00000000000a', 1, 'x')`);
          await client.query(`SET LOCAL ROLE ${roles.app}`);
          await client.query(`SELECT set_config('request.jwt.claims', '', true)`);
          expect((await client.query('SELECT * FROM app.items')).rows).toEqual([]);
          await client.query(`SELECT set_config('request.jwt.claims', '{"org_id": "00000000-0000-4000-8000-00000000000a"}', true)`);
          expect((await client.query('SELECT id FROM app.items')).rows).toEqual([{ id: '1' }]);
          await client.query('RESET ROLE');
        },
      },
    );
    expect(proof.finding.fix!.sql).toContain("'request.jwt.claims'");
    expect(proof.finding.fix!.sql).toContain("'org_id'");
    expect(proof.finding.fix!.sql).not.toContain('app.tenant_id');
    expectSolved(proof);
  });

  it('RLS001 with the tenant in a JSON claims setting: not runnable, and no cast of the claims to uuid', async () => {
    const proof = await proveFix('RLS001', table.replace(/ALTER TABLE app\.items (ENABLE|FORCE).*\n/g, ''), (f) => f.rule === 'RLS001', {
      facts: { tenantSetting: 'request.jwt.claims' },
    });
    expect(proof.finding.fix).toMatchObject({ sql: null, runnable: false });
    expect(proof.finding.fix!.note).toContain('request.jwt.claims');
    expect(proof.finding.help).not.toMatch(/request\.jwt\.claims[^;]*::uuid/);
  });

  it('RLS001 with no tenant setting known: not runnable, and no setting invented', async () => {
    const client: pg.Client = await ctx.db.client();
    try {
      await client.query('BEGIN');
      await runScript(client, fixture.fill(readAuditFixture('RLS001', 'bad.sql')!));
      // No --tenant-setting and no policy reading one: the facts have none.
      const findings = await auditOpenTransaction(client, fixture, ctx.db.name, 'RLS001', 'bad', { tenantSetting: undefined });
      const f = findings.find((x) => x.rule === 'RLS001')!;
      expect(f.fix).toMatchObject({ sql: null, runnable: false });
      expect(f.help).not.toContain('app.tenant_id');
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end();
    }
  });

  it('RLS003 on a table without the tenant column: not runnable, and no policy on a column it does not have', async () => {
    const proof = await proveFix(
      'RLS003',
      `CREATE SCHEMA app AUTHORIZATION {{owner}};
CREATE TABLE app.locks (name text PRIMARY KEY);
ALTER TABLE app.locks OWNER TO {{owner}};
ALTER TABLE app.locks ENABLE ROW LEVEL SECURITY;`,
      (f) => f.rule === 'RLS003',
    );
    expect(proof.finding.fix).toMatchObject({ sql: null, runnable: false });
    expect(proof.finding.help).not.toContain('tenant_id');
  });

  it('RLS041 on a Supabase-style auth.uid(): the call wrapped where it stands, schema kept, no setting invented', async () => {
    const proof = await proveFix(
      'RLS041',
      `CREATE SCHEMA auth;
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$ SELECT NULLIF(current_setting('request.jwt.claim.sub', true), '')::uuid $$;
GRANT USAGE ON SCHEMA auth TO {{app}};
${table}CREATE POLICY items_tenant ON app.items FOR ALL TO {{app}} USING (tenant_id = auth.uid());`,
      (f) => f.rule === 'RLS041',
    );
    expect(proof.finding.fix!.sql).toContain('(SELECT auth.uid())');
    expect(proof.finding.fix!.sql).not.toContain('current_setting');
    expectSolved(proof);
  });

  const projects = `CREATE SCHEMA app AUTHORIZATION {{owner}};
CREATE TABLE app.projects (tenant_id uuid NOT NULL, id bigint NOT NULL, PRIMARY KEY (tenant_id, id), UNIQUE (id));
ALTER TABLE app.projects OWNER TO {{owner}};
CREATE POLICY p ON app.projects TO {{app}} USING (tenant_id = (SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid));
ALTER TABLE app.projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.projects FORCE ROW LEVEL SECURITY;
`;
  const tasks = (
    action: string,
  ) => `${projects}CREATE TABLE app.tasks (tenant_id uuid NOT NULL, id bigint NOT NULL, project_id bigint REFERENCES app.projects (id) ${action}, PRIMARY KEY (tenant_id, id));
ALTER TABLE app.tasks OWNER TO {{owner}};
CREATE POLICY p ON app.tasks TO {{app}} USING (tenant_id = (SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid));
ALTER TABLE app.tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.tasks FORCE ROW LEVEL SECURITY;
`;
  const A = '00000000-0000-4000-8000-00000000000a';

  it('RLS060: the paired foreign key keeps ON DELETE CASCADE and ON UPDATE CASCADE, and DEFERRABLE', async () => {
    const proof = await proveFix('RLS060', tasks('ON DELETE CASCADE ON UPDATE CASCADE DEFERRABLE INITIALLY DEFERRED'), (f) => f.rule === 'RLS060', {
      after: async (client) => {
        const { rows } = await client.query(
          `SELECT confdeltype, confupdtype, condeferrable, condeferred, array_length(conkey, 1) AS n FROM pg_constraint WHERE conrelid = 'app.tasks'::regclass AND contype = 'f'`,
        );
        expect(rows).toEqual([{ confdeltype: 'c', confupdtype: 'c', condeferrable: true, condeferred: true, n: 2 }]);
      },
    });
    expectSolved(proof);
  });

  it('RLS060: ON DELETE SET NULL becomes SET NULL (project_id) on 15 and later, so the tenant column is not nulled; not runnable on 14', async () => {
    const proof = await proveFix('RLS060', tasks('ON DELETE SET NULL'), (f) => f.rule === 'RLS060', {
      after: async (client) => {
        await client.query(`INSERT INTO app.projects VALUES ('${A}', 7)`);
        await client.query(`INSERT INTO app.tasks VALUES ('${A}', 1, 7)`);
        await client.query(`DELETE FROM app.projects WHERE id = 7`);
        expect((await client.query('SELECT tenant_id, project_id FROM app.tasks')).rows).toEqual([{ tenant_id: A, project_id: null }]);
      },
    });
    if (ctx.server.major >= 15) {
      expect(proof.finding.fix!.sql).toContain('ON DELETE SET NULL (project_id)');
      expectSolved(proof);
    } else {
      expect(proof.finding.fix).toMatchObject({ sql: null, runnable: false });
      expect(proof.finding.fix!.note).toContain('15');
    }
  });
});
