import pg from 'pg';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parsePolicy } from '../../src/policy/load-policy.js';
import type { PolicyModel } from '../../src/policy/model.js';
import { buildPlan } from '../../src/plan/build-plan.js';
import { planProblems } from '../../src/plan/plan.js';
import { applyPlan } from '../../src/apply/apply-plan.js';
import { openDatabase, type Database } from '../../src/db/connection.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { CANARY, createCanary } from '../helpers/hostile.js';
import { runAudit } from '../../src/audit/run-audit.js';
import { factsFromModel } from '../../src/facts/resolve-facts.js';
import { runCli } from '../helpers/cli.js';

/**
 * partitions.protect_new: apply installs an event trigger; partitions created
 * or attached afterwards (range, list, hash, two levels, ATTACH PARTITION, a
 * `via` table, hostile names) are protected in the statement that made them,
 * read directly as the app role; plan stays empty; removing the key drops it.
 */

const HOSTILE = `p'"$rlsctl_fn$\n%s; DROP TABLE public.${CANARY}; --`;
/** A declared table whose name and hand-written policy hold the function's dollar-quote tag, a quote and a format() placeholder (the policy file admits no control character in a name). */
const HOSTILE_TABLE = `t'$rlsctl_fn$ %I`;

describeEachServer('partitions.protect_new', (ctx) => {
  const app = uniqueName('pt_app');
  const mig = uniqueName('pt_mig');
  let db: Database;

  function policy(protect: boolean | undefined, extra: string[] = []): Promise<PolicyModel> {
    return parsePolicy([{ file: 'policy.yaml', text: policyText(protect, extra) }]);
  }

  /** The policy file on disk, for the CLI. */
  function policyFile(protect: boolean | undefined, extra: string[] = []): string {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'rlsctl-pt-')), 'policy.yaml');
    writeFileSync(file, policyText(protect, extra));
    return file;
  }

  function policyText(protect: boolean | undefined, extra: string[]): string {
    return [
      'version: 1',
      'tenant: { setting: app.tenant, type: integer }',
      `roles: { app: [${app}] }`,
      ...(protect === undefined ? [] : [`partitions: { protect_new: ${protect} }`]),
      'schemas:',
      '  shop:',
      '    tables:',
      '      events: tenant',
      '      tags: tenant',
      '      hashed: tenant',
      '      accounts: tenant',
      '      notes: { mode: tenant, via: { parent: accounts, columns: [account_id], references: [id] } }',
      ...extra.map((t) => `      ${t}: tenant`),
      `      ${JSON.stringify(HOSTILE_TABLE)}:`,
      '        mode: tenant',
      '        policies:',
      `          - { name: "p$rlsctl_fn$", to: [${app}], for: select, using: "'$rlsctl_fn$' <> '%s' -- a comment" }`,
    ].join('\n');
  }

  /** A connection as the migration role, which owns the tables and creates the partitions. */
  async function asMigration(sql: string): Promise<void> {
    const client = new pg.Client({ connectionString: ctx.db.urlAs(mig) });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  }

  /** The tenant ids the app role reads from a relation named directly, with tenant `tenant` set or none. */
  async function appReads(relation: string, tenant?: number): Promise<number[]> {
    const client = new pg.Client({ connectionString: ctx.db.urlAs(app) });
    await client.connect();
    try {
      await client.query('BEGIN');
      if (tenant !== undefined) await client.query(`SELECT set_config('app.tenant', $1, true)`, [String(tenant)]);
      const { rows } = await client.query<{ t: number }>(`SELECT tenant_id AS t FROM ${relation} ORDER BY 1`);
      await client.query('COMMIT');
      return rows.map((r) => r.t);
    } finally {
      await client.end();
    }
  }

  beforeAll(async () => {
    await ctx.db.query(`CREATE ROLE ${app} LOGIN PASSWORD 'secret'`);
    await ctx.db.query(`CREATE ROLE ${mig} LOGIN PASSWORD 'secret'`);
    await ctx.db.query(`GRANT CREATE ON DATABASE ${ctx.db.name} TO ${mig}`);
    await createCanary(ctx.db);
    await asMigration(`
      CREATE SCHEMA shop;
      GRANT USAGE ON SCHEMA shop TO ${app};
      -- Partitions created later are readable by the app role: what makes an unprotected one a leak.
      ALTER DEFAULT PRIVILEGES IN SCHEMA shop GRANT SELECT ON TABLES TO ${app};
      CREATE TABLE shop.events (tenant_id int NOT NULL, day int NOT NULL) PARTITION BY RANGE (day);
      CREATE TABLE shop.events_1 PARTITION OF shop.events FOR VALUES FROM (0) TO (10);
      CREATE TABLE shop.tags (tenant_id int NOT NULL, kind text NOT NULL) PARTITION BY LIST (kind);
      CREATE TABLE shop.tags_a PARTITION OF shop.tags FOR VALUES IN ('a');
      CREATE TABLE shop.hashed (tenant_id int NOT NULL, id int NOT NULL) PARTITION BY HASH (id);
      CREATE TABLE shop.hashed_0 PARTITION OF shop.hashed FOR VALUES WITH (MODULUS 2, REMAINDER 0);
      CREATE TABLE shop.accounts (tenant_id int NOT NULL, id int PRIMARY KEY);
      CREATE TABLE shop.notes (account_id int NOT NULL, body text) PARTITION BY RANGE (account_id);
      CREATE TABLE shop.notes_1 PARTITION OF shop.notes FOR VALUES FROM (0) TO (100);
      CREATE TABLE shop.${quote(HOSTILE_TABLE)} (tenant_id int NOT NULL, day int NOT NULL) PARTITION BY RANGE (day);
    `);
    db = await openDatabase({ db: ctx.db.url });
  });

  afterAll(async () => {
    await db?.close();
    await ctx.db.query(`DROP OWNED BY ${app}, ${mig} CASCADE`).catch(() => undefined);
  });

  it('installs the function and the event trigger last in the transaction; plan is empty afterwards', async () => {
    const plan = await buildPlan(db.pool, await policy(true));
    const transaction = plan.statements.filter((s) => s.phase === 'transaction');
    expect(transaction.slice(-3).map((s) => s.sql.split('\n')[0])).toEqual([
      'CREATE SCHEMA rlsctl;',
      'CREATE OR REPLACE FUNCTION rlsctl.protect_new_partitions() RETURNS event_trigger',
      'CREATE EVENT TRIGGER rlsctl_protect_new_partitions ON ddl_command_end',
    ]);
    await applyPlan(db, plan);
    const { rows } = await ctx.db.query(
      `SELECT e.evtevent, e.evtenabled, e.evttags, p.prosecdef, p.proconfig, r.rolsuper
         FROM pg_event_trigger e JOIN pg_proc p ON p.oid = e.evtfoid JOIN pg_roles r ON r.oid = p.proowner
        WHERE e.evtname = 'rlsctl_protect_new_partitions'`,
    );
    expect(rows).toEqual([
      {
        evtevent: 'ddl_command_end',
        evtenabled: 'O',
        evttags: ['ALTER TABLE', 'CREATE TABLE'],
        prosecdef: false,
        proconfig: ['search_path=pg_catalog, pg_temp'],
        rolsuper: true,
      },
    ]);
    expect((await buildPlan(db.pool, await policy(true))).statements).toEqual([]);
    expect(await runCli(['plan', '--check', '--policies', policyFile(true), '--db', ctx.db.url])).toMatchObject({ code: 0 });
  });

  it('protects range, list, hash, two-level, attached and via partitions created after apply, hostile names included', async () => {
    const hostile = `shop.${quote(HOSTILE)}`;
    await asMigration(`
      CREATE TABLE shop.events_2 PARTITION OF shop.events FOR VALUES FROM (10) TO (20);
      CREATE TABLE ${hostile} PARTITION OF shop.tags FOR VALUES IN ('b');
      CREATE TABLE shop.hashed_1 PARTITION OF shop.hashed FOR VALUES WITH (MODULUS 2, REMAINDER 1);
      CREATE TABLE shop.events_3 PARTITION OF shop.events FOR VALUES FROM (20) TO (40) PARTITION BY RANGE (day);
      CREATE TABLE shop.events_3a PARTITION OF shop.events_3 FOR VALUES FROM (20) TO (30);
      CREATE TABLE shop.notes_2 PARTITION OF shop.notes FOR VALUES FROM (100) TO (200);
      CREATE TABLE shop.hostile_1 PARTITION OF shop.${quote(HOSTILE_TABLE)} FOR VALUES FROM (0) TO (10);
    `);
    // ATTACH PARTITION of a table made on its own (in one transaction: the plain table is undeclared meanwhile).
    await asMigration(`
      BEGIN;
      CREATE TABLE shop.events_4 (tenant_id int NOT NULL, day int NOT NULL);
      ALTER TABLE shop.events ATTACH PARTITION shop.events_4 FOR VALUES FROM (40) TO (50);
      COMMIT;
    `);
    await ctx.db.query(`
      INSERT INTO shop.events VALUES (1, 15), (2, 15), (1, 25), (2, 25), (1, 45), (2, 45);
      INSERT INTO shop.tags VALUES (1, 'b'), (2, 'b');
      INSERT INTO shop.hashed SELECT t, i FROM generate_series(1, 2) t, generate_series(1, 20) i;
      INSERT INTO shop.accounts VALUES (1, 150), (2, 160);
      INSERT INTO shop.notes VALUES (150, 'one'), (160, 'two');
      INSERT INTO shop.${quote(HOSTILE_TABLE)} VALUES (1, 1), (2, 1);
    `);
    for (const relation of ['shop.events_2', hostile, 'shop.hashed_1', 'shop.events_3', 'shop.events_3a', 'shop.events_4', 'shop.hostile_1']) {
      const own = await appReads(relation, 1);
      expect(own.length, relation).toBeGreaterThan(0);
      expect(new Set(own), relation).toEqual(new Set([1]));
      expect(await appReads(relation), relation).toEqual([]);
    }
    // The via predicate names the partition, not its parent.
    const client = new pg.Client({ connectionString: ctx.db.urlAs(app) });
    await client.connect();
    try {
      await client.query(`BEGIN; SELECT set_config('app.tenant', '2', true)`);
      expect((await client.query('SELECT body FROM shop.notes_2')).rows).toEqual([{ body: 'two' }]);
      await client.query('ROLLBACK');
    } finally {
      await client.end();
    }
    const { rows } = await ctx.db.query(`SELECT id, note FROM public.${CANARY} ORDER BY id`);
    expect(rows.length).toBe(3);
    // What the trigger made is what apply makes: nothing to plan.
    const again = await buildPlan(db.pool, await policy(true));
    expect([again.statements, again.drift]).toEqual([[], []]);
    expect(await runCli(['plan', '--check', '--policies', policyFile(true), '--db', ctx.db.url])).toMatchObject({ code: 0 });
  });

  /** The messages of the RLS053 findings of an audit with the policy file's facts. */
  async function rls053(model: PolicyModel): Promise<string[]> {
    const client = await ctx.db.client();
    try {
      const result = await runAudit(client, factsFromModel(model));
      return result.findings.filter((f) => f.rule === 'RLS053').map((f) => f.message);
    } finally {
      await client.end();
    }
  }

  it('re-protects a partition whose RLS is disabled by hand; audit says the trigger is installed', async () => {
    await ctx.db.query('ALTER TABLE shop.events_2 DISABLE ROW LEVEL SECURITY');
    expect((await ctx.db.query(`SELECT relrowsecurity FROM pg_class WHERE oid = 'shop.events_2'::regclass`)).rows).toEqual([{ relrowsecurity: true }]);
    // Past the trigger (its own guard): the partition stays unprotected, and audit knows the trigger is there.
    await ctx.db.query(`BEGIN; SELECT set_config('rlsctl.protecting_partitions', 'on', true); ALTER TABLE shop.events_2 DISABLE ROW LEVEL SECURITY; COMMIT`);
    expect(await rls053(await policy(true))).toEqual([
      'partition shop.events_2 of shop.events: row level security is disabled, so a query that names the partition is not isolated like its parent (the rlsctl_protect_new_partitions event trigger is installed: the partition predates it, or was changed since)',
    ]);
    await applyPlan(db, await buildPlan(db.pool, await policy(true)));
    expect(await rls053(await policy(true))).toEqual([]);
  });

  it('apply repairs a declared table and adds a new one while the trigger is installed (the trigger stands aside)', async () => {
    // Without the guard the trigger, fired by the plan's ALTER TABLE shop.events ENABLE ROW LEVEL
    // SECURITY, would recreate the policies of events_1 before the plan's own CREATE POLICY on it, which
    // would then fail with "already exists".
    await ctx.db.query('ALTER TABLE shop.events DISABLE ROW LEVEL SECURITY; DROP POLICY rlsctl_tenant_access ON shop.events_1');
    await asMigration(`
      CREATE TABLE shop.logs (tenant_id int NOT NULL, day int NOT NULL) PARTITION BY RANGE (day);
      CREATE TABLE shop.logs_1 PARTITION OF shop.logs FOR VALUES FROM (0) TO (10);
    `);
    const plan = await buildPlan(db.pool, await policy(true, ['logs']));
    // A migration file of the plan, run without apply, stands the trigger aside first too.
    expect(plan.statements[0].sql).toBe(`SELECT pg_catalog.set_config('rlsctl.protecting_partitions', 'on', true);`);
    // audit's RLS006 lists what apply would change; the guard is how it runs, not a difference.
    const client = await ctx.db.client();
    try {
      const audit = await runAudit(client, factsFromModel(await policy(true, ['logs'])), { plan, rules: ['RLS006'] });
      expect(audit.findings.length).toBe(plan.statements.length - 1);
      expect(audit.findings.some((f) => f.message.includes('stands aside'))).toBe(false);
    } finally {
      await client.end();
    }
    // Run as a migration file would: the transaction's statements as they are, then apply the indexes.
    const transaction = plan.statements.filter((s) => s.phase === 'transaction').map((s) => s.sql);
    await ctx.db.runScript(['BEGIN;', ...transaction, 'COMMIT;'].join('\n'));
    await applyPlan(db, await buildPlan(db.pool, await policy(true, ['logs'])));
    await ctx.db.query('INSERT INTO shop.logs VALUES (1, 1), (2, 1)');
    expect(await appReads('shop.logs_1', 2)).toEqual([2]);
    // The replaced function knows the new table: its next partition is protected at creation.
    await asMigration('CREATE TABLE shop.logs_2 PARTITION OF shop.logs FOR VALUES FROM (10) TO (20)');
    await ctx.db.query('INSERT INTO shop.logs VALUES (1, 11), (2, 11)');
    expect(await appReads('shop.logs_2', 2)).toEqual([2]);
    expect((await buildPlan(db.pool, await policy(true, ['logs']))).statements).toEqual([]);
  });

  it('refuses to plan the trigger for a role that is not a superuser', async () => {
    const asMig = await openDatabase({ db: ctx.db.urlAs(mig) });
    try {
      const plan = await buildPlan(asMig.pool, await policy(false, ['logs']));
      expect(planProblems(plan)).toEqual([
        'partitions.protect_new needs a superuser to create, replace or drop the event trigger rlsctl_protect_new_partitions (CREATE EVENT TRIGGER is reserved to superusers), and the current role is not one',
      ]);
    } finally {
      await asMig.close();
    }
    const cli = await runCli(['plan', '--policies', policyFile(false, ['logs']), '--db', ctx.db.urlAs(mig)]);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain('partitions.protect_new needs a superuser');
    // The check says what the server would: CREATE EVENT TRIGGER is refused to a role that is not a superuser.
    await expect(asMigration('CREATE EVENT TRIGGER x ON ddl_command_end EXECUTE FUNCTION rlsctl.protect_new_partitions()')).rejects.toMatchObject({
      code: '42501',
    });
  });

  it('drops the trigger, its function and schema when the key goes; later partitions are then left alone', async () => {
    const plan = await buildPlan(db.pool, await policy(undefined, ['logs']));
    expect(plan.statements.map((s) => s.sql)).toEqual([
      'DROP EVENT TRIGGER rlsctl_protect_new_partitions;',
      'DROP FUNCTION rlsctl.protect_new_partitions();',
      'DROP SCHEMA rlsctl;',
    ]);
    // Partitions created from now on are readable in full until the next apply: the plan says so.
    expect(plan.statements[0].hazards).toEqual(['AUTHZ_WIDENS', 'DROP']);
    await applyPlan(db, plan);
    expect((await ctx.db.query(`SELECT 1 FROM pg_event_trigger WHERE evtname = 'rlsctl_protect_new_partitions'`)).rows).toEqual([]);
    expect((await ctx.db.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'rlsctl'`)).rows).toEqual([]);
    await asMigration('CREATE TABLE shop.events_5 PARTITION OF shop.events FOR VALUES FROM (50) TO (60)');
    const { rows } = await ctx.db.query(`SELECT relrowsecurity FROM pg_class WHERE oid = 'shop.events_5'::regclass`);
    expect(rows).toEqual([{ relrowsecurity: false }]);
    expect(await rls053(await policy(undefined, ['logs']))).toEqual([
      "partition shop.events_5 of shop.events: row level security is disabled; it lacks the parent's policies rlsctl_tenant_access, rlsctl_tenant_guard, so a query that names the partition is not isolated like its parent",
    ]);
    expect((await buildPlan(db.pool, await policy(false, ['logs']))).statements.some((s) => s.target.kind === 'function')).toBe(false);
  });
});

function quote(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
