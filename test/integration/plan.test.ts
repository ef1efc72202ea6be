import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parsePolicy } from '../../src/policy/load-policy.js';
import type { PolicyModel } from '../../src/policy/model.js';
import { buildPlan } from '../../src/plan/build-plan.js';
import { applyPlan } from '../../src/apply/apply-plan.js';
import { introspectCatalog } from '../../src/catalog/introspect-catalog.js';
import type { CatalogTable } from '../../src/catalog/catalog-model.js';
import { openDatabase, type Database } from '../../src/db/connection.js';
import type { Statement } from '../../src/compile/statement.js';
import { describeEachServer, uniqueName, type TestDatabase } from '../helpers/db.js';
import { ROOT } from '../helpers/cli.js';

/**
 * plan against real PostgreSQL: every feature of the policy file planned on a
 * fresh database, applied, read back, planned again (the convergence test);
 * drift seen and repaired; changes to the file planned minimally.
 */

function fixture(name: string, roles: Record<string, string>): string {
  return readFileSync(path.join(ROOT, 'fixtures/live', name), 'utf8').replace(/\{\{(\w+)\}\}/g, (_, k: string) => roles[k]);
}

/** The policy file with a text edit applied (the test states the edit). */
async function policyWith(roles: Record<string, string>, edit: (yaml: string) => string = (y) => y): Promise<PolicyModel> {
  return parsePolicy([{ file: 'policy.yaml', text: edit(fixture('policy.yaml', roles)) }]);
}

/** RLS flags, policies and indexes of the fixture's schemas, read with plain catalog SQL (not with the code under test). */
async function snapshot(db: TestDatabase): Promise<unknown[]> {
  const { rows } = await db.query(`
    SELECT n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity,
           (SELECT json_agg(json_build_array(p.polname, p.polpermissive, p.polcmd,
                     (SELECT array_agg(r::text ORDER BY r::text) FROM unnest(p.polroles::regrole[]) r),
                     pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)) ORDER BY p.polname)
              FROM pg_policy p WHERE p.polrelid = c.oid) AS policies,
           (SELECT json_agg(json_build_array(pg_get_indexdef(i.indexrelid), i.indisvalid) ORDER BY pg_get_indexdef(i.indexrelid))
              FROM pg_index i WHERE i.indrelid = c.oid) AS indexes
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname IN ('shop', 'archive') AND c.relkind IN ('r', 'p')
     ORDER BY 1, 2`);
  return rows;
}

function targetTable(s: Statement): string {
  return `${s.target.schema}.${!('table' in s.target) ? s.target.name : s.target.table}`;
}

