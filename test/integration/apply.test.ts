import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parsePolicy } from '../../src/policy/load-policy.js';
import type { PolicyModel } from '../../src/policy/model.js';
import { buildPlan } from '../../src/plan/build-plan.js';
import { applyPlan } from '../../src/apply/apply-plan.js';
import { convergeDatabase } from '../../src/apply/converge.js';
import { openDatabase, type Database } from '../../src/db/connection.js';
import { DatabaseError } from '../../src/errors.js';
import { createTestDatabase, describeEachServer, uniqueName, type TestDatabase } from '../helpers/db.js';
import { ROOT } from '../helpers/cli.js';

/**
 * apply against real PostgreSQL: all or nothing, under a lock that makes two
 * applies one, with timeouts, and with the privileges it needs named.
 */

function fixture(name: string, roles: Record<string, string>): string {
  return readFileSync(path.join(ROOT, 'fixtures/live', name), 'utf8').replace(/\{\{(\w+)\}\}/g, (_, k: string) => roles[k]);
}

async function policyWith(roles: Record<string, string>, edit: (yaml: string) => string = (y) => y): Promise<PolicyModel> {
  return parsePolicy([{ file: 'policy.yaml', text: edit(fixture('policy.yaml', roles)) }]);
}

/**
 * RLS flags, policies (roles as placeholders, so two databases with
 * different role names compare) and indexes, with plain catalog SQL.
 */
async function snapshot(db: TestDatabase, roles: Record<string, string>): Promise<string> {
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
  let text = JSON.stringify(rows);
  for (const [k, v] of Object.entries(roles)) text = text.replaceAll(v, `{{${k}}}`);
  return text;
}

describeEachServer('apply', (ctx) => {
  const roles = { app: uniqueName('app'), owner: uniqueName('owner'), other: uniqueName('other') };
  const weak = uniqueName('weak');
  let model: PolicyModel;
  let db: Database;
  let before: string;

  beforeAll(async () => {
    await ctx.db.runScript(fixture('schema.sql', roles));
    await ctx.db.runScript(`
      CREATE ROLE ${weak} LOGIN PASSWORD 'secret';
      GRANT USAGE ON SCHEMA shop, archive TO ${weak};
      GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA shop, archive TO ${weak};`);
    model = await policyWith(roles);
    db = await openDatabase({ db: ctx.db.url });
    before = await snapshot(ctx.db, roles);
  });
  afterAll(async () => {
    await db?.close();
  });

  it('a statement that fails in the middle of the transaction leaves the catalog exactly as before', async () => {
    // shop.orders sorts last: its extra policy fails after every other table's statements ran.
    const failing = await policyWith(roles, (y) =>
      y.replace(
        '          - { columns: [number], unique: true, name: orders_number_per_tenant }',
        "          - { columns: [number], unique: true, name: orders_number_per_tenant }\n        policies:\n          - { name: broken, to: ['" +
          roles.other +
          "'], for: select, using: 'no_such_function_rlsctl() > 0' }",
      ),
    );
    const plan = await buildPlan(ctx.db.pool, failing);
    const at = plan.statements.findIndex((s) => s.sql.includes('no_such_function_rlsctl'));
    expect(at).toBeGreaterThan(plan.statements.filter((s) => s.phase === 'transaction').length / 2);
    const error = await applyPlan(db, plan).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseError);
    expect((error as Error).message).toMatch(/create policy broken on shop\.orders.*no_such_function_rlsctl.*nothing was changed/s);
    expect(await snapshot(ctx.db, roles)).toBe(before);
  });

  it('as a role that does not own the tables: a DatabaseError naming the privilege and the tables, nothing changed', async () => {
    const asWeak = await openDatabase({ db: ctx.db.urlAs(weak) });
    try {
      // Planning needs no ownership (a read-only catalog scan and temporary tables).
      const plan = await buildPlan(asWeak.pool, model);
      expect(plan.statements.length).toBeGreaterThan(0);
      const error = await applyPlan(asWeak, plan).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DatabaseError);
      const message = (error as Error).message;
      expect(message).toContain(`role ${weak} must own the tables it changes`);
      expect(message).toContain(`shop.accounts (owner ${roles.owner})`);
      expect(message).toContain('archive.events_old');
      expect(message).toContain('nothing was changed');
    } finally {
      await asWeak.close();
    }
    expect(await snapshot(ctx.db, roles)).toBe(before);
  });

  it('does not queue behind a long transaction: lock_timeout ends the wait, nothing changed', async () => {
    const holder = await ctx.db.client();
    try {
      await holder.query('BEGIN');
      // ACCESS SHARE, what any long-running SELECT holds: it blocks ALTER TABLE and CREATE POLICY.
      await holder.query('SELECT count(*) FROM shop.currencies');
      const error = await applyPlan(db, await buildPlan(ctx.db.pool, model), { lockTimeoutMs: 200 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DatabaseError);
      expect((error as Error).message).toMatch(/shop\.currencies.*lock timeout.*nothing was changed/s);
      expect((error as DatabaseError).hint).toMatch(/another transaction holds a lock/);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    expect(await snapshot(ctx.db, roles)).toBe(before);
  });

  it('two applies started at once: both succeed, the second plans again under the lock, the result is one apply', async () => {
    const [planA, planB] = await Promise.all([buildPlan(ctx.db.pool, model), buildPlan(ctx.db.pool, model)]);
    expect(planB.statements).toEqual(planA.statements);
    const results = await Promise.all([applyPlan(db, planA), applyPlan(db, planB)]);
    const [first, second] = results[0].replanned ? [results[1], results[0]] : [results[0], results[1]];
    expect(first.replanned).toBe(false);
    expect(first.executed.length).toBe(planA.statements.length);
    // The one that waited found the work done: nothing left to run.
    expect(second.replanned).toBe(true);
    expect(second.executed).toEqual([]);
    expect((await buildPlan(ctx.db.pool, model)).statements).toEqual([]);

    // The same catalog as one apply on a twin database.
    const twin = await createTestDatabase(ctx.server);
    const twinRoles = { app: uniqueName('app'), owner: uniqueName('owner'), other: uniqueName('other') };
    const twinDb = await openDatabase({ db: twin.url });
    try {
      await twin.runScript(fixture('schema.sql', twinRoles));
      await applyPlan(twinDb, await buildPlan(twin.pool, await policyWith(twinRoles)));
      expect(await snapshot(ctx.db, roles)).toBe(await snapshot(twin, twinRoles));
    } finally {
      await twinDb.close();
      await twin.drop();
    }
  });

  it('convergeDatabase (the embedded default of audit, explain, verify) is plan + apply', async () => {
    await ctx.db.query('ALTER TABLE shop.accounts NO FORCE ROW LEVEL SECURITY');
    expect((await buildPlan(ctx.db.pool, model)).statements.map((s) => s.sql)).toEqual(['ALTER TABLE shop.accounts FORCE ROW LEVEL SECURITY;']);
    await convergeDatabase(db, model);
    expect((await buildPlan(ctx.db.pool, model)).statements).toEqual([]);
  });
});
