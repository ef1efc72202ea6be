import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it, describe } from 'vitest';
import { runAudit } from '../../src/audit/run-audit.js';
import { inferFacts, type TenantFacts } from '../../src/facts/resolve-facts.js';
import { readInitFacts } from '../../src/init/read-init-facts.js';
import { readExplainCatalog } from '../../src/explain/read-explain-catalog.js';
import { readVerifyCatalog } from '../../src/verify/verify-catalog.js';
import { buildPlan } from '../../src/plan/build-plan.js';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { createTestDatabase, describeEachServer, testServers, uniqueName, type TestDatabase } from '../helpers/db.js';
import { collectCatalog } from '../../src/audit/collect-catalog.js';

/**
 * "Each command's number of catalog queries stays independent of the number
 * of tables" (issue 13): the same commands on a database of 2 tenant tables
 * and on one of 200 (plus a partitioned table with 1 and 100 partitions) send
 * the same number of queries. A query per table would show as a difference
 * of hundreds. The queries are counted by wrapping `client.query` of the
 * pg client the code under test is given.
 */

const SMALL = 2;
const LARGE = 200;

/** n tenant tables app.t0..t{n-1} with the generated policies, and app.events partitioned n/2 ways. */
function schemaSql(n: number, app: string): string {
  const lookup = "(SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid)";
  return `
    CREATE SCHEMA app;
    GRANT USAGE ON SCHEMA app TO ${app};
    DO $$
    BEGIN
      FOR i IN 0..${n - 1} LOOP
        EXECUTE format('CREATE TABLE app.%I (tenant_id uuid NOT NULL, id bigint NOT NULL, name text, PRIMARY KEY (tenant_id, id))', 't' || i);
        EXECUTE format('CREATE POLICY tenant_guard ON app.%I AS RESTRICTIVE TO ${app} USING (tenant_id = ${lookup.replaceAll("'", "''")}) WITH CHECK (tenant_id = ${lookup.replaceAll("'", "''")})', 't' || i);
        EXECUTE format('CREATE POLICY tenant_access ON app.%I TO ${app} USING (tenant_id = ${lookup.replaceAll("'", "''")})', 't' || i);
        EXECUTE format('ALTER TABLE app.%I ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', 't' || i);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON app.%I TO ${app}', 't' || i);
      END LOOP;
    END $$;
    CREATE TABLE app.events (tenant_id uuid NOT NULL, day int NOT NULL, PRIMARY KEY (tenant_id, day)) PARTITION BY RANGE (day);
    DO $$
    BEGIN
      FOR d IN 0..${n / 2 - 1} LOOP
        EXECUTE format('CREATE TABLE app.%I PARTITION OF app.events FOR VALUES FROM (%s) TO (%s)', 'events_' || d, d, d + 1);
      END LOOP;
    END $$;`;
}

function policyYaml(n: number, app: string): string {
  const tables = Array.from({ length: n }, (_, i) => `      t${i}: tenant`).join('\n');
  return `version: 1\ntenant:\n  setting: app.tenant_id\n  type: uuid\n  column: tenant_id\nroles:\n  app: [${app}]\nschemas:\n  app:\n    tables:\n${tables}\n      events: tenant\n`;
}

/** Run `fn` with a client whose queries are counted; returns the count. */
async function countQueries(db: TestDatabase, fn: (client: pg.Client) => Promise<unknown>): Promise<number> {
  const client = await db.client();
  let count = 0;
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    count++;
    return query(...args);
  };
  try {
    await fn(client);
  } finally {
    await client.end();
  }
  return count;
}

const FACT_OPTIONS = (app: string) => ({ schema: ['app'], tenantColumn: 'tenant_id', tenantSetting: 'app.tenant_id', appRole: [app], bypassRole: [] });

/** What each command sends on one database, by command. */
async function queriesOf(db: TestDatabase, app: string, n: number): Promise<{ counts: Record<string, number>; relations: number }> {
  let facts: TenantFacts | undefined;
  let relations = 0;
  const counts: Record<string, number> = {};
  counts.infer = await countQueries(db, async (c) => (facts = await inferFacts(FACT_OPTIONS(app), c)));
  counts.audit = await countQueries(db, async (c) => (relations = (await runAudit(c, facts!)).stats.relations));
  counts.init = await countQueries(db, (c) => readInitFacts(c, ['app']));
  counts.explain = await countQueries(db, (c) => readExplainCatalog(c, facts!.tenantTables));
  counts.verify = await countQueries(db, (c) => readVerifyCatalog(c, facts!, 'app.tenant_id'));
  const model = await parsePolicy([{ file: 'policy.yaml', text: policyYaml(n, app) }]);
  counts.plan = await countQueries(db, (c) => buildPlan(c, model));
  return { counts, relations };
}

