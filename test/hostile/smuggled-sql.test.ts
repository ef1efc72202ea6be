import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, describeEachServer, testServers, uniqueName, type TestDatabase } from '../helpers/db.js';
import { CANARY, createCanary, expectUntouched, snapshotDatabase, type DatabaseSnapshot } from '../helpers/hostile.js';
import { runLikePsql } from '../helpers/psql-like.js';
import { splitStatements } from '../../src/db/run-script.js';
import { loadParser } from '../../src/policy/expression.js';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { openDatabase } from '../../src/db/connection.js';
import { buildPlan } from '../../src/plan/build-plan.js';
import { runExplain } from '../../src/explain/run-explain.js';
import { factsFromModel } from '../../src/facts/resolve-facts.js';

/**
 * Smuggled SQL (issue 14): policy files whose text tries to end the SQL rlsctl
 * writes early and run statements of its own. Each case is the input, the exit
 * code and message, and proof that nothing ran: the database snapshot
 * (test/helpers/hostile.ts) is unchanged and the canary table intact; where the
 * input is valid and rlsctl does write to the database, proof that it wrote
 * exactly what it meant to (every statement of the script ran as one statement)
 * and nothing else (the canary, row counts, functions, roles unchanged).
 */

let tmp: string;
beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'rlsctl-hostile-'));
  await loadParser();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A name of 53 bytes that holds the dollar-quote tag compile used to wrap its partition block in. */
const TAG_TABLE = `t$rlsctl$;ROLLBACK;DROP TABLE public.${CANARY};--`;

const SCHEMA = `
CREATE SCHEMA app;
CREATE TABLE app.docs (id int PRIMARY KEY, tenant_id text NOT NULL, note text);
CREATE TABLE app.docs2 (id int PRIMARY KEY, tenant_id text NOT NULL, note text);
CREATE TABLE app."${TAG_TABLE}" (id int PRIMARY KEY);
INSERT INTO app.docs VALUES (1, 'a', 'x'), (2, 'b', 'y');
`;

/** A policy file for SCHEMA: the `tables:` block given, and every table of app it leaves out declared plainly. */
function policyFile(role: string, tables: string): string {
  const rest = [
    tables.includes('      docs:') ? '' : '      docs: tenant\n',
    tables.includes('      docs2:') ? '' : '      docs2: tenant\n',
    tables.includes(TAG_TABLE) ? '' : `      "${TAG_TABLE}": shared\n`,
  ];
  return `version: 1
tenant: { setting: app.tenant_id, type: text, column: tenant_id }
roles: { app: [${role}] }
schemas:
  app:
    tables:
${tables}${rest.join('')}`;
}

function write(name: string, text: string): string {
  const file = path.join(tmp, name);
  writeFileSync(file, text);
  return file;
}

/**
 * The expression a payload hides in: valid SQL for rlsctl's checks (a string
 * literal), but where `quote` ends the literal early the rest runs as statements.
 */
const payload = (body: string) => `note <> '${body}'`;

interface RejectedCase {
  name: string;
  /** The `tables:` block of the policy file; {{app}} is the app role. */
  tables: string;
  command: string[];
  code: number;
  message: RegExp;
}

