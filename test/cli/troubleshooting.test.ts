import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, describeEachServer, uniqueName, type TestDatabase } from '../helpers/db.js';
import { runCli as runCliIn } from '../helpers/cli.js';
import { runPsql } from '../helpers/psql.js';

/**
 * docs/troubleshooting.md, for real: every error the page describes is
 * reproduced here against a real server, and the messages the page quotes
 * (rlsctl's, and PostgreSQL's where rlsctl is not in the loop) are asserted,
 * so the page cannot drift from what users see.
 */

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';

describeEachServer('troubleshooting', (ctx) => {
  const owner = uniqueName('tsowner');
  const app = uniqueName('tsapp');
  const auditor = uniqueName('tsauditor');
  let work = '';
  let policy = '';
  const extra: TestDatabase[] = [];
  /** In a folder without policies/: the facts come from the flags or --policies only. */
  const runCli = (args: string[]) => runCliIn(args, { cwd: work });

  /** A database with the schema of the page's examples: a table and a partitioned table, owned by `owner`, nothing applied. */
  async function exampleDatabase(): Promise<TestDatabase> {
    const db = await createTestDatabase(ctx.server, 'tsx');
    extra.push(db);
    await db.runScript(`
      CREATE SCHEMA app AUTHORIZATION ${owner};
      GRANT USAGE ON SCHEMA app TO ${app};
      SET ROLE ${owner};
      CREATE TABLE app.projects (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, org_id uuid NOT NULL, name text NOT NULL);
      CREATE TABLE app.events (org_id uuid NOT NULL, occurred_at timestamptz NOT NULL, what text) PARTITION BY RANGE (occurred_at);
      CREATE TABLE app.events_2025 PARTITION OF app.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
      CREATE TABLE app.events_2026 PARTITION OF app.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
      GRANT SELECT, INSERT, UPDATE, DELETE ON app.projects, app.events TO ${app};
      INSERT INTO app.projects (org_id, name) VALUES ('${A}', 'a1'), ('${B}', 'b1');
      INSERT INTO app.events VALUES ('${A}', '2025-05-01', 'x'), ('${B}', '2026-05-01', 'y');
      RESET ROLE;`);
    return db;
  }

  beforeAll(async () => {
    await ctx.db.runScript(`
      CREATE ROLE ${owner} LOGIN PASSWORD 'secret';
      CREATE ROLE ${app} LOGIN PASSWORD 'secret';
      CREATE ROLE ${auditor} LOGIN PASSWORD 'secret' BYPASSRLS;
      -- The app role has its table grants, and no USAGE on the schema.
      CREATE SCHEMA app AUTHORIZATION ${owner};
      CREATE TABLE app.projects (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, org_id uuid NOT NULL, name text NOT NULL);
      ALTER TABLE app.projects OWNER TO ${owner};
      GRANT SELECT, INSERT, UPDATE, DELETE ON app.projects TO ${app};
      INSERT INTO app.projects (org_id, name) VALUES ('${A}', 'a1'), ('${B}', 'b1');
      -- A hand-written policy without NULLIF, beside the one rlsctl writes.
      CREATE SCHEMA legacy;
      GRANT USAGE ON SCHEMA legacy TO ${app};
      CREATE TABLE legacy.invoices (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant_id uuid NOT NULL, total numeric NOT NULL);
      ALTER TABLE legacy.invoices ENABLE ROW LEVEL SECURITY;
      CREATE POLICY tenant_isolation ON legacy.invoices TO ${app} USING (tenant_id = current_setting('app.tenant_id', true)::uuid);
      CREATE TABLE legacy.receipts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant_id uuid NOT NULL, total numeric NOT NULL);
      ALTER TABLE legacy.receipts ENABLE ROW LEVEL SECURITY;
      CREATE POLICY tenant_isolation ON legacy.receipts TO ${app} USING (tenant_id = (SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid));
      GRANT SELECT ON legacy.invoices, legacy.receipts TO ${app};
      INSERT INTO legacy.invoices (tenant_id, total) VALUES ('${A}', 10), ('${B}', 20);
      INSERT INTO legacy.receipts (tenant_id, total) VALUES ('${A}', 10), ('${B}', 20);`);
    work = mkdtempSync(path.join(tmpdir(), 'rlsctl-trouble-'));
    policy = path.join(work, 'policy.yaml');
    writeFileSync(
      policy,
      `version: 1\ntenant:\n  setting: app.tenant_id\n  type: uuid\n  column: org_id\nroles:\n  app: [${app}]\nschemas:\n  app:\n    tables:\n      projects: tenant\n      events: tenant\n`,
    );
    writeFileSync(path.join(work, 'queries.sql'), '-- name: list_projects\nSELECT id, name FROM app.projects ORDER BY id;\n');
  });

  afterAll(async () => {
    for (const db of extra) await db.drop();
    rmSync(work, { recursive: true, force: true });
  });

  it('connection refused: exit 3, the address, and the hint', async () => {
    const r = await runCli(['audit', '--db', 'postgres://app:s3cret@127.0.0.1:1/app']);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(
      'rlsctl: cannot connect to postgres://app:***@127.0.0.1:1/app: connect ECONNREFUSED 127.0.0.1:1\n  hint: is the server running and listening on that host and port?\n',
    );
  });

  it('password authentication failed: exit 3, the user, never the password', async () => {
    const url = new URL(ctx.db.urlAs(app));
    url.password = 'wrong-password';
    const r = await runCli(['audit', '--db', url.toString()]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(
      `: password authentication failed for user "${app}"\n  hint: the password was refused: check the user and password (PGPASSWORD or the connection string)\n`,
    );
    expect(r.stderr).toContain(`postgres://${app}:***@`);
    expect(r.stderr).not.toContain('wrong-password');
  });

  it('permission denied for schema: verify says the app role cannot reach the tables and gives the GRANT; explain reports EXP004', async () => {
    const app2 = await ctx.db.client();
    try {
      await app2.query(`SET ROLE ${app}`);
      await expect(app2.query('SELECT count(*) FROM app.projects')).rejects.toThrow('permission denied for schema app');
    } finally {
      await app2.end();
    }
    const verify = await runCli([
      'verify',
      '--db',
      ctx.db.url,
      '--schema',
      'app',
      '--app-role',
      app,
      '--tenant-setting',
      'app.tenant_id',
      '--tenant-column',
      'org_id',
    ]);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stderr).toContain(
      `note: ${app} holds privileges on app.projects but not USAGE on the schema app: verify could not probe it, and the application's queries there fail with "permission denied for schema app"\n  hint: GRANT USAGE ON SCHEMA app TO ${app};\n`,
    );
    const explain = await runCli([
      'explain',
      path.join(work, 'queries.sql'),
      '--db',
      ctx.db.url,
      '--schema',
      'app',
      '--app-role',
      app,
      '--tenant-setting',
      'app.tenant_id',
      '--tenant-column',
      'org_id',
    ]);
    expect(explain.code).toBe(1);
    expect(explain.stdout).toContain('error EXP004 query-failed query list_projects could not be planned: permission denied for schema app');
  });

  it('SET ROLE not allowed: verify and explain exit 3 with the GRANT to run', async () => {
    const facts = ['--schema', 'legacy', '--app-role', app, '--tenant-setting', 'app.tenant_id'];
    const verify = await runCli(['verify', '--db', ctx.db.urlAs(auditor), ...facts]);
    expect(verify.code).toBe(3);
    expect(verify.stderr).toContain(
      `rlsctl: verify cannot act as the app roles: ${auditor} cannot SET ROLE to ${app} (permission denied to set role "${app}")\n`,
    );
    expect(verify.stderr).toContain(`  GRANT ${app} TO ${auditor};`);
    const explain = await runCli(['explain', path.join(work, 'queries.sql'), '--db', ctx.db.urlAs(auditor), ...facts]);
    expect(explain.code, explain.stderr).toBe(3);
    expect(explain.stderr).toContain(`rlsctl: ${auditor} cannot SET ROLE to the app role ${app}: permission denied to set role "${app}"\n`);
    expect(explain.stderr).toContain(`GRANT ${app} TO ${auditor};`);
  });

  it('the empty-string tenant: a hand-written cast fails after SET LOCAL ends, NULLIF returns no rows; verify and audit name it', async () => {
    const client = await ctx.db.client();
    try {
      await client.query(`SET ROLE ${app}`);
      // A fresh session: the setting was never set, current_setting(..., true) is NULL, no rows.
      expect((await client.query('SELECT count(*)::int AS n FROM legacy.invoices')).rows[0].n).toBe(0);
      await client.query('BEGIN');
      await client.query(`SELECT pg_catalog.set_config('app.tenant_id', '${A}', true)`);
      expect((await client.query('SELECT count(*)::int AS n FROM legacy.invoices')).rows[0].n).toBe(1);
      await client.query('COMMIT');
      // After the transaction the setting reads as '' for the rest of the session.
      expect((await client.query(`SELECT current_setting('app.tenant_id', true) AS v`)).rows[0].v).toBe('');
      await expect(client.query('SELECT count(*) FROM legacy.invoices')).rejects.toMatchObject({
        code: '22P02',
        message: 'invalid input syntax for type uuid: ""',
      });
      expect((await client.query('SELECT count(*)::int AS n FROM legacy.receipts')).rows[0].n).toBe(0);
    } finally {
      await client.end();
    }
    const facts = ['--schema', 'legacy', '--app-role', app, '--tenant-setting', 'app.tenant_id'];
    const verify = await runCli(['verify', '--db', ctx.db.url, ...facts]);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toContain(
      `error VER003 unset-context-error ${app}'s query on legacy.invoices fails with no tenant set instead of returning zero rows (after a transaction-local tenant ended: invalid input syntax for type uuid: "" [22P02])`,
    );
    expect(verify.stdout).not.toContain('on legacy.receipts fails');
    const audit = await runCli(['audit', '--db', ctx.db.url, ...facts]);
    expect(audit.code).toBe(1);
    expect(audit.stdout).toContain(
      "error RLS021 empty-setting-cast policy tenant_isolation on legacy.invoices casts app.tenant_id::uuid without NULLIF(..., ''): queries fail once a transaction-local tenant has ended",
    );
  });

  it("the compiled script sent as one query string: a syntax error at psql's \\gexec, and nothing ran; --transactional runs in one transaction", async () => {
    const db = await exampleDatabase();
    const compiled = await runCli(['compile', '--policies', policy]);
    expect(compiled.code).toBe(0);
    // What a migration tool does that sends a file as one query string: PostgreSQL parses all of it first.
    const client = await db.client();
    try {
      await expect(client.query(compiled.stdout)).rejects.toMatchObject({ code: '42601', message: 'syntax error at or near "\\"' });
      const policies = `SELECT count(*)::int AS n FROM pg_policy WHERE polrelid = 'app.projects'::regclass`;
      expect((await client.query<{ n: number }>(policies)).rows[0].n).toBe(0);
      // The transactional kind, in the tool's own transaction.
      const transactional = await runCli(['compile', '--transactional', '--policies', policy]);
      expect(transactional.code).toBe(0);
      await client.query('BEGIN');
      await client.query(transactional.stdout);
      await client.query('COMMIT');
      expect((await client.query<{ n: number }>(policies)).rows[0].n).toBe(2);
      const { rows } = await client.query<{ valid: boolean }>(`SELECT indisvalid AS valid FROM pg_index WHERE indexrelid = 'app.events_org_id_idx'::regclass`);
      expect(rows).toEqual([{ valid: true }]);
    } finally {
      await client.end();
    }
    const plan = await runCli(['plan', '--check', '--db', db.url, '--policies', policy]);
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
  });

  it("a partitioned table's index in compile output: psql builds each partition's concurrently and attaches it, as apply does", async () => {
    const db = await exampleDatabase();
    const dir = mkdtempSync(path.join(tmpdir(), 'rlsctl-trouble-'));
    try {
      const file = path.join(dir, 'rls.sql');
      const compiled = await runCli(['compile', '--policies', policy, '-o', file]);
      expect(compiled.code, compiled.stderr).toBe(0);
      const r = await runPsql(db.url, ['-e', '-f', file]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('CREATE INDEX CONCURRENTLY ON app.events_2025 (org_id);');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const { rows } = await db.query<{ valid: boolean }>(`SELECT indisvalid AS valid FROM pg_index WHERE indexrelid = 'app.events_org_id_idx'::regclass`);
    expect(rows).toEqual([{ valid: true }]);
    const plan = await runCli(['plan', '--check', '--db', db.url, '--policies', policy]);
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
  });

  it('lock timeout during apply: the session holding the table is named; nothing was changed', async () => {
    const db = await exampleDatabase();
    const holder = new pg.Client({ connectionString: db.url, application_name: 'nightly-report' });
    holder.on('error', () => undefined);
    await holder.connect();
    try {
      await lockTimeouts(db, holder);
    } finally {
      await holder.end().catch(() => undefined);
    }
  });

  async function lockTimeouts(db: TestDatabase, holder: pg.Client): Promise<void> {
    const pid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT count(*) FROM app.projects');
      const r = await runCli(['apply', '--db', db.url, '--policies', policy, '--lock-timeout', '0.2']);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(
        /^rlsctl: apply failed at "create policy rlsctl_tenant_guard on app\.(events|projects) [^"]*" \(policy rlsctl_tenant_guard on app\.(events|projects)\): canceling statement due to lock timeout; nothing was changed: the transaction was rolled back\n/,
      );
      expect(r.stderr).toMatch(
        new RegExp(
          `\\n  hint: another transaction holds a lock on app\\.projects longer than lock_timeout: pid ${pid} \\(user postgres, application nightly-report, idle in transaction, in a transaction for \\d+ s; holds AccessShareLock\\)\\n`,
        ),
      );
      expect(r.stderr).toContain(`to end it now: SELECT pg_catalog.pg_terminate_backend(${pid});`);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
    }
    const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_policy`);
    expect(rows[0].n).toBe(0);

    // The index phase: CREATE INDEX CONCURRENTLY waits for every older transaction of the database, whatever it reads.
    const first = await runCli(['apply', '--db', db.url, '--policies', policy, '--quiet']);
    expect(first.code, first.stderr).toBe(0);
    await db.query('DROP INDEX app.projects_org_id_idx');
    try {
      await holder.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await holder.query('SELECT count(*) FROM pg_catalog.pg_class');
      const r = await runCli(['apply', '--db', db.url, '--policies', policy, '--lock-timeout', '0.2']);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain('(index projects_org_id_idx on app.projects): canceling statement due to lock timeout; 0 earlier statements');
      expect(r.stderr).toContain('stay applied; the INVALID index app.projects_org_id_idx it left was dropped; run apply again once the cause is fixed');
      expect(r.stderr).toMatch(
        new RegExp(
          `\\n  hint: CREATE INDEX CONCURRENTLY waits for the transactions of this database that were open when it started, whatever they read, and lock_timeout ended the wait; open now: pid ${pid} \\(user postgres, application nightly-report, idle in transaction, in a transaction for \\d+ s\\)\\n`,
        ),
      );
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
    }
    // The failed build left no INVALID index behind.
    const { rows: idx } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_index WHERE indrelid = 'app.projects'::regclass AND NOT indisvalid`);
    expect(idx[0].n).toBe(0);
  }
});
