import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, describeEachServer, uniqueName, type TestDatabase } from '../helpers/db.js';
import { runPsql as psql } from '../helpers/psql.js';

/**
 * The compiled script where users run it (issue 16 item 4): real psql, with
 * ON_ERROR_STOP, twice, on tenant tables partitioned by range, list, hash and
 * on two levels, beside a plain table and names with quotes and dollar signs.
 * psql must be installed (the psql client is part of the machine image CI
 * runs on): a missing psql fails these tests, it does not skip them.
 */

const SCHEMA = `
CREATE SCHEMA app;
CREATE TABLE app.plain (id int PRIMARY KEY, tenant_id text NOT NULL);
CREATE TABLE app.ranged (id int, tenant_id text NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE app.ranged_2025 PARTITION OF app.ranged FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE app.ranged_2026 PARTITION OF app.ranged FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE app.listed (id int, tenant_id text NOT NULL) PARTITION BY LIST (tenant_id);
CREATE TABLE app.listed_a PARTITION OF app.listed FOR VALUES IN ('a');
CREATE TABLE app.listed_rest PARTITION OF app.listed DEFAULT;
-- An index of the right shape a partition already has is attached, not built beside (as apply does).
CREATE INDEX listed_a_mine ON app.listed_a (tenant_id);
CREATE TABLE app.hashed (id int, tenant_id text NOT NULL) PARTITION BY HASH (id);
CREATE TABLE app.hashed_0 PARTITION OF app.hashed FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE app.hashed_1 PARTITION OF app.hashed FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE TABLE app.nested (id int, tenant_id text NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE app.nested_2026 PARTITION OF app.nested FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') PARTITION BY LIST (tenant_id);
CREATE TABLE app.nested_2026_a PARTITION OF app.nested_2026 FOR VALUES IN ('a');
CREATE TABLE app.nested_2026_rest PARTITION OF app.nested_2026 DEFAULT;
CREATE TABLE app.nested_2027 PARTITION OF app.nested FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
CREATE TABLE app."o'd""d$x$" (id int, tenant_id text NOT NULL) PARTITION BY LIST (tenant_id);
CREATE TABLE app."o'd""d$x$_a" PARTITION OF app."o'd""d$x$" FOR VALUES IN ('a');
CREATE TABLE app."$$q'$" (id int PRIMARY KEY, tenant_id text NOT NULL);
`;

/** What the script decides: RLS flags, policies and indexes (with validity and parent index) of every relation of app. */
const CATALOG = `
SELECT c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity,
       (SELECT json_agg(json_build_array(p.polname, p.polcmd, p.polpermissive, pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)) ORDER BY p.polname)
          FROM pg_policy p WHERE p.polrelid = c.oid) AS policies,
       (SELECT json_agg(json_build_array(pg_get_indexdef(i.indexrelid), i.indisvalid, i.indisready,
                 (SELECT h.inhparent::regclass::text FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)) ORDER BY 1)
          FROM pg_index i WHERE i.indrelid = c.oid) AS indexes
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'app' AND c.relkind IN ('r', 'p')
 ORDER BY c.relname`;