for (const server of testServers()) {
  describe(`catalog queries per command [${server.name}]`, () => {
    const app = uniqueName('app');
    const dbs: TestDatabase[] = [];
    beforeAll(async () => {
      const admin = new pg.Client({ connectionString: server.url });
      await admin.connect();
      await admin.query(`CREATE ROLE ${app} LOGIN`);
      await admin.end();
      for (const n of [SMALL, LARGE]) {
        const db = await createTestDatabase(server);
        dbs.push(db);
        await db.runScript(schemaSql(n, app));
      }
    });
    afterAll(async () => {
      for (const db of dbs) await db.drop();
      const admin = new pg.Client({ connectionString: server.url });
      await admin.connect();
      await admin.query(`DROP ROLE IF EXISTS ${app}`).catch(() => undefined);
      await admin.end();
    });

    it(`audit, init, explain, verify and plan send as many queries for ${LARGE} tables as for ${SMALL}`, async () => {
      const small = await queriesOf(dbs[0], app, SMALL);
      const large = await queriesOf(dbs[1], app, LARGE);
      // Each audit really scanned its database: n tables, the partitioned one and its n/2 partitions.
      expect([small.relations, large.relations]).toEqual([SMALL + 1 + SMALL / 2, LARGE + 1 + LARGE / 2]);
      expect(small.counts.audit).toBeGreaterThan(5);
      expect(large.counts).toEqual(small.counts);
    });

    it('explain reads the views and their owners in as many queries for 100 views as for 1', async () => {
      let facts: TenantFacts | undefined;
      await countQueries(dbs[1], async (c) => (facts = await inferFacts(FACT_OPTIONS(app), c)));
      const views = async (n: number) => {
        await dbs[1].runScript(
          `DROP SCHEMA IF EXISTS v CASCADE; CREATE SCHEMA v;` +
            Array.from({ length: n }, (_, i) => `CREATE VIEW v.w${i} AS SELECT * FROM ${i % 2 === 0 ? `app.t${i}` : `v.w${i - 1}`};`).join('\n'),
        );
        let viewCount = 0;
        const count = await countQueries(dbs[1], async (c) => (viewCount = (await readExplainCatalog(c, facts!.tenantTables, [app])).views.size));
        return { count, viewCount };
      };
      try {
        const one = await views(1);
        const many = await views(100);
        expect([one.viewCount, many.viewCount]).toEqual([1, 100]);
        expect(many.count).toBe(one.count);
      } finally {
        await dbs[1].runScript('DROP SCHEMA IF EXISTS v CASCADE;');
      }
    });

    it('infers without reading the policies when --app-role and --tenant-setting are both given', async () => {
      const { appRole: _unused, ...withoutRole } = FACT_OPTIONS(app);
      let inferred: TenantFacts | undefined;
      const given = await countQueries(dbs[1], (c) => inferFacts(FACT_OPTIONS(app), c));
      const unsaid = await countQueries(dbs[1], async (c) => (inferred = await inferFacts(withoutRole, c)));
      // Without --app-role the policies are read, and name the role.
      expect(inferred!.appRoles).toEqual([app]);
      expect(given).toBe(unsaid - 1);
    });
  });
}

/**
 * The audit prints each distinct policy tree once, in the parent's context
 * when a partition's columns match its parent's (collect-catalog.ts,
 * readPolicies). Every text must still be what pg_get_expr prints in the
 * policy's own table: partitions attached with their columns in another
 * order, or after a column of the parent was dropped, name other columns at
 * the same numbers.
 */
