import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qualify, quoteIdent } from '../../src/compile/quote.js';
import { compileScript } from '../../src/compile/render-sql.js';
import { loadParser } from '../../src/policy/expression.js';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, testServers, uniqueName, type TestDatabase } from '../helpers/db.js';
import { CANARY, createCanary, snapshotDatabase } from '../helpers/hostile.js';
import { runPsql } from '../helpers/psql.js';
import { expression, identifier } from './arbitraries.js';

/**
 * Property-based tests of issue 14 on real servers: 1,000 arbitrary policies
 * (hostile policy names and expressions the validator accepts) on tables,
 * columns and a schema with hostile names, written by `apply`, then by the
 * compiled script run as plain `psql -f` runs it (going on after errors), then
 * checked by `plan --check`, on a database where standard_conforming_strings
 * is on and on one where it is off. Every statement runs whole and succeeds,
 * the result converges, and the canary table is intact. The cases come from
 * fast-check with a fixed seed (printed on failure), batched into one policy
 * file per database so that the 1,000 cases cost a few round trips each.
 */

/** 1,000 cases with each setting on the first server (PostgreSQL 18); a smaller batch on the others keeps the run short. */
const CASES = 1000;
const CASES_ELSEWHERE = 200;
const TABLES = 20;
const SEED = 1414;

interface ServerCase {
  table: string;
  column: string;
  policy: string;
  using: string;
}

const serverCase: fc.Arbitrary<ServerCase> = fc.record({
  table: identifier,
  column: identifier.filter((c) => c !== 'note'),
  policy: identifier.filter((n) => !n.startsWith('rlsctl_')),
  using: expression,
});

/** `cases` cases on TABLES tables: each table keeps the column of its first case, each (table, policy) pair once. */
function batch(cases: number, seed: number): { schema: string; tables: Map<string, { column: string; policies: Map<string, string> }> } {
  const samples = fc.sample(serverCase, { numRuns: cases * 2, seed });
  const tables = new Map<string, { column: string; policies: Map<string, string> }>();
  let used = 0;
  for (const c of samples) {
    if (used === cases) break;
    let table = tables.get(c.table);
    if (!table) {
      if (tables.size === TABLES) table = [...tables.values()][used % TABLES];
      else tables.set(c.table, (table = { column: c.column, policies: new Map() }));
    }
    if (table.policies.has(c.policy)) continue;
    table.policies.set(c.policy, c.using);
    used++;
  }
  expect(used).toBe(cases);
  return { schema: fc.sample(identifier, { numRuns: 1, seed })[0], tables };
}

let tmp: string;
beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'rlsctl-prop-'));
  await loadParser();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.each(
  testServers().flatMap((server, i) => (['on', 'off'] as const).map((scs) => [server.name, scs, server, i === 0 ? CASES : CASES_ELSEWHERE] as const)),
)('property: hostile policies on a real server [%s, standard_conforming_strings %s, %i cases]', (name, scs, server, cases) => {
  // A role with quotes, a dollar and a backslash in its name (roles are cluster-wide: unique per run).
  const role = `${uniqueName('h1prop')} "'$\\;--`;
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase(server, 'prop');
    await db.query(`CREATE ROLE ${quoteIdent(role)}`);
    await createCanary(db);
    if (scs === 'off') await db.query(`ALTER DATABASE ${db.name} SET standard_conforming_strings = off`);
  });
  afterAll(async () => {
    await db?.drop();
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    await admin.query(`DROP ROLE IF EXISTS ${quoteIdent(role)}`).catch(() => undefined);
    await admin.end();
  });

  it(`apply, the compiled script under psql -f, then plan --check: each statement whole, converged, the canary intact (seed ${SEED})`, async () => {
    const { schema, tables } = batch(cases, SEED + (scs === 'on' ? 0 : 1));
    const client = await db.client();
    try {
      const { rows } = await client.query<{ standard_conforming_strings: string }>('SHOW standard_conforming_strings');
      expect(rows[0].standard_conforming_strings).toBe(scs);
      // The tables, named by rlsctl's own quoting (checked by the pure property test).
      await client.query(`SET standard_conforming_strings = on; CREATE SCHEMA ${quoteIdent(schema)}`);
      for (const [table, t] of tables) {
        await client.query(`CREATE TABLE ${qualify(schema, table)} (${quoteIdent(t.column)} text NOT NULL, note text)`);
      }
    } finally {
      await client.end();
    }
    const before = await snapshotDatabase(db);
    const yaml = stringify({
      version: 1,
      tenant: { setting: 'app.tenant_id', type: 'text', column: 'tenant_id' },
      roles: { app: [role] },
      schemas: {
        [schema]: {
          tables: Object.fromEntries(
            [...tables].map(([table, t]) => [
              table,
              { column: t.column, policies: [...t.policies].map(([policy, using]) => ({ name: policy, for: 'select', to: [role], using })) },
            ]),
          ),
        },
      },
    });
    const file = path.join(tmp, `${name}-${scs}.yaml`);
    writeFileSync(file, yaml);

    const apply = await runCli(['apply', '--db', db.url, '--policies', file, '--quiet']);
    expect(apply.code, apply.stderr).toBe(0);
    await expectCanary(db, before);
    const { rows: policies } = await db.query<{ n: string }>('SELECT count(*) AS n FROM pg_policy');
    expect(Number(policies[0].n)).toBe(cases + 2 * TABLES);

    const script = compileScript(await parsePolicy([{ file: 'p.yaml', text: yaml }]));
    // Real psql (the script's indexes need its \\gexec), every statement whole: with ON_ERROR_STOP, one error would exit 3.
    const sqlFile = path.join(tmp, `${name}-${scs}.sql`);
    writeFileSync(sqlFile, script);
    const run = await runPsql(db.url, ['-f', sqlFile]);
    expect(run.code, run.stderr).toBe(0);
    await expectCanary(db, before);

    const plan = await runCli(['plan', '--check', '--db', db.url, '--policies', file]);
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
    await expectCanary(db, before);
  }, 300_000); // 1,000 hostile files on a loaded 2-core machine: minutes, not the default 60 s
});

/** Row counts as before, no `pwned` role, the canary's three rows. */
async function expectCanary(db: TestDatabase, before: Awaited<ReturnType<typeof snapshotDatabase>>): Promise<void> {
  const after = await snapshotDatabase(db);
  expect(after.rowCounts).toEqual(before.rowCounts);
  expect(after.pwnedRoles).toEqual([]);
  const { rows } = await db.query<{ n: string }>(`SELECT string_agg(id || ':' || note, ',' ORDER BY id) AS n FROM public.${CANARY}`);
  expect(rows[0].n).toBe('1:one,2:two,3:three');
}
