import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import type pg from 'pg';
import { runAudit } from '../../src/audit/run-audit.js';
import { runExplain } from '../../src/explain/run-explain.js';
import { UsageError } from '../../src/errors.js';
import { factsFromModel, type TenantFacts } from '../../src/facts/resolve-facts.js';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { describeEachServer, uniqueName, type TestDatabase } from '../helpers/db.js';
import { runCli } from '../helpers/cli.js';
import { CANARY, createCanary, expectUntouched, snapshotDatabase } from '../helpers/hostile.js';
import { quoteIdent } from '../../src/compile/quote.js';

/** A policy file declaring `tables` of `schema` as tenant tables for the app role `app`: its text. */
function policyText(app: string, schema: string, tables: string[]): string {
  return `version: 1\ntenant: { setting: app.tenant_id, type: uuid }\nroles: { app: [${app}] }\nschemas:\n  ${schema}:\n    tables:\n${tables.map((t) => `      ${JSON.stringify(t)}: tenant\n`).join('')}`;
}

/** The same, written to a file of its own. */
function writePolicy(app: string, schema: string, tables: string[]): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'rlsctl-rob-')), 'policy.yaml');
  writeFileSync(file, policyText(app, schema, tables));
  return file;
}

/** The app role and `schema` it may use, then `sql` (the tables). */
async function setUp(db: TestDatabase, app: string, schema: string, sql: string): Promise<void> {
  await db.runScript(`CREATE ROLE ${app}; CREATE SCHEMA ${schema}; GRANT USAGE ON SCHEMA ${schema} TO ${app};\n${sql}`);
}

/**
 * Issue 14, robustness: callers and servers that misbehave. Every case runs
 * against real PostgreSQL 18 and 14.
 */

describeEachServer('audit and explain refuse a client inside a transaction', (ctx) => {
  const app = uniqueName('rob_app');
  let facts: TenantFacts;

  beforeAll(async () => {
    await setUp(
      ctx.db,
      app,
      'app',
      `
      CREATE TABLE app.notes (tenant_id uuid NOT NULL, id bigint NOT NULL, body text, PRIMARY KEY (tenant_id, id));
      GRANT SELECT ON app.notes TO ${app};
      ALTER TABLE app.notes ENABLE ROW LEVEL SECURITY;
      CREATE POLICY tenant ON app.notes TO ${app} USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);`,
    );
    const model = await parsePolicy([{ file: 'policy.yaml', text: policyText(app, 'app', ['notes']) }]);
    facts = factsFromModel(model);
  });

  const callers: Array<[string, (client: pg.Client) => Promise<unknown>]> = [
    ['runAudit', (client) => runAudit(client, facts)],
    ['runExplain', (client) => runExplain(client, facts, [{ name: 'q1', text: 'SELECT * FROM app.notes WHERE id = 1' }])],
  ];

  for (const [name, call] of callers) {
    it(`${name}: a caller that ran BEGIN and a write gets a clear error, and their transaction is untouched (open, READ WRITE, their data there)`, async () => {
      const client = await ctx.db.client();
      try {
        await client.query('BEGIN');
        await client.query('CREATE TEMPORARY TABLE mine (x int)');
        await client.query('INSERT INTO mine VALUES (1), (2)');
        const error = await call(client).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(UsageError);
        expect((error as Error).message).toMatch(/was given a client inside an open transaction: .* refuses; the transaction is untouched/);
        // Still in the caller's transaction, which is neither read-only nor rolled back.
        expect(client.getTransactionStatus()).toBe('T');
        expect((await client.query('SHOW transaction_read_only')).rows[0].transaction_read_only).toBe('off');
        expect((await client.query('SHOW transaction_isolation')).rows[0].transaction_isolation).toBe('read committed');
        expect((await client.query<{ in_block: boolean }>('SELECT now() <> statement_timestamp() AS in_block')).rows[0].in_block).toBe(true);
        await client.query('INSERT INTO mine VALUES (3)');
        await client.query('COMMIT');
        expect((await client.query<{ n: string }>('SELECT count(*) AS n FROM mine')).rows[0].n).toBe('3');
      } finally {
        await client.end();
      }
    });

    it(`${name}: a caller whose transaction failed gets the error too, and the transaction stays failed for them to roll back`, async () => {
      const client = await ctx.db.client();
      try {
        await client.query('BEGIN');
        await client.query('CREATE TEMPORARY TABLE gone (x int)');
        await expect(client.query('SELECT 1 / 0')).rejects.toThrow(/division by zero/);
        await expect(call(client)).rejects.toThrow(/inside an open transaction \(a failed one\)/);
        expect(client.getTransactionStatus()).toBe('E');
        await expect(client.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
        await client.query('ROLLBACK');
        expect((await client.query<{ t: string | null }>(`SELECT to_regclass('pg_temp.gone')::text AS t`)).rows[0].t).toBeNull();
      } finally {
        await client.end();
      }
    });

    it(`${name}: a client outside any transaction works, and is left outside one`, async () => {
      const client = await ctx.db.client();
      try {
        await call(client);
        expect(client.getTransactionStatus()).toBe('I');
      } finally {
        await client.end();
      }
    });
  }
});

describeEachServer("audit's planner connection has the scan's statement_timeout", (ctx) => {
  const app = uniqueName('rob_plan');
  let policy = '';

  beforeAll(async () => {
    await setUp(ctx.db, app, 'app', 'CREATE TABLE app.notes (tenant_id uuid NOT NULL, id bigint NOT NULL, body text, PRIMARY KEY (tenant_id, id));');
    policy = writePolicy(app, 'app', ['notes']);
  });

  it('a planner that waits on a lock the scan does not need is cancelled by the time limit: exit 3, not a hang', async () => {
    // The planner reads pg_collation (column collations), the scan does not: a session holding it
    // locked stops only the planner, as a slow catalog would. Released at the end, whatever happens.
    const locker = await ctx.db.client();
    locker.on('error', () => undefined);
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE pg_catalog.pg_collation IN ACCESS EXCLUSIVE MODE');
      const r = await runCli(['audit', '--db', ctx.db.url, '--policies', policy, '--statement-timeout', '2s']);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(/took longer than its statement_timeout|lock timeout/);
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
    }
  }, 30_000);
});