describeEachServer('audit policy texts on partitions', (ctx) => {
  it('are the texts pg_get_expr prints for the policy on its own relation', async () => {
    const lookup = "(SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid)";
    await ctx.db.runScript(`
      CREATE SCHEMA app;
      CREATE TABLE app.events (tenant_id uuid NOT NULL, id bigint NOT NULL, day int NOT NULL) PARTITION BY RANGE (day);
      CREATE TABLE app.events_0 PARTITION OF app.events FOR VALUES FROM (0) TO (1);
      CREATE TABLE app.events_1 (day int NOT NULL, id bigint NOT NULL, tenant_id uuid NOT NULL);
      ALTER TABLE app.events ATTACH PARTITION app.events_1 FOR VALUES FROM (1) TO (2);
      CREATE TABLE app.events_2 (tenant_id uuid NOT NULL, id bigint NOT NULL, day int NOT NULL);
      ALTER TABLE app.events ATTACH PARTITION app.events_2 FOR VALUES FROM (2) TO (3);
      CREATE TABLE app.swapped (a int, b int, tenant_id uuid, day int) PARTITION BY LIST (day);
      ALTER TABLE app.swapped DROP COLUMN a;
      CREATE TABLE app.swapped_0 PARTITION OF app.swapped FOR VALUES IN (0);
      DO $$
      DECLARE r text;
      BEGIN
        FOREACH r IN ARRAY ARRAY['events', 'events_0', 'events_1', 'events_2', 'swapped', 'swapped_0'] LOOP
          EXECUTE format('CREATE POLICY guard ON app.%I AS RESTRICTIVE USING (tenant_id = ${lookup.replaceAll("'", "''")}) WITH CHECK (tenant_id IS NOT NULL)', r);
          EXECUTE format('CREATE POLICY access ON app.%I USING (day >= 0)', r);
        END LOOP;
        -- A correlated sub-query (a via policy): pg_get_expr names the policy's own relation in it,
        -- so a partition's text must not be printed in its parent's context.
        FOREACH r IN ARRAY ARRAY['events', 'events_0', 'events_2'] LOOP
          EXECUTE format('CREATE POLICY via_like ON app.%I USING (EXISTS (SELECT 1 FROM app.swapped s WHERE s.day = %I.day))', r, r);
        END LOOP;
      END $$;`);
    const facts = await inferFacts({ schema: ['app'], tenantColumn: 'tenant_id', tenantSetting: 'app.tenant_id', appRole: [], bypassRole: [] }, ctx.db.pool);
    const client = await ctx.db.client();
    let catalog;
    try {
      catalog = await collectCatalog(client, facts);
    } finally {
      await client.end();
    }
    const { rows } = await ctx.db.query<{ rel: string; name: string; using: string | null; check: string | null }>(
      `SELECT polrelid::text AS rel, polname AS name, pg_get_expr(polqual, polrelid) AS using, pg_get_expr(polwithcheck, polrelid) AS check
         FROM pg_policy ORDER BY polrelid, polname`,
    );
    expect(rows).toHaveLength(15);
    expect(catalog.policies.map((p) => ({ rel: p.relOid, name: p.name, using: p.using ?? null, check: p.check ?? null }))).toEqual(rows);
  });
});

/**
 * Every read of the catalog goes through the catalog layer (src/catalog/,
 * read-catalog.ts): a scan of the sources for SQL that reads a pg_catalog
 * table or view (`FROM pg_class`, `JOIN pg_catalog.pg_policy`, ...; not a
 * function such as pg_catalog.pg_get_expr()) outside src/catalog/. What may
 * stay outside, each for its reason (docs/architecture.md, "The catalog layer"):
 */
const OUTSIDE_CATALOG: Record<string, string> = {
  'src/compile/render-sql.ts': 'SQL rlsctl writes for the database to run (DO blocks of migrations), not a read of its own',
  'src/compile/membership.ts': "SQL rlsctl writes for the database to run: the DO block that gives the membership helper to the membership table's owner",
  'src/compile/partition-trigger.ts': 'the body of the event trigger function rlsctl installs: it runs in the database',
  'src/apply/apply-plan.ts': 'the re-check of an index apply just built',
  'src/apply/lock-diagnostics.ts': 'server activity while apply runs: who holds the lock it waits for (pg_locks, pg_stat_activity)',
  'src/apply/index-build-progress.ts': 'server activity while apply runs: the progress of its index build (pg_stat_progress_create_index)',
  'src/explain/plan-query.ts': "the planning session's own state: the role exists before SET ROLE, its prepared statement",
  'src/verify/preflight.ts': "the probing session's own state: the connecting role and the app roles before SET ROLE",
  'src/verify/target.ts': "the probing session's own state: the triggers that fire on the probed tables",
  'src/explain/read-query-file.ts': 'a hint that tells the user how to export pg_stat_statements',
};

const CATALOG_READ = /\b(?:FROM|JOIN)\s+(?:pg_catalog\.)?(pg_[a-z_]+|information_schema\.[a-z_]+)\b(?!\s*[.(])/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('the catalog layer', () => {
  it('is the only code that reads pg_catalog, but for a short list of reasons', () => {
    const readers: Record<string, string[]> = {};
    for (const file of sourceFiles('src')) {
      if (file.startsWith(join('src', 'catalog'))) continue;
      // Comments may name catalog tables; only code counts.
      const code = readFileSync(file, 'utf8')
        .split('\n')
        .filter((line) => !/^\s*(\/\/|\/\*|\*)/.test(line))
        .join('\n');
      const read = [...new Set([...code.matchAll(CATALOG_READ)].map((m) => m[1]))];
      if (read.length > 0) readers[file.split('\\').join('/')] = read;
    }
    expect(Object.keys(readers).sort()).toEqual(Object.keys(OUTSIDE_CATALOG).sort());
  });
});