/** Inputs rlsctl refuses before any SQL reaches the database. */
const REJECTED: RejectedCase[] = [
  {
    name: 'an expression that ends itself and drops the canary',
    tables: `      docs:\n        policies:\n          - { name: p, for: select, to: [{{app}}], using: "true); DROP TABLE public.${CANARY}; --" }\n`,
    command: ['apply'],
    code: 2,
    message: /holds a `;`: a policy expression is one expression/,
  },
  {
    name: 'an expression that closes the parenthesis rlsctl wraps it in',
    tables: `      docs:\n        policies:\n          - { name: p, for: select, to: [{{app}}], using: "true) OR (true" }\n`,
    command: ['apply'],
    code: 2,
    message: /closes a parenthesis it did not open/,
  },
  {
    name: 'an expression that goes on after a line break',
    tables: `      docs:\n        policies:\n          - { name: p, for: select, to: [{{app}}], using: "true\\n) ; DROP TABLE public.${CANARY}; SELECT (1" }\n`,
    command: ['plan'],
    code: 2,
    message: /holds a `;`/,
  },
  {
    name: 'an expression with a set operation after it',
    tables: `      docs:\n        policies:\n          - { name: p, for: select, to: [{{app}}], using: "(SELECT 1) = 1 UNION SELECT pg_catalog.pg_terminate_backend(1)" }\n`,
    command: ['apply'],
    code: 2,
    message: /PostgreSQL's parser rejects it: syntax error at or near "UNION"/,
  },
  {
    name: 'a control character in an expression',
    tables: `      docs:\n        policies:\n          - { name: p, for: select, to: [{{app}}], using: "true \\u001b; DROP TABLE public.${CANARY}" }\n`,
    command: ['apply'],
    code: 2,
    message: /contains a control character/,
  },
];

