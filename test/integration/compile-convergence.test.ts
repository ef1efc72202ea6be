import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { compileScript } from '../../src/compile/render-sql.js';
import { loadParser } from '../../src/policy/expression.js';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, describeEachServer, uniqueName, type TestDatabase } from '../helpers/db.js';

/**
 * The compiled script converges as `apply` does (issue 14): policies rlsctl
 * generated that the file no longer produces are dropped, on the table and on
 * its partitions, so narrowing a table to `[select]` or turning it shared takes
 * the write access away whichever way the file reaches the database.
 */

const SCHEMA = `
CREATE SCHEMA app;
CREATE TABLE app.notes (id int PRIMARY KEY, tenant_id text NOT NULL);
CREATE TABLE app.lookup (id int PRIMARY KEY, tenant_id text NOT NULL);
CREATE TABLE app.events (id int, tenant_id text NOT NULL) PARTITION BY LIST (tenant_id);
CREATE TABLE app.events_a PARTITION OF app.events FOR VALUES IN ('a');
CREATE TABLE app.kept (id int PRIMARY KEY, tenant_id text NOT NULL);
`;

const POLICIES = `SELECT polrelid::regclass::text || ' ' || polname || ' ' || polcmd::text || ' ' || polpermissive::text
       || ' ' || polroles::regrole[]::text || ' using=' || coalesce(pg_get_expr(polqual, polrelid), '-')
       || ' check=' || coalesce(pg_get_expr(polwithcheck, polrelid), '-') AS line
  FROM pg_policy ORDER BY 1`;

function file(app: string, tables: string): string {
  return `version: 1\ntenant: { setting: app.tenant_id, type: text, column: tenant_id }\nroles: { app: [${app}] }\nschemas:\n  app:\n    tables:\n${tables}`;
}

describeEachServer('compile converges as apply does', (ctx) => {
  const app = uniqueName('conv_app');
  const A = () => file(app, `      notes: tenant\n      lookup: tenant\n      events: tenant\n      kept: tenant\n`);
  const B = () => file(app, `      notes: { commands: [select] }\n      lookup: shared\n      events: { commands: [select, insert] }\n      kept: tenant\n`);
  let tmp: string;
  let applied: TestDatabase;

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'rlsctl-conv-'));
    await loadParser();
    await ctx.db.query(`CREATE ROLE ${app}`);
    applied = await createTestDatabase(ctx.server, 'conv');
    for (const db of [ctx.db, applied]) await db.runScript(SCHEMA);
  });
  afterAll(async () => {
    await applied?.drop();
    rmSync(tmp, { recursive: true, force: true });
  });

  /** The compiled script, statement by statement (the transactional kind: this runner is not psql, see compile-psql.test.ts). */
  async function runCompiled(db: TestDatabase, text: string): Promise<void> {
    await db.runScript(compileScript(await parsePolicy([{ file: 'p.yaml', text }]), { transactional: true }));
  }

  async function policies(db: TestDatabase): Promise<string[]> {
    return (await db.query<{ line: string }>(POLICIES)).rows.map((r) => r.line);
  }

  it('the script of B after the script of A leaves exactly the policies apply of B after apply of A leaves', async () => {
    for (const [text, name] of [
      [A(), 'a.yaml'],
      [B(), 'b.yaml'],
    ] as const) {
      await runCompiled(ctx.db, text);
      writeFileSync(path.join(tmp, name), text);
      const r = await runCli(['apply', '--db', applied.url, '--policies', path.join(tmp, name)]);
      expect(r.code, r.stderr).toBe(0);
    }
    const compiled = await policies(ctx.db);
    expect(compiled).toEqual(await policies(applied));
    // What that means: the narrowed and the shared tables lost the old write access, the partition too.
    expect(compiled.filter((l) => / rlsctl_tenant_access /.test(l))).toEqual(compiled.filter((l) => /^app\.kept /.test(l) && / rlsctl_tenant_access /.test(l)));
    expect(compiled.some((l) => l.startsWith('app.notes rlsctl_tenant_select r true'))).toBe(true);
    expect(compiled.filter((l) => l.startsWith('app.lookup '))).toEqual([expect.stringMatching(/^app\.lookup rlsctl_shared_read r true /)]);
    expect(compiled.filter((l) => l.startsWith('app.events_a ')).map((l) => l.split(' ')[1])).toEqual([
      'rlsctl_tenant_guard',
      'rlsctl_tenant_insert',
      'rlsctl_tenant_select',
    ]);
  });

  it('running the script of B again changes nothing, and plan of B finds nothing to do', async () => {
    const before = await policies(ctx.db);
    await runCompiled(ctx.db, B());
    expect(await policies(ctx.db)).toEqual(before);
    const r = await runCli(['plan', '--check', '--db', applied.url, '--policies', path.join(tmp, 'b.yaml')]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });
});