describeEachServer('apply: a deadline for the whole policy transaction', (ctx) => {
  const app = uniqueName('rob_dl');
  const tables = ['t1', 't2', 't3'];
  let policy = '';

  beforeAll(async () => {
    await createCanary(ctx.db);
    await setUp(
      ctx.db,
      app,
      'dl',
      `
      ${tables.map((t) => `CREATE TABLE dl.${t} (tenant_id uuid NOT NULL, id bigint NOT NULL, PRIMARY KEY (tenant_id, id)); GRANT SELECT ON dl.${t} TO ${app};`).join('\n')}`,
    );
    policy = writePolicy(app, 'dl', tables);
  });

  it('each table held by another session for less than lock_timeout, together longer than --transaction-timeout: exit 3 at the deadline, nothing changed', async () => {
    const before = await snapshotDatabase(ctx.db);
    // One session per table holds ACCESS SHARE (a report, say); each lets go 1.2 s after apply starts
    // waiting for it, under the 2 s lock_timeout, so no single wait fails: only the sum passes 3 s.
    const holders = new Map<string, pg.Client>();
    for (const t of tables) {
      const c = await ctx.db.client();
      c.on('error', () => undefined);
      await c.query('BEGIN');
      await c.query(`LOCK TABLE dl.${t} IN ACCESS SHARE MODE`);
      holders.set(t, c);
    }
    const waited: string[] = [];
    let done = false;
    const run = runCli(['apply', '--db', ctx.db.url, '--policies', policy, '--lock-timeout', '2s', '--transaction-timeout', '3s']).finally(() => (done = true));
    try {
      while (!done) {
        const { rows } = await ctx.db.query<{ rel: string }>(
          `SELECT c.relname AS rel FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid JOIN pg_class c ON c.oid = l.relation
            WHERE a.application_name = 'rlsctl' AND NOT l.granted AND l.locktype = 'relation'`,
        );
        const rel = rows[0]?.rel;
        if (rel && !waited.includes(rel)) {
          waited.push(rel);
          const holder = holders.get(rel)!;
          setTimeout(() => void holder.query('ROLLBACK').catch(() => undefined), 1200);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const r = await run;
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(
        /the policy transaction reached its deadline of 3 s \(--transaction-timeout\) after \d of \d+ statements; nothing was changed: the transaction was rolled back/,
      );
      // It met more than one lock: each wait alone was within lock_timeout.
      expect(waited.length).toBeGreaterThanOrEqual(2);
    } finally {
      await run.catch(() => undefined);
      for (const c of holders.values()) {
        await c.query('ROLLBACK').catch(() => undefined);
        await c.end().catch(() => undefined);
      }
    }
    await expectUntouched(ctx.db, before);
  });
});

describeEachServer('apply: the INVALID index a failed concurrent build leaves', (ctx) => {
  const app = uniqueName('rob_ix');
  // A hostile table name: the statement apply prints for the leftover index must quote it exactly.
  const table = `No"tes'; DROP TABLE public.${CANARY};--`;
  const index = `${table}_tenant_id_idx`;
  const qTable = `ix.${quoteIdent(table)}`;
  let policy = '';
  const invalid = async () =>
    (
      await ctx.db.query<{ name: string }>(
        `SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass AND NOT i.indisvalid`,
        [qTable],
      )
    ).rows.map((r) => r.name);

  beforeAll(async () => {
    await createCanary(ctx.db);
    await setUp(
      ctx.db,
      app,
      'ix',
      `
      CREATE TABLE ${qTable} (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, body text);
      CREATE TABLE public.ix_other (id int);
      GRANT SELECT ON ${qTable} TO ${app};`,
    );
    policy = writePolicy(app, 'ix', [table]);
    const first = await runCli(['apply', '--db', ctx.db.url, '--policies', policy, '--quiet']);
    expect(first.code, first.stderr).toBe(0);
  });

  /** Drop the tenant index the first apply built, so that the next apply builds it again, while `read` holds an old snapshot. */
  async function failBuild(read: string): Promise<Awaited<ReturnType<typeof runCli>>> {
    await ctx.db.query(`DROP INDEX IF EXISTS ix.${quoteIdent(index)}`);
    const holder = await ctx.db.client();
    try {
      // The build waits for the old snapshot ("waiting for old snapshots"), under lock_timeout.
      await holder.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await holder.query(read);
      return await runCli(['apply', '--db', ctx.db.url, '--policies', policy, '--lock-timeout', '500ms']);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
    }
  }

  it('dropped: a session with an old snapshot of another table stops the build but not the drop, and the error says it was dropped', async () => {
    const r = await failBuild('SELECT count(*) FROM public.ix_other');
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain('canceling statement due to lock timeout; 0 earlier statements');
    expect(r.stderr).toContain(`stay applied; the INVALID index ix.${index} it left was dropped; run apply again once the cause is fixed`);
    expect(await invalid()).toEqual([]);
  });

  it('reported: a session reading the table stops the build and every retry of the drop, and the error gives the exact statement to run', async () => {
    const before = await snapshotDatabase(ctx.db);
    const r = await failBuild(`SELECT count(*) FROM ${qTable}`);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain(
      `stay applied; it left the INVALID index ix.${index}, which writes still maintain, and dropping it failed 3 times (canceling statement due to lock timeout); run apply again`,
    );
    expect(await invalid()).toEqual([index]);
    // The statement as printed, on the hint's last line, run once the reader is gone, removes it and nothing else.
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines[lines.length - 2]).toBe('  to drop the INVALID index once the sessions using the table are done, run:');
    const statement = lines[lines.length - 1].trim();
    expect(statement).toBe(`DROP INDEX CONCURRENTLY IF EXISTS ix."No""tes'; DROP TABLE public.${CANARY};--_tenant_id_idx";`);
    await ctx.db.query(statement);
    expect(await invalid()).toEqual([]);
    await expectUntouched(ctx.db, before);
  });
});

describeEachServer('apply: the connection lost during COMMIT', (ctx) => {
  const app = uniqueName('rob_cm');
  let policy = '';

  beforeAll(async () => {
    // A real connection loss at COMMIT: an event trigger notes each DDL statement of an rlsctl
    // session in a table whose DEFERRABLE INITIALLY DEFERRED constraint trigger runs at COMMIT
    // and terminates that session's backend. (Event triggers need a superuser; the test is one.)
    await setUp(
      ctx.db,
      app,
      'cm',
      `
      CREATE TABLE cm.notes (id bigint PRIMARY KEY, tenant_id uuid NOT NULL);
      CREATE INDEX ON cm.notes (tenant_id, id);
      GRANT SELECT ON cm.notes TO ${app};
      CREATE SCHEMA trap;
      CREATE TABLE trap.seen (tag text);
      CREATE FUNCTION trap.cut() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_catalog.pg_terminate_backend(pg_catalog.pg_backend_pid());
        PERFORM pg_catalog.pg_sleep(5);
        RETURN NULL;
      END $$;
      CREATE CONSTRAINT TRIGGER cut AFTER INSERT ON trap.seen DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION trap.cut();
      CREATE FUNCTION trap.note() RETURNS event_trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF pg_catalog.current_setting('application_name') = 'rlsctl' THEN INSERT INTO trap.seen VALUES (tg_tag); END IF;
      END $$;
      CREATE EVENT TRIGGER note ON ddl_command_end EXECUTE FUNCTION trap.note();`,
    );
    policy = writePolicy(app, 'cm', ['notes']);
  });

  it('says the outcome is unknown and how to find it, never "nothing was changed"; the check it names tells the truth', async () => {
    const r = await runCli(['apply', '--db', ctx.db.url, '--policies', policy]);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).not.toContain('nothing was changed');
    expect(r.stderr).toMatch(
      /apply lost its connection during COMMIT of the policy transaction \(.+\): whether its \d+ statements \(RLS flags and policies\) took effect is unknown; no index was built/,
    );
    expect(r.stderr).toContain('To know which: run rlsctl plan with the same --db and policy file;');
    const last = /if it still lists "(.+)", nothing was committed/.exec(r.stderr)![1];
    // Here the backend ended before its commit record: the named check says so.
    await ctx.db.query('DROP EVENT TRIGGER note');
    const plan = await runCli(['plan', '--db', ctx.db.url, '--policies', policy]);
    expect(plan.stdout).toContain(last);
    expect((await ctx.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_policy WHERE polrelid = 'cm.notes'::regclass`)).rows[0].n).toBe(0);
    // And apply again does what is missing.
    const again = await runCli(['apply', '--db', ctx.db.url, '--policies', policy, '--quiet']);
    expect(again.code, again.stderr).toBe(0);
    const check = await runCli(['plan', '--db', ctx.db.url, '--policies', policy, '--check']);
    expect(check.code, check.stdout).toBe(0);
  });
});