describeEachServer('hostile input: smuggled SQL', (ctx) => {
  const app = uniqueName('h1_app');
  let before: DatabaseSnapshot;

  beforeAll(async () => {
    await ctx.db.query(`CREATE ROLE ${app}`);
    await ctx.db.runScript(SCHEMA);
    await createCanary(ctx.db);
    before = await snapshotDatabase(ctx.db);
  });

  it.each(REJECTED)('$name: exit $code, nothing ran', async (c) => {
    const file = write(`${c.command[0]}-${uniqueName('case')}.yaml`, policyFile(app, c.tables.replaceAll('{{app}}', app)));
    const r = await runCli([...c.command, '--db', ctx.db.url, '--policies', file]);
    expect(r.code, r.stderr).toBe(c.code);
    expect(r.stderr).toMatch(c.message);
    await expectUntouched(ctx.db, before);
  });

  it('the dollar-quote tag in a string literal and in a table name cannot end compile’s DO block early, under plain psql -f', async () => {
    const file = write(
      `tag-${ctx.server.name}.yaml`,
      policyFile(
        app,
        `      docs:
        policies:
          - { name: p, for: select, to: [${app}], using: "${payload(`$rlsctl$; ROLLBACK; DROP TABLE public.${CANARY}; --`)}" }
      "${TAG_TABLE}": shared
`,
      ),
    );
    const out = path.join(tmp, `tag-${ctx.server.name}.sql`);
    const r = await runCli(['compile', '--policies', file, '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    const script = readFileSync(out, 'utf8');
    const run = await runScriptLikePsql(ctx.db, script);
    await expectOnlyPoliciesChanged(ctx.db, before);
    // psql cut the script into exactly the statements compile wrote, and each one ran.
    expect(run.statements.map((s) => s.error)).toEqual(splitStatements(script.replace(/^\\gexec$/gm, ';')).map(() => undefined));
    const { rows } = await ctx.db.query<{ using: string }>(`SELECT pg_get_expr(polqual, polrelid) AS using FROM pg_policy WHERE polname = 'p'`);
    expect(rows[0].using).toContain(`$rlsctl$; ROLLBACK; DROP TABLE public.${CANARY}; --`);
  });
});

/**
 * A backslash payload: with standard_conforming_strings on (which every check
 * of rlsctl assumes) `'\'` is a whole literal and the rest one more literal;
 * with it off, `\'` escapes the quote and `) ; ... ; SELECT (1 --` is SQL.
 */
const BACKSLASH = payload(`\\' AND note <> ') ; DROP TABLE public.${CANARY}; COMMIT; SELECT (1 --`);

describe.each(testServers().map((server) => [server.name, server] as const))('hostile input: standard_conforming_strings off [%s]', (_name, server) => {
  const app = uniqueName('h1_scs');
  let db: TestDatabase;
  let before: DatabaseSnapshot;
  const tables = (both: boolean) =>
    `      docs:
        policies:
          - name: p
            for: select
            to: [${app}]
            using: ${JSON.stringify(BACKSLASH)}
${both ? `      docs2:\n        policies:\n          - { name: p, for: select, to: [${app}], using: ${JSON.stringify(BACKSLASH)} }\n` : ''}`;

  beforeAll(async () => {
    db = await createTestDatabase(server, 'scsoff');
    await db.query(`CREATE ROLE ${app}`);
    await db.runScript(SCHEMA);
    await db.query(`GRANT USAGE ON SCHEMA app TO ${app}; GRANT SELECT ON ALL TABLES IN SCHEMA app TO ${app}`);
    await createCanary(db);
    // Every session opened from now on (rlsctl's, psql's) starts with it off.
    await db.query(`ALTER DATABASE ${db.name} SET standard_conforming_strings = off`);
    const client = await db.client();
    const { rows } = await client.query<{ standard_conforming_strings: string }>('SHOW standard_conforming_strings');
    await client.end();
    expect(rows[0].standard_conforming_strings).toBe('off');
    before = await snapshotDatabase(db);
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('the payload passes validate', async () => {
    const r = await runCli(['validate', '--policies', write(`scs-valid-${server.name}.yaml`, policyFile(app, tables(true)))]);
    expect(r.code, r.stderr).toBe(0);
  });

  it('the compiled script pins it on: under plain psql -f every statement runs whole and the canary stays', async () => {
    const file = write(`scs-compile-${server.name}.yaml`, policyFile(app, tables(false)));
    const out = path.join(tmp, `scs-${server.name}.sql`);
    expect((await runCli(['compile', '--policies', file, '-o', out])).code).toBe(0);
    const script = readFileSync(out, 'utf8');
    const run = await runScriptLikePsql(db, script);
    await expectOnlyPoliciesChanged(db, before);
    expect(run.statements.map((s) => s.error)).toEqual(splitStatements(script.replace(/^\\gexec$/gm, ';')).map(() => undefined));
    expect(script).toMatch(/^SET standard_conforming_strings = on;$/m);
    await expectPolicyLiteral(db, 'docs');
  });

  it('plan round-trips the stored expression without splitting it (after compile: nothing to do)', async () => {
    const file = write(`scs-plan-${server.name}.yaml`, policyFile(app, tables(false)));
    const r = await runCli(['plan', '--check', '--db', db.url, '--policies', file]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^nothing to do/m);
    expect(r.code).toBe(0);
    await expectOnlyPoliciesChanged(db, before);
  });

  it('apply sends each statement whole: the canary stays, the policy holds the literal as validated', async () => {
    const file = write(`scs-apply-${server.name}.yaml`, policyFile(app, tables(true)));
    const r = await runCli(['apply', '--db', db.url, '--policies', file]);
    expect(r.code, r.stderr).toBe(0);
    await expectOnlyPoliciesChanged(db, before);
    await expectPolicyLiteral(db, 'docs2');
  });

  it('explain sends its batch of a backslash query whole: the canary stays', async () => {
    const file = write(`scs-explain-${server.name}.yaml`, policyFile(app, tables(true)));
    const queries = write(
      `scs-explain-${server.name}.sql`,
      `-- name: Smuggled :many\nSELECT ('\\' , ') ; ROLLBACK; DROP TABLE public.${CANARY}; COMMIT; SELECT 1 --') FROM app.docs;\n`,
    );
    const r = await runCli(['explain', '--db', db.url, '--policies', file, '--tenant', 'a', '--fail-on', 'never', queries]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('1 of 1 query planned');
    await expectOnlyPoliciesChanged(db, before);
  });
});

describe.each(testServers().map((server) => [server.name, server] as const))('standard_conforming_strings off: the programmatic API [%s]', (_name, server) => {
  let db: TestDatabase;
  const app = uniqueName('h1_api');
  beforeAll(async () => {
    db = await createTestDatabase(server, 'scsapi');
    await db.query(`CREATE ROLE ${app}`);
    await db.runScript(SCHEMA);
    await db.query(`ALTER DATABASE ${db.name} SET standard_conforming_strings = off`);
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('every session openDatabase opens, pooled or dedicated, reads literals with it on', async () => {
    const database = await openDatabase({ db: db.url });
    try {
      const pooled = [await database.pool.connect(), await database.pool.connect()];
      const own = await database.connect();
      const settings: string[] = [];
      for (const c of [...pooled, own]) settings.push((await c.query('SHOW standard_conforming_strings')).rows[0].standard_conforming_strings);
      pooled.forEach((c) => c.release());
      await own.end();
      expect(settings).toEqual(['on', 'on', 'on']);
    } finally {
      await database.close();
    }
  });

  it('buildPlan and runExplain refuse a caller’s session that reads it off, before sending any of the file’s SQL', async () => {
    const model = await parsePolicy([
      {
        file: 'p.yaml',
        text: policyFile(app, `      docs:\n        policies:\n          - { name: p, for: select, to: [${app}], using: ${JSON.stringify(BACKSLASH)} }\n`),
      },
    ]);
    const client = await db.client();
    try {
      await expect(buildPlan(client, model)).rejects.toThrow(/standard_conforming_strings is off on this connection/);
      const query = { name: 'Q', text: "SELECT 1 FROM app.docs WHERE note <> '\\'" };
      await expect(runExplain(client, factsFromModel(model), [query], { tenant: 'a' })).rejects.toThrow(/standard_conforming_strings is off/);
      // Set on by the caller, the same session plans.
      await client.query('SET standard_conforming_strings = on');
      expect((await buildPlan(client, model)).statements.length).toBeGreaterThan(0);
    } finally {
      await client.end();
    }
  });
});

async function runScriptLikePsql(db: TestDatabase, script: string) {
  const client = await db.client();
  try {
    return await runLikePsql(client, script);
  } finally {
    await client.end();
  }
}

/**
 * The script or command wrote policies, RLS flags and indexes, as it should;
 * nothing else changed: every other catalog line, every row count, no role
 * made, the canary intact.
 */
async function expectOnlyPoliciesChanged(db: TestDatabase, before: DatabaseSnapshot): Promise<void> {
  const after = await snapshotDatabase(db);
  const relations = (s: DatabaseSnapshot) =>
    new Map(
      s.catalog
        .map((line) => /^rel (.*) (\w) rls=/.exec(line))
        .filter((m) => m !== null)
        .map((m) => [m[1], m[2]]),
    );
  const [was, now] = [relations(before), relations(after)];
  const added = [...now.keys()].filter((name) => !was.has(name));
  // The only new relations are the tenant indexes compile and apply build; none went away.
  expect(added.map((name) => now.get(name))).toEqual(added.map(() => 'i'));
  expect([...was.keys()].filter((name) => !now.has(name))).toEqual([]);
  const others = (s: DatabaseSnapshot) => s.catalog.filter((line) => !/^(pol|idx|rel) /.test(line) && !added.some((name) => line.startsWith(`col ${name}.`)));
  expect(others(after)).toEqual(others(before));
  await expectUntouched(db, { ...after, rowCounts: before.rowCounts });
}

async function expectPolicyLiteral(db: TestDatabase, table: string): Promise<void> {
  const { rows } = await db.query<{ using: string }>(
    `SELECT pg_get_expr(polqual, polrelid) AS using FROM pg_policy WHERE polrelid = $1::regclass AND polname = 'p'`,
    [`app.${table}`],
  );
  // The backslash alone one literal, the rest another, as validated.
  expect(rows[0].using).toContain(`') ; DROP TABLE public.${CANARY}; COMMIT; SELECT (1 --'`);
  expect(rows[0].using).toContain('\\');
}
