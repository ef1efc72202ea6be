import { afterAll, beforeAll, expect, it } from 'vitest';
import pg from 'pg';
import { CompiledQuery, Kysely, PostgresDialect } from 'kysely';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { compileScript } from '../../src/compile/render-sql.js';
import type { PolicyModel } from '../../src/policy/model.js';
import { withTenant } from '../../src/tenant/with-tenant.js';
import { withTenantQuery } from '../../src/tenant/with-tenant-query.js';
import { TenantContextError } from '../../src/tenant/tenant-context-error.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { createCanary, expectUntouched, snapshotDatabase } from '../helpers/hostile.js';

/**
 * withTenant for the tenant models of issue 17 on real servers, as an app role
 * under the compiled policies: the claim model (the claims JSON goes into the
 * setting) and `propagate: 'set-local'` (SET LOCAL, what Citus forwards to
 * its shards), through a pg.Pool and Kysely.
 */

const ACME = 'acme';
const HOSTILE = String.raw`x'); DROP TABLE public.hostile_canary; --\"}`;

describeEachServer('withTenant for the claim model and with SET LOCAL', (ctx) => {
  const app = uniqueName('models_app');
  let pool: pg.Pool;
  let kysely: Kysely<unknown>;
  let claimModel: PolicyModel;
  let citusModel: PolicyModel;

  beforeAll(async () => {
    await ctx.db.runScript(`
      CREATE ROLE ${app} LOGIN PASSWORD 'secret';
      CREATE SCHEMA claims; CREATE SCHEMA citus;
      CREATE TABLE claims.notes (org text NOT NULL, id int NOT NULL);
      CREATE TABLE citus.notes (org text NOT NULL, id int NOT NULL);
      INSERT INTO claims.notes VALUES ('${ACME}', 1), ('${ACME}', 2), ('other', 3), ($$${HOSTILE}$$, 4);
      INSERT INTO citus.notes SELECT * FROM claims.notes;
      GRANT USAGE ON SCHEMA claims, citus TO ${app};
      GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA claims, citus TO ${app};
    `);
    await createCanary(ctx.db);
    const head = `version: 1\nroles: { app: [${app}] }\n`;
    claimModel = await parsePolicy([
      { file: 'a.yaml', text: `${head}tenant: { claim: app_metadata.org_id, type: text, column: org }\nschemas: { claims: { tables: { notes: tenant } } }\n` },
    ]);
    citusModel = await parsePolicy([
      {
        file: 'b.yaml',
        text: `${head}engine: citus\ntenant: { setting: app.org, type: text, column: org }\nschemas: { citus: { tables: { notes: tenant } } }\n`,
      },
    ]);
    await ctx.db.runScript(compileScript(claimModel, { transactional: true }));
    await ctx.db.runScript(compileScript(citusModel, { transactional: true }));
    pool = new pg.Pool({ connectionString: ctx.db.urlAs(app), max: 2 });
    pool.on('error', () => undefined);
    kysely = new Kysely({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: ctx.db.urlAs(app), max: 2 }) }) });
  });

  afterAll(async () => {
    await pool?.end();
    await kysely?.destroy();
  });

  const ids = (rows: Array<{ id: number }>) => rows.map((r) => r.id).sort((a, b) => a - b);

  it('the claim model: withTenant with the policy puts the claims JSON in request.jwt.claims, transaction-locally', async () => {
    const seen = await withTenant(
      pool,
      ACME,
      async (c) => {
        const { rows } = await c.query('SELECT id FROM claims.notes');
        const claims = (await c.query("SELECT current_setting('request.jwt.claims') AS v")).rows[0].v as string;
        return { ids: ids(rows), claims: JSON.parse(claims) as unknown };
      },
      { policy: claimModel },
    );
    expect(seen).toEqual({ ids: [1, 2], claims: { app_metadata: { org_id: ACME } } });
    const viaKysely = await withTenant(
      kysely,
      'other',
      async (trx) => ids((await trx.executeQuery<{ id: number }>(CompiledQuery.raw('SELECT id FROM claims.notes'))).rows),
      {
        policy: claimModel,
      },
    );
    expect(viaKysely).toEqual([3]);
    const oneFlight = await withTenantQuery<{ id: number }>(pool, ACME, 'SELECT id FROM claims.notes', [], { policy: claimModel });
    expect(ids(oneFlight.rows)).toEqual([1, 2]);
    // Outside the transaction nothing is set.
    expect((await pool.query('SELECT id FROM claims.notes')).rowCount).toBe(0);
  });

  it("engine: citus sets the tenant with SET LOCAL (propagate: 'set-local' by default), on pg and Kysely, ending with the transaction", async () => {
    {
      const rows = await withTenant(pool, ACME, async (c) => ids((await c.query('SELECT id FROM citus.notes')).rows), { policy: citusModel });
      expect(rows).toEqual([1, 2]);
      const k = await withTenant(
        kysely,
        'other',
        async (trx) => ids((await trx.executeQuery<{ id: number }>(CompiledQuery.raw('SELECT id FROM citus.notes'))).rows),
        {
          policy: citusModel,
        },
      );
      expect(k).toEqual([3]);
      const explicit = await withTenant(pool, ACME, async (c) => ids((await c.query('SELECT id FROM citus.notes')).rows), {
        setting: 'app.org',
        type: 'text',
        propagate: 'set-local',
      });
      expect(explicit).toEqual([1, 2]);
      // The pool's connections after withTenant: the setting ended with each transaction.
      for (let i = 0; i < 2; i++) expect((await pool.query("SELECT current_setting('app.org', true) AS v")).rows[0].v ?? '').toBe('');
    }
  });

  it('SET LOCAL is what goes to the server, not set_config', async () => {
    const sent: string[] = [];
    const watched = new pg.Pool({ connectionString: ctx.db.urlAs(app), max: 1 });
    watched.on('connect', (client) => {
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
        sent.push(typeof args[0] === 'string' ? args[0] : String((args[0] as { text?: string }).text));
        return query(...args);
      };
    });
    try {
      const rows = await withTenant(watched, ACME, async (c) => ids((await c.query('SELECT id FROM citus.notes')).rows), { policy: citusModel });
      expect(rows).toEqual([1, 2]);
    } finally {
      await watched.end();
    }
    expect(sent[0]).toBe(`BEGIN; SET LOCAL "app"."org" = 'acme'`);
    expect(sent.join('\n')).not.toContain('set_config');
  });

  it('a hostile text tenant stays one value in SET LOCAL and in the claims JSON: its own rows, nothing run', async () => {
    const before = await snapshotDatabase(ctx.db);
    for (const options of [{ policy: citusModel }, { policy: claimModel }, { setting: 'app.org', type: 'text' as const, propagate: 'set-local' as const }]) {
      const table = 'policy' in options && options.policy === claimModel ? 'claims.notes' : 'citus.notes';
      const rows = await withTenant(pool, HOSTILE, async (c) => ids((await c.query(`SELECT id FROM ${table}`)).rows), options);
      expect(rows).toEqual([4]);
    }
    await expectUntouched(ctx.db, before);
  });

  it("withTenantQuery refuses propagate: 'set-local' before any SQL", async () => {
    const error = await withTenantQuery(pool, ACME, 'SELECT 1', [], { policy: citusModel }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TenantContextError);
    expect((error as TenantContextError).code).toBe('invalid-options');
  });
});