describeEachServer('plan', (ctx) => {
  const roles = { app: uniqueName('app'), owner: uniqueName('owner'), other: uniqueName('other') };
  let model: PolicyModel;
  let db: Database;
  let converged: unknown[];

  const table = async (schema: string, name: string): Promise<CatalogTable> => {
    const catalog = await introspectCatalog(ctx.db.pool, { schemas: ['shop'] });
    const t = catalog.tables.find((x) => x.schema === schema && x.name === name);
    if (!t) throw new Error(`no table ${schema}.${name}`);
    return t;
  };

  beforeAll(async () => {
    await ctx.db.runScript(fixture('schema.sql', roles));
    model = await policyWith(roles);
    db = await openDatabase({ db: ctx.db.url });
  });
  afterAll(async () => {
    await db?.close();
  });

  it('plans every feature on a fresh database, in the documented order', async () => {
    const plan = await buildPlan(ctx.db.pool, model);
    expect(plan.missingTables).toEqual([]);
    expect(plan.undeclaredTables).toEqual([]);
    expect(plan.missingColumns).toEqual([]);
    expect(plan.viaWithoutKey).toEqual([]);
    expect(plan.missingRoles).toEqual([]);
    expect(plan.drift).toEqual([]);

    const phases = plan.statements.map((s) => s.phase);
    expect(phases.indexOf('concurrent')).toBeGreaterThan(phases.lastIndexOf('transaction'));
    // Per relation: every policy is created before RLS is enabled on it.
    for (const s of plan.statements.filter((x) => x.target.kind === 'table')) {
      const relation = targetTable(s);
      const enableAt = plan.statements.indexOf(s);
      const policies = plan.statements.filter((x) => x.target.kind === 'policy' && targetTable(x) === relation);
      expect(policies.length).toBeGreaterThan(0);
      for (const p of policies) expect(plan.statements.indexOf(p)).toBeLessThan(enableAt);
      expect(s.sql).toMatch(/^ALTER TABLE \S+\.(\w+|"[^"]+") ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;$/);
      expect(s.hazards).toEqual(['AUTHZ_NARROWS', 'TABLE_LOCK']);
    }
    // With RLS still off, creating a policy changes no one's access: no AUTHZ hazard, only the lock.
    for (const s of plan.statements.filter((x) => x.target.kind === 'policy')) expect(s.hazards).toEqual(['TABLE_LOCK']);

    const touched = new Set(plan.statements.map(targetTable));
    // exempt: left as it is
    expect(touched.has('shop.migrations')).toBe(false);
    // every partition, at every level and in another schema, is protected like its parent
    for (const p of ['shop.events_a', 'shop.events_b', 'shop.events_b_x', 'shop.events_b_y', 'archive.events_old', 'shop.notes_1', 'shop.notes_2']) {
      expect(plan.statements.some((s) => s.target.kind === 'table' && targetTable(s) === p)).toBe(true);
    }
    // a via predicate on a partition names the partition itself
    const notes2 = plan.statements.find((s) => s.target.kind === 'policy' && targetTable(s) === 'shop.notes_2' && s.target.name === 'rlsctl_tenant_guard')!;
    expect(notes2.sql).toContain('rls_parent.id = notes_2.account_id');

    const indexSql = plan.statements.filter((s) => s.phase === 'concurrent').map((s) => s.sql);
    // the primary key (tenant_id, id) leads with the tenant column: reused, no tenant index on orders
    expect(indexSql.filter((s) => / ON shop\.orders /.test(s))).toEqual([
      'CREATE INDEX CONCURRENTLY orders_tenant_id_placed_at_idx ON shop.orders (tenant_id, placed_at);',
      'CREATE UNIQUE INDEX CONCURRENTLY orders_number_per_tenant ON shop.orders (tenant_id, number);',
    ]);
    expect(indexSql).toContain('CREATE INDEX CONCURRENTLY accounts_tenant_id_idx ON shop.accounts (tenant_id);');
    // a partitioned table: ON ONLY, then each leaf concurrently, then attached (sub-partitions too)
    expect(indexSql).toContain('CREATE INDEX events_tenant_id_idx ON ONLY shop.events (tenant_id);');
    expect(indexSql).toContain('CREATE INDEX events_b_tenant_id_idx ON ONLY shop.events_b (tenant_id);');
    expect(indexSql).toContain('CREATE INDEX CONCURRENTLY events_old_tenant_id_idx ON archive.events_old (tenant_id);');
    expect(indexSql).toContain('ALTER INDEX shop.events_tenant_id_idx ATTACH PARTITION archive.events_old_tenant_id_idx;');
    expect(indexSql.indexOf('CREATE INDEX CONCURRENTLY events_b_x_tenant_id_idx ON shop.events_b_x (tenant_id);')).toBeLessThan(
      indexSql.indexOf('ALTER INDEX shop.events_b_tenant_id_idx ATTACH PARTITION shop.events_b_x_tenant_id_idx;'),
    );
    for (const s of plan.statements.filter((x) => x.sql.includes('CONCURRENTLY'))) expect(s.hazards).toEqual(['INDEX_BUILD']);
    // the accounts primary key (id) serves the via lookup of notes: no index for it
    expect(indexSql.some((s) => /ON shop\.accounts \(id\)/.test(s))).toBe(false);
  });

  it('converges: apply, read the catalog back, and the next plan is empty', async () => {
    const result = await applyPlan(db, await buildPlan(ctx.db.pool, model));
    expect(result.executed.length).toBeGreaterThan(0);
    const catalog = await introspectCatalog(ctx.db.pool, { schemas: ['shop'] });
    const get = (schema: string, name: string) => catalog.tables.find((t) => t.schema === schema && t.name === name)!;
    const names = (t: CatalogTable) => t.policies.map((p) => p.name);

    // tenant
    const accounts = get('shop', 'accounts');
    expect(accounts.rls).toEqual({ enabled: true, forced: true });
    expect(names(accounts)).toEqual(['rlsctl_tenant_access', 'rlsctl_tenant_guard']);
    expect(accounts.policies.find((p) => p.name === 'rlsctl_tenant_guard')).toMatchObject({ permissive: false, command: 'all', roles: [roles.app] });
    // commands subset
    expect(names(get('shop', 'audit_log'))).toEqual(['rlsctl_tenant_guard', 'rlsctl_tenant_insert', 'rlsctl_tenant_select']);
    // via
    expect(get('shop', 'order_lines').policies[0].using).toMatch(/FROM shop\.orders rls_parent/);
    // shared
    expect(get('shop', 'currencies').policies).toMatchObject([{ name: 'rlsctl_shared_read', command: 'select', using: 'true' }]);
    // exempt
    expect(get('shop', 'migrations')).toMatchObject({ rls: { enabled: false, forced: false }, policies: [] });
    // extra hand-written policy, to another role
    expect(get('shop', 'Odd Table').policies.find((p) => p.name === 'other_reads_small')).toMatchObject({ roles: [roles.other], using: '(v < 2)' });
    // partitions: the parent's flags and policies, a via predicate naming the partition
    for (const [schema, name] of [
      ['shop', 'events_a'],
      ['shop', 'events_b_x'],
      ['archive', 'events_old'],
    ]) {
      expect(get(schema, name).rls).toEqual({ enabled: true, forced: true });
      expect(names(get(schema, name))).toEqual(['rlsctl_tenant_access', 'rlsctl_tenant_guard']);
    }
    expect(get('shop', 'notes_2').policies[0].using).toContain('notes_2.account_id');
    // indexes: built, reused, declared (unique and named), partitioned and valid
    expect(get('shop', 'accounts').indexes.find((i) => i.name === 'accounts_tenant_id_idx')?.valid).toBe(true);
    expect(get('shop', 'orders').indexes.map((i) => i.name)).toEqual(['orders_number_per_tenant', 'orders_pkey', 'orders_tenant_id_placed_at_idx']);
    expect(get('shop', 'orders').indexes.find((i) => i.name === 'orders_number_per_tenant')).toMatchObject({ unique: true, valid: true });
    expect(get('shop', 'events').indexes).toMatchObject([{ name: 'events_tenant_id_idx', valid: true }]);
    expect(get('shop', 'events_b_y').indexes).toMatchObject([{ valid: true, attachedTo: { schema: 'shop', name: 'events_b_tenant_id_idx' } }]);
    expect(get('archive', 'events_old').indexes).toMatchObject([{ valid: true, attachedTo: { schema: 'shop', name: 'events_tenant_id_idx' } }]);

    const again = await buildPlan(ctx.db.pool, model);
    expect(again.statements).toEqual([]);
    expect(again.drift).toEqual([]);
    converged = await snapshot(ctx.db);
  });

  it('applies twice: the second apply changes nothing and the catalog is unchanged', async () => {
    const second = await applyPlan(db, await buildPlan(ctx.db.pool, model));
    expect(second.executed).toEqual([]);
    expect(await snapshot(ctx.db)).toEqual(converged);
  });

  it('plans while other sessions hold EXCLUSIVE locks on every table: it takes no lock that conflicts', async () => {
    const holder = await ctx.db.client();
    try {
      await holder.query('BEGIN');
      await holder.query(
        'LOCK TABLE shop.accounts, shop.orders, shop.order_lines, shop.audit_log, shop.currencies, shop."Odd Table", shop.events, shop.notes IN EXCLUSIVE MODE',
      );
      const plan = await buildPlan(ctx.db.pool, model);
      expect(plan.statements).toEqual([]);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
  });

  it("plans inside a caller's READ ONLY transaction (no temporary tables there): parse-tree comparison, the transaction left open", async () => {
    const client = await ctx.db.client();
    try {
      await client.query('BEGIN TRANSACTION READ ONLY');
      expect((await buildPlan(client, model)).statements).toEqual([]);
      // a real difference is still seen without the server's round trip
      const edited = await policyWith(roles, (y) => y.replace('"v   <   2 -- only the small ones"', '"v < 3"'));
      expect((await buildPlan(client, edited)).statements.map((s) => s.target)).toEqual([
        { kind: 'policy', schema: 'shop', table: 'Odd Table', name: 'other_reads_small' },
      ]);
      expect((await client.query('SELECT 1 AS still_open')).rows).toEqual([{ still_open: 1 }]);
      expect((await client.query("SELECT current_setting('transaction_read_only') AS ro")).rows[0].ro).toBe('on');
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
  });

  it('sees FORCE removed, policies changed by hand and an index dropped, and apply repairs them', async () => {
    await ctx.db.runScript(`
      ALTER TABLE shop.accounts NO FORCE ROW LEVEL SECURITY;
      ALTER POLICY rlsctl_tenant_access ON shop.orders USING (true);
      ALTER POLICY rlsctl_tenant_guard ON shop.notes_2 TO ${roles.app}, ${roles.other};
      DROP INDEX shop.accounts_tenant_id_idx;`);
    const plan = await buildPlan(ctx.db.pool, model);
    expect(plan.statements.map((s) => [s.sql, s.hazards])).toEqual([
      ['ALTER TABLE shop.accounts FORCE ROW LEVEL SECURITY;', ['AUTHZ_NARROWS', 'TABLE_LOCK']],
      [
        `ALTER POLICY rlsctl_tenant_guard ON shop.notes_2\n  TO ${roles.app};`,
        // a role taken off a restrictive policy is no longer restricted by it, but here that role has
        // no permissive policy on the table (it sees no row either way) and a member of both roles is
        // still restricted through the app role: the policies as a whole admit the same rows
        // (src/rls/compare-policy-sets.ts). The widening case is in plan-diff-agree.test.ts.
        ['TABLE_LOCK'],
      ],
      [
        "ALTER POLICY rlsctl_tenant_access ON shop.orders\n  USING (tenant_id = (SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid));",
        // it was USING (true): whatever replaces it can only narrow
        ['AUTHZ_NARROWS', 'TABLE_LOCK'],
      ],
      ['CREATE INDEX CONCURRENTLY accounts_tenant_id_idx ON shop.accounts (tenant_id);', ['INDEX_BUILD']],
    ]);
    await applyPlan(db, plan);
    expect((await buildPlan(ctx.db.pool, model)).statements).toEqual([]);
    expect(await snapshot(ctx.db)).toEqual(converged);
  });

  it('rebuilds an index left invalid by a failed CREATE INDEX CONCURRENTLY', async () => {
    await ctx.db.runScript(`
      DROP INDEX shop.orders_number_per_tenant;
      INSERT INTO shop.orders VALUES ('00000000-0000-4000-8000-00000000000a', 99, 1, now());`);
    await expect(ctx.db.query('CREATE UNIQUE INDEX CONCURRENTLY orders_number_per_tenant ON shop.orders (tenant_id, number)')).rejects.toThrow(
      /could not create unique index/,
    );
    expect((await table('shop', 'orders')).indexes.find((i) => i.name === 'orders_number_per_tenant')?.valid).toBe(false);
    await ctx.db.query('DELETE FROM shop.orders WHERE id = 99');
    const plan = await buildPlan(ctx.db.pool, model);
    expect(plan.statements.map((s) => s.sql)).toEqual([
      'DROP INDEX CONCURRENTLY IF EXISTS shop.orders_number_per_tenant;',
      'CREATE UNIQUE INDEX CONCURRENTLY orders_number_per_tenant ON shop.orders (tenant_id, number);',
    ]);
    expect(plan.statements.map((s) => s.hazards)).toEqual([['DROP'], ['INDEX_BUILD']]);
    await applyPlan(db, plan);
    expect((await table('shop', 'orders')).indexes.find((i) => i.name === 'orders_number_per_tenant')?.valid).toBe(true);
    expect(await snapshot(ctx.db)).toEqual(converged);
  });

  it('reports a policy added by hand as drift, keeps it without --prune and drops it with --prune', async () => {
    await ctx.db.query(`CREATE POLICY hand_made ON shop.accounts AS RESTRICTIVE FOR SELECT TO ${roles.other} USING (id > 0)`);
    const plan = await buildPlan(ctx.db.pool, model);
    expect(plan.statements).toEqual([]);
    expect(plan.drift).toEqual([
      {
        schema: 'shop',
        table: 'accounts',
        policy: 'hand_made',
        message: `policy hand_made on shop.accounts (restrictive, for select, to ${roles.other}) is not declared in the policy file; kept (apply --prune drops it)`,
      },
    ]);
    const pruned = await buildPlan(ctx.db.pool, model, { prune: true });
    // dropping a restrictive policy can only give access
    expect(pruned.statements.map((s) => [s.sql, s.hazards])).toEqual([['DROP POLICY hand_made ON shop.accounts;', ['AUTHZ_WIDENS', 'DROP', 'TABLE_LOCK']]]);
    await applyPlan(db, pruned);
    expect(await snapshot(ctx.db)).toEqual(converged);
  });

  it('a change of commands in the file drops the rlsctl policy it no longer asks for, without --prune', async () => {
    const selectOnly = await policyWith(roles, (y) => y.replace('commands: [select, insert]', 'commands: [select]'));
    const plan = await buildPlan(ctx.db.pool, selectOnly);
    expect(plan.statements.map((s) => [s.sql, s.hazards])).toEqual([
      ['DROP POLICY rlsctl_tenant_insert ON shop.audit_log;', ['AUTHZ_NARROWS', 'DROP', 'TABLE_LOCK']],
    ]);
    await applyPlan(db, plan);
    expect((await buildPlan(ctx.db.pool, selectOnly)).statements).toEqual([]);
    // and back: the policy is created again, which widens
    const back = await buildPlan(ctx.db.pool, model);
    expect(back.statements.map((s) => [s.target, s.hazards])).toEqual([
      [{ kind: 'policy', schema: 'shop', table: 'audit_log', name: 'rlsctl_tenant_insert' }, ['AUTHZ_WIDENS', 'TABLE_LOCK']],
    ]);
    await applyPlan(db, back);
    expect(await snapshot(ctx.db)).toEqual(converged);
  });

  it('alters a policy whose expression or roles changed in the file; replaces one whose command changed', async () => {
    const edited = await policyWith(roles, (y) => y.replace('"v   <   2 -- only the small ones"', '"v < 3"').replace('for: select', 'for: all'));
    const plan = await buildPlan(ctx.db.pool, edited);
    expect(plan.statements.map((s) => s.sql)).toEqual([
      `DROP POLICY other_reads_small ON shop."Odd Table";\nCREATE POLICY other_reads_small ON shop."Odd Table"\n  AS PERMISSIVE FOR ALL\n  TO ${roles.other}\n  USING (v < 3);`,
    ]);
    expect(plan.statements[0].hazards).toEqual(['AUTHZ_WIDENS', 'DROP', 'TABLE_LOCK']);
    const exprOnly = await policyWith(roles, (y) => y.replace('"v   <   2 -- only the small ones"', '"v < 3"'));
    const altered = (await buildPlan(ctx.db.pool, exprOnly)).statements;
    expect(altered.map((s) => s.sql)).toEqual([`ALTER POLICY other_reads_small ON shop."Odd Table"\n  USING (v < 3);`]);
    // (v < 2) to (v < 3): an expression change that is not from `true` may widen
    expect(altered[0].hazards).toEqual(['AUTHZ_WIDENS', 'TABLE_LOCK']);
    // the same expression written differently is the same policy: nothing to do
    const respaced = await policyWith(roles, (y) => y.replace('"v   <   2 -- only the small ones"', '"(v<2)"'));
    expect((await buildPlan(ctx.db.pool, respaced)).statements).toEqual([]);
  });

  it('compares roles as sets', async () => {
    const two = (order: string[]) => policyWith(roles, (y) => y.replace(`app: ['${roles.app}']`, `app: [${order.map((r) => `'${r}'`).join(', ')}]`));
    const plan = await buildPlan(ctx.db.pool, await two([roles.app, roles.other]));
    expect(plan.statements.length).toBeGreaterThan(0);
    expect(new Set(plan.statements.map((s) => s.sql.split('\n')[0].split(' ')[0]))).toEqual(new Set(['ALTER']));
    await applyPlan(db, plan);
    expect((await buildPlan(ctx.db.pool, await two([roles.other, roles.app]))).statements).toEqual([]);
    await applyPlan(db, await buildPlan(ctx.db.pool, model));
    expect(await snapshot(ctx.db)).toEqual(converged);
  });

  it('rebuilds a partitioned index: ON ONLY, each leaf concurrently, attached; a leaf index of the right shape is attached, not built', async () => {
    // Dropping the parent's index drops every partition's index attached to it.
    await ctx.db.runScript('DROP INDEX shop.events_tenant_id_idx; CREATE INDEX mine ON shop.events_a (tenant_id);');
    const plan = await buildPlan(ctx.db.pool, model);
    expect(plan.statements.map((s) => s.sql)).toEqual([
      'CREATE INDEX events_tenant_id_idx ON ONLY shop.events (tenant_id);',
      // partitions in catalog order: archive.events_old, shop.events_a, shop.events_b
      'CREATE INDEX CONCURRENTLY events_old_tenant_id_idx ON archive.events_old (tenant_id);',
      'ALTER INDEX shop.events_tenant_id_idx ATTACH PARTITION archive.events_old_tenant_id_idx;',
      'ALTER INDEX shop.events_tenant_id_idx ATTACH PARTITION shop.mine;',
      'CREATE INDEX events_b_tenant_id_idx ON ONLY shop.events_b (tenant_id);',
      'CREATE INDEX CONCURRENTLY events_b_x_tenant_id_idx ON shop.events_b_x (tenant_id);',
      'ALTER INDEX shop.events_b_tenant_id_idx ATTACH PARTITION shop.events_b_x_tenant_id_idx;',
      'CREATE INDEX CONCURRENTLY events_b_y_tenant_id_idx ON shop.events_b_y (tenant_id);',
      'ALTER INDEX shop.events_b_tenant_id_idx ATTACH PARTITION shop.events_b_y_tenant_id_idx;',
      'ALTER INDEX shop.events_tenant_id_idx ATTACH PARTITION shop.events_b_tenant_id_idx;',
    ]);
    await applyPlan(db, plan);
    expect((await table('shop', 'events')).indexes).toMatchObject([{ name: 'events_tenant_id_idx', valid: true }]);
    expect((await buildPlan(ctx.db.pool, model)).statements).toEqual([]);
  });

  it('protects a partition added later; PostgreSQL gives it the partitioned index by itself', async () => {
    await ctx.db.query('CREATE TABLE shop.events_c PARTITION OF shop.events FOR VALUES FROM (200) TO (300)');
    const plan = await buildPlan(ctx.db.pool, model);
    expect(plan.statements.map((s) => (s.target.kind === 'table' ? 'rls' : s.target.kind) + ' ' + targetTable(s))).toEqual([
      'policy shop.events_c',
      'policy shop.events_c',
      'rls shop.events_c',
    ]);
    await applyPlan(db, plan);
    expect((await buildPlan(ctx.db.pool, model)).statements).toEqual([]);
    await ctx.db.query('DROP TABLE shop.events_c');
  });

  it('returns missing and undeclared tables, missing columns and roles, and plans the rest', async () => {
    await ctx.db.query('CREATE TABLE shop.stray (id int)');
    try {
      const odd = await policyWith(roles, (y) =>
        y
          .replace('      accounts: tenant', '      accounts: { column: org }\n      ghost: tenant')
          .replace(`to: ['${roles.other}']`, `to: ['${roles.other}', 'nobody_${roles.app}']`),
      );
      const plan = await buildPlan(ctx.db.pool, odd);
      expect(plan.missingTables).toEqual(['shop.ghost']);
      expect(plan.undeclaredTables).toEqual(['shop.stray']);
      expect(plan.missingColumns).toEqual(['shop.accounts.org']);
      expect(plan.missingRoles).toEqual([`nobody_${roles.app}`]);
      // the table whose column is missing is left alone; the others are planned as usual
      expect(plan.statements.some((s) => targetTable(s) === 'shop.accounts')).toBe(false);
      expect(plan.statements.some((s) => targetTable(s) === 'shop.Odd Table')).toBe(true);
    } finally {
      await ctx.db.query('DROP TABLE shop.stray');
    }
  });
});
