import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, it, beforeAll } from 'vitest';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { compileScript } from '../../src/compile/render-sql.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { ROOT } from '../helpers/cli.js';
import { runPsql } from '../helpers/psql.js';
import {
  asTenant,
  expectHandPolicyCannotWiden,
  expectNothingAfterTenantEnded,
  expectOwnerSubjectBypassNot,
  explainAsTenant,
  type TenantModelUnderTest,
} from '../helpers/tenant-behaviours.js';

/**
 * The six required behaviours of the policy-file spec, on the SQL that
 * `rlsctl compile` writes, run as the app role on a real server.
 */

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';

function fixture(name: string, roles: Record<string, string>): string {
  return readFileSync(path.join(ROOT, 'fixtures/compile', name), 'utf8').replace(/\{\{(\w+)\}\}/g, (_, k: string) => roles[k]);
}

/** The compiled script as users run it: psql -v ON_ERROR_STOP=1 -f FILE. */
async function runCompiled(url: string, script: string): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rlsctl-compiled-'));
  try {
    writeFileSync(path.join(dir, 'rls.sql'), script);
    const r = await runPsql(url, ['-f', path.join(dir, 'rls.sql')]);
    expect(r.code, r.stderr).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describeEachServer('compiled policies', (ctx) => {
  const roles = { app: uniqueName('app'), owner: uniqueName('owner'), bypass: uniqueName('bypass'), other: uniqueName('other') };
  let script = '';
  const model = (): TenantModelUnderTest => ({ pool: ctx.db.pool, setting: 'app.tenant_id', value: (t) => t, roles, A, B });
  const as = (role: string, tenant: string | null, sql: string, params: unknown[] = []) => asTenant(model(), role, tenant, sql, params);

  async function catalogSnapshot(): Promise<unknown> {
    const { rows } = await ctx.db.query(`
      SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
             (SELECT json_agg(json_build_array(p.polname, p.polpermissive, p.polcmd, p.polroles::regrole[]::text[],
                      pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)) ORDER BY p.polname)
                FROM pg_policy p WHERE p.polrelid = c.oid) AS policies,
             (SELECT json_agg(pg_get_indexdef(i.indexrelid) ORDER BY 1) FROM pg_index i WHERE i.indrelid = c.oid) AS indexes
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'app' AND c.relkind IN ('r', 'p')
       ORDER BY c.relname`);
    return rows;
  }

  beforeAll(async () => {
    await ctx.db.runScript(fixture('schema.sql', roles));
    const model = await parsePolicy([{ file: 'policy.yaml', text: fixture('policy.yaml', roles) }]);
    script = compileScript(model);
    await runCompiled(ctx.db.url, script);
  });

  it('runs again and again, leaving the same catalog each time', async () => {
    const first = await catalogSnapshot();
    expect(JSON.stringify(first)).toContain('rlsctl_tenant_guard');
    for (let run = 0; run < 2; run++) await runCompiled(ctx.db.url, script);
    expect(await catalogSnapshot()).toEqual(first);
  });

  it('1. with a tenant set, a tenant sees and changes only its own rows', async () => {
    const { rows } = await as(roles.app, A, 'SELECT id FROM app.items ORDER BY id');
    expect(rows.map((r) => r.id)).toEqual([1, 2]);
    const updated = await as(roles.app, A, "UPDATE app.items SET name = 'x'");
    expect(updated.rowCount).toBe(2);
    const deleted = await as(roles.app, A, 'DELETE FROM app.items WHERE id = 3');
    expect(deleted.rowCount).toBe(0);
    const lines = await as(roles.app, A, 'SELECT id FROM app.lines ORDER BY id');
    expect(lines.rows.map((r) => r.id)).toEqual([1]);
    const odd = await as(roles.app, B, 'SELECT v FROM app."Odd Name"');
    expect(odd.rows).toEqual([{ v: 2 }]);
  });

  it('2. with no tenant set, every query returns zero rows and raises no error; writes are rejected', async () => {
    for (const table of ['app.items', 'app.lines', 'app.logs', 'app.audit', 'app."Odd Name"']) {
      expect((await as(roles.app, null, `SELECT * FROM ${table}`)).rowCount).toBe(0);
    }
    await expect(as(roles.app, null, `INSERT INTO app.items VALUES ('${A}', 10, 'n')`)).rejects.toThrow(/row-level security/);
    expect((await as(roles.app, null, "UPDATE app.items SET name = 'x'")).rowCount).toBe(0);
  });

  it('2. after a transaction-local tenant ended, the empty setting returns zero rows, no error', async () => {
    await expectNothingAfterTenantEnded(model(), ['app.items', 'app.lines', 'app.logs', 'app.logs_a', 'app.audit']);
  });

  it('3. an INSERT or UPDATE that would create or move a row into another tenant is rejected', async () => {
    await expect(as(roles.app, A, `INSERT INTO app.items VALUES ('${B}', 11, 'n')`)).rejects.toThrow(/row-level security/);
    await expect(as(roles.app, A, `UPDATE app.items SET tenant_id = '${B}' WHERE id = 1`)).rejects.toThrow(/row-level security/);
    await expect(as(roles.app, A, 'INSERT INTO app.lines VALUES (12, 3, 1)')).rejects.toThrow(/row-level security/);
    expect((await as(roles.app, A, `INSERT INTO app.items VALUES ('${A}', 13, 'n')`)).rowCount).toBe(1);
    // audit allows select and insert only: an update touches nothing
    expect((await as(roles.app, A, "UPDATE app.audit SET what = 'z'")).rowCount).toBe(0);
  });

  it('4. a permissive USING (true) policy added by hand cannot widen access across tenants', async () => {
    await expectHandPolicyCannotWiden(model());
  });

  it('5. the tenant lookup is an InitPlan and the tenant predicate an index condition', async () => {
    const plan = await explainAsTenant(model(), 'SELECT * FROM app.items');
    expect(plan).toMatch(/"Index Cond":"\(tenant_id = \(?\$0\)?\)"|"Index Cond":"\(tenant_id = \(InitPlan 1\)\.col1\)"/);
    expect(plan).toContain('"Parent Relationship":"InitPlan"');
    expect(plan).not.toContain('"Parent Relationship":"SubPlan"');
  });

  it('6. the owner is subject to the policies; superusers and declared bypass roles are not', async () => {
    await expectOwnerSubjectBypassNot(model());
  });

  it('protects partitions read directly, like their parent', async () => {
    expect((await as(roles.app, A, 'SELECT msg FROM app.logs_a')).rows).toEqual([{ msg: 'a' }]);
    expect((await as(roles.app, null, 'SELECT * FROM app.logs_b')).rowCount).toBe(0);
    expect((await as(roles.app, A, 'SELECT * FROM app.logs')).rowCount).toBe(2);
    const { rows } = await ctx.db.query(
      "SELECT relname, relrowsecurity, relforcerowsecurity, (SELECT count(*) FROM pg_policy WHERE polrelid = c.oid)::int AS n FROM pg_class c WHERE relname IN ('logs_a', 'logs_b') ORDER BY relname",
    );
    expect(rows).toEqual([
      { relname: 'logs_a', relrowsecurity: true, relforcerowsecurity: true, n: 2 },
      { relname: 'logs_b', relrowsecurity: true, relforcerowsecurity: true, n: 2 },
    ]);
  });

  it('shared tables: every tenant reads, no app role writes', async () => {
    expect((await as(roles.app, A, 'SELECT * FROM app.currencies')).rowCount).toBe(2);
    expect((await as(roles.app, null, 'SELECT * FROM app.currencies')).rowCount).toBe(2);
    await expect(as(roles.app, A, "INSERT INTO app.currencies VALUES ('GBP')")).rejects.toThrow(/row-level security/);
  });

  it('hand-written extra policies apply to their roles, with comments in the expression', async () => {
    expect((await as(roles.other, null, 'SELECT v FROM app."Odd Name"')).rows).toEqual([{ v: 1 }]);
  });

  it('builds the tenant indexes; the partitioned table gets its index ON ONLY, each partition its own, attached, so the parent index is valid', async () => {
    const { rows } = await ctx.db.query("SELECT indexname FROM pg_indexes WHERE schemaname = 'app' ORDER BY 1");
    expect(rows.map((r) => r.indexname)).toEqual(expect.arrayContaining(['items_tenant_id_name_idx', 'lines_item_id_idx', 'Odd Name_Tenant Col_idx']));
    const { rows: logs } = await ctx.db.query<{ valid: boolean; partitions: number }>(
      `SELECT i.indisvalid AS valid, (SELECT count(*)::int FROM pg_inherits h WHERE h.inhparent = i.indexrelid) AS partitions
         FROM pg_index i WHERE i.indrelid = 'app.logs'::regclass`,
    );
    expect(logs).toEqual([{ valid: true, partitions: (await ctx.db.query(`SELECT 1 FROM pg_inherits WHERE inhparent = 'app.logs'::regclass`)).rowCount }]);
  });
});