describeEachServer('compile, run by real psql -v ON_ERROR_STOP=1 on partitioned tenant tables', (ctx) => {
  const app = uniqueName('psql_app');
  let tmp: string;
  let policy: string;
  let transactionalDb: TestDatabase;

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'rlsctl-psql-'));
    await ctx.db.query(`CREATE ROLE ${app}`);
    transactionalDb = await createTestDatabase(ctx.server, 'psqltx');
    for (const db of [ctx.db, transactionalDb]) await db.runScript(SCHEMA);
    policy = path.join(tmp, 'policy.yaml');
    const tables = ['plain', 'ranged', 'listed', 'hashed', 'nested', `"o'd\\"d$x$"`, `"$$q'$"`].map((t) => `      ${t}: tenant\n`).join('');
    writeFileSync(
      policy,
      `version: 1\ntenant: { setting: app.tenant_id, type: text, column: tenant_id }\nroles: { app: [${app}] }\nschemas:\n  app:\n    tables:\n${tables}`,
    );
  });
  afterAll(async () => {
    await transactionalDb?.drop();
    rmSync(tmp, { recursive: true, force: true });
  });

  /** Every relation of app, partitions of every level included: RLS forced, the tenant policies, a valid index on tenant_id. */
  function expectProtected(rows: unknown[]): void {
    expect(rows.length).toBe(18);
    for (const row of rows as Array<{
      relname: string;
      relrowsecurity: boolean;
      relforcerowsecurity: boolean;
      policies: unknown[] | null;
      indexes: Array<[string, boolean, boolean, string | null]> | null;
    }>) {
      expect([row.relname, row.relrowsecurity, row.relforcerowsecurity]).toEqual([row.relname, true, true]);
      expect(JSON.stringify(row.policies)).toContain('rlsctl_tenant_guard');
      const tenantIndexes = (row.indexes ?? []).filter(([def]) => def.endsWith(' (tenant_id)'));
      expect(tenantIndexes.length, `${row.relname}: ${JSON.stringify(row.indexes)}`).toBe(1);
      expect(tenantIndexes[0].slice(1, 3), row.relname).toEqual([true, true]);
    }
  }

  async function catalog(db: TestDatabase): Promise<unknown[]> {
    return (await db.query(CATALOG)).rows;
  }

  it('compile: psql -v ON_ERROR_STOP=1 -f runs it twice, the same catalog, every index valid, and plan --check finds nothing to do', async () => {
    const out = path.join(tmp, 'concurrent.sql');
    const compiled = await runCli(['compile', '--policies', policy, '-o', out]);
    expect(compiled.code, compiled.stderr).toBe(0);
    const script = readFileSync(out, 'utf8');
    expect(script.split('\n')[1]).toMatch(/^-- Concurrent index builds: run it with psql/);
    // -e: psql prints every statement it sends, those \gexec runs included.
    const first = await psql(ctx.db.url, ['-e', '-f', out]);
    expect(first.code, first.stderr).toBe(0);
    const after1 = await catalog(ctx.db);
    expectProtected(after1);
    // Every leaf partition's index was built concurrently, on its own; the one listed_a had is attached, not built again.
    const built = first.stdout.split('\n').filter((l) => l.startsWith('CREATE INDEX CONCURRENTLY'));
    expect(built.sort()).toEqual(
      ['plain', 'ranged_2025', 'ranged_2026', 'listed_rest', 'hashed_0', 'hashed_1', 'nested_2026_a', 'nested_2026_rest', 'nested_2027', `"o'd""d$x$_a"`]
        .map((t) => `CREATE INDEX CONCURRENTLY ${t === 'plain' ? 'IF NOT EXISTS plain_tenant_id_idx ' : ''}ON app.${t} (tenant_id);`)
        .concat(`CREATE INDEX CONCURRENTLY IF NOT EXISTS "$$q'$_tenant_id_idx" ON app."$$q'$" (tenant_id);`)
        .sort(),
    );
    const second = await psql(ctx.db.url, ['-f', out]);
    expect(second.code, second.stderr).toBe(0);
    expect(await catalog(ctx.db)).toEqual(after1);
    const plan = await runCli(['plan', '--check', '--db', ctx.db.url, '--policies', policy]);
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
  });

  it('hostile names in the index section: a tenant column with %, quotes and dollars on a two-level partitioned table', async () => {
    const db = await createTestDatabase(ctx.server, 'psqlhostile');
    try {
      const column = `te%s'"n$$x$%1$I`;
      const col = `"${column.replace(/"/g, '""')}"`;
      await db.runScript(`
        CREATE SCHEMA "s$$'";
        CREATE TABLE "s$$'"."p%I" (id int, ${col} text NOT NULL, at int NOT NULL) PARTITION BY RANGE (at);
        CREATE TABLE "s$$'"."p%I_1" PARTITION OF "s$$'"."p%I" FOR VALUES FROM (0) TO (10) PARTITION BY LIST (${col});
        CREATE TABLE "s$$'"."p%I_1a" PARTITION OF "s$$'"."p%I_1" DEFAULT;
        CREATE TABLE "s$$'"."p%I_2" PARTITION OF "s$$'"."p%I" FOR VALUES FROM (10) TO (20);
      `);
      const file = path.join(tmp, 'hostile.yaml');
      writeFileSync(
        file,
        `version: 1\ntenant: { setting: app.tenant_id, type: text }\nroles: { app: [${app}] }\nschemas:\n  "s$$'":\n    tables:\n      "p%I": { column: ${JSON.stringify(column)} }\n`,
      );
      const out = path.join(tmp, 'hostile.sql');
      const compiled = await runCli(['compile', '--policies', file, '-o', out]);
      expect(compiled.code, compiled.stderr).toBe(0);
      for (let run = 0; run < 2; run++) {
        const r = await psql(db.url, ['-f', out]);
        expect(r.code, r.stderr).toBe(0);
      }
      const { rows } = await db.query<{ rel: string; valid: boolean; def: string; parent: string | null }>(
        `SELECT i.indrelid::regclass::text AS rel, i.indisvalid AS valid, pg_get_indexdef(i.indexrelid) AS def,
                (SELECT h.inhparent::regclass::text FROM pg_inherits h WHERE h.inhrelid = i.indexrelid) AS parent
           FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 ORDER BY 1`,
        ["s$$'"],
      );
      expect(rows.map((r) => [r.rel, r.valid, r.def.endsWith(`(${col})`)])).toEqual(
        [`"s$$'"."p%I"`, `"s$$'"."p%I_1"`, `"s$$'"."p%I_1a"`, `"s$$'"."p%I_2"`].map((rel) => [rel, true, true]),
      );
      expect(rows.filter((r) => r.parent !== null)).toHaveLength(3);
      const plan = await runCli(['plan', '--check', '--db', db.url, '--policies', file]);
      expect(plan.code, plan.stdout + plan.stderr).toBe(0);
    } finally {
      await db.drop();
    }
  });

  it('compile --transactional: no CONCURRENTLY, no BEGIN/COMMIT; psql -1 runs it twice, the same catalog, and plan --check finds nothing to do', async () => {
    const out = path.join(tmp, 'tx.sql');
    const compiled = await runCli(['compile', '--transactional', '--policies', policy, '-o', out]);
    expect(compiled.code, compiled.stderr).toBe(0);
    const script = readFileSync(out, 'utf8');
    expect(script).not.toMatch(/CONCURRENTLY/i);
    // A transaction statement of its own (the DO blocks' PL/pgSQL BEGIN ... END has no semicolon after BEGIN).
    expect(script).not.toMatch(/^\s*(BEGIN|COMMIT|END|START TRANSACTION|ROLLBACK|ABORT)\s*(WORK|TRANSACTION)?\s*;/im);
    expect(script.split('\n')[1]).toMatch(/^-- Transactional \(compile --transactional\)/);

    const first = await psql(transactionalDb.url, ['-1', '-f', out]);
    expect(first.code, first.stderr).toBe(0);
    const after1 = await catalog(transactionalDb);
    const second = await psql(transactionalDb.url, ['-1', '-f', out]);
    expect(second.code, second.stderr).toBe(0);
    expect(await catalog(transactionalDb)).toEqual(after1);

    // Every relation of app, partitions of every level included, has RLS forced and the tenant policies.
    expectProtected(after1);
    const plan = await runCli(['plan', '--check', '--db', transactionalDb.url, '--policies', policy]);
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
  });
});
