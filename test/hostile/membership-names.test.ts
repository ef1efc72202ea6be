import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parsePolicy } from '../../src/policy/load-policy.js';
import type { PolicyModel } from '../../src/policy/model.js';
import { compileScript } from '../../src/compile/render-sql.js';
import { buildPlan } from '../../src/plan/build-plan.js';
import { convergeDatabase } from '../../src/apply/converge.js';
import { openDatabase, type Database } from '../../src/db/connection.js';
import { qualify, quoteIdent } from '../../src/compile/quote.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { CANARY, createCanary } from '../helpers/hostile.js';
import { runPsql } from '../helpers/psql.js';

/**
 * tenant.membership names reach SQL in the lookup function's body, its dollar-quoted CREATE
 * FUNCTION, the DO block that gives it to the table's owner, the index and every tenant policy:
 * names built to end each of those early run nothing, through compile (psql) and apply alike.
 */

const SCHEMA = `m'$rlsctl_fn$"; DROP TABLE ${CANARY}; --`; // no dot: `table` splits schema.table at the first one
const TABLE = `t$rlsctl_owner$'); DROP TABLE public.${CANARY}; --`;
const USER_COL = `u"'; DROP TABLE public.${CANARY}; --`;
const TENANT_COL = `o$$'||pg_sleep(1)||'`;
const A = '00000000-0000-4000-8000-00000000000a';
const U = '00000000-0000-4000-8000-0000000000f1';

describeEachServer('hostile names in tenant.membership', (ctx) => {
  const app = uniqueName('app');
  let model: PolicyModel;
  let db: Database;

  beforeAll(async () => {
    await createCanary(ctx.db);
    const s = quoteIdent(SCHEMA);
    await ctx.db.runScript(`
      CREATE ROLE ${app} NOLOGIN;
      CREATE SCHEMA ${s};
      GRANT USAGE ON SCHEMA ${s} TO ${app};
      CREATE TABLE ${qualify(SCHEMA, TABLE)} (${quoteIdent(USER_COL)} uuid NOT NULL, ${quoteIdent(TENANT_COL)} uuid NOT NULL);
      CREATE TABLE ${s}.docs (${quoteIdent(TENANT_COL)} uuid NOT NULL, id int NOT NULL, PRIMARY KEY (${quoteIdent(TENANT_COL)}, id));
      GRANT SELECT ON ${s}.docs TO ${app};
      INSERT INTO ${qualify(SCHEMA, TABLE)} VALUES ('${U}', '${A}');
      INSERT INTO ${s}.docs VALUES ('${A}', 1), ('00000000-0000-4000-8000-00000000000b', 2);`);
    const text = stringify({
      version: 1,
      tenant: {
        column: TENANT_COL,
        membership: { table: `${SCHEMA}.${TABLE}`, user_column: USER_COL, tenant_column: TENANT_COL, user: { setting: 'app.user_id', type: 'uuid' } },
      },
      roles: { app: [app] },
      schemas: { [SCHEMA]: { tables: { [TABLE]: { mode: 'exempt', reason: 'membership table' }, docs: 'tenant' } } },
    });
    model = await parsePolicy([{ file: 'hostile.yaml', text }]);
    db = await openDatabase({ db: ctx.db.url });
  });
  afterAll(async () => {
    await db?.close();
  });

  async function canaryAndMember(): Promise<void> {
    expect((await ctx.db.query(`SELECT count(*)::int AS n FROM public.${CANARY}`)).rows).toEqual([{ n: 3 }]);
    const client = await ctx.db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SET LOCAL ROLE ${app}`);
      await client.query("SELECT set_config('app.user_id', $1, true)", [U]);
      expect((await client.query(`SELECT id FROM ${quoteIdent(SCHEMA)}.docs`)).rows).toEqual([{ id: 1 }]);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  }

  it('compile: the script runs as written, each statement as one, and the lookup works', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rlsctl-hostile-membership-'));
    try {
      writeFileSync(path.join(dir, 'rls.sql'), compileScript(model));
      const r = await runPsql(ctx.db.url, ['-f', path.join(dir, 'rls.sql')]);
      expect(r.code, r.stderr).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await canaryAndMember();
    const { rows } = await ctx.db.query(
      `SELECT count(*)::int AS n FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname = 'rlsctl_member_tenants'`,
      [SCHEMA],
    );
    expect(rows).toEqual([{ n: 1 }]);
  });

  it('apply: converges, then plans nothing, and the lookup works', async () => {
    await ctx.db.query(`DROP FUNCTION ${qualify(SCHEMA, 'rlsctl_member_tenants')}() CASCADE`);
    await convergeDatabase(db, model);
    expect((await buildPlan(db.pool, model)).statements.map((s) => s.summary)).toEqual([]);
    await canaryAndMember();
  });
});
