import { afterAll, beforeAll, expect, it } from 'vitest';
import type pg from 'pg';
import { parsePolicy } from '../../src/policy/load-policy.js';
import type { PolicyModel } from '../../src/policy/model.js';
import { buildPlan } from '../../src/plan/build-plan.js';
import { applyPlan, describeIndexBuild, type ApplyProgress } from '../../src/apply/apply-plan.js';
import { convergeDatabase } from '../../src/apply/converge.js';
import { openDatabase, type Database } from '../../src/db/connection.js';
import { factsFromModel } from '../../src/facts/resolve-facts.js';
import { runVerify, VERIFY_PASSES, type VerifyProgress } from '../../src/verify/run-verify.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';

/**
 * Progress of the long steps, as data: apply reports each index build from
 * pg_stat_progress_create_index, read on a second connection while the build
 * runs; verify reports relations done of total in each of its three passes.
 *
 * An index build is made to wait, not raced: a transaction that has written
 * to the table and stays open holds a lock that CREATE INDEX CONCURRENTLY
 * waits for ("waiting for writers before build"), so the build is certainly
 * in progress, and visible, until the test commits it.
 */

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';

describeEachServer('progress of apply and verify', (ctx) => {
  const app = uniqueName('papp');
  let model: PolicyModel;
  let db: Database;

  beforeAll(async () => {
    await ctx.db.runScript(`
      CREATE ROLE ${app};
      CREATE SCHEMA prog;
      GRANT USAGE ON SCHEMA prog TO ${app};
      CREATE TABLE prog.notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant_id uuid NOT NULL, body text NOT NULL);
      CREATE TABLE prog.tags (tenant_id uuid NOT NULL, name text NOT NULL, PRIMARY KEY (tenant_id, name));
      CREATE TABLE prog.labels (tenant_id uuid NOT NULL, label text NOT NULL);
      GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA prog TO ${app};
      INSERT INTO prog.notes (tenant_id, body) SELECT CASE WHEN g % 2 = 0 THEN '${A}'::uuid ELSE '${B}'::uuid END, 'note ' || g FROM generate_series(1, 200) g;
      INSERT INTO prog.tags VALUES ('${A}', 'red'), ('${B}', 'blue');
      INSERT INTO prog.labels VALUES ('${A}', 'x'), ('${B}', 'y');`);
    model = await parsePolicy([
      {
        file: 'policy.yaml',
        text: `version: 1\ntenant: { setting: app.tenant_id, type: uuid }\nroles: { app: [${app}] }\nschemas:\n  prog:\n    tables:\n      notes: tenant\n      tags: tenant\n      labels: tenant\n`,
      },
    ]);
    db = await openDatabase({ db: ctx.db.url });
    await convergeDatabase(db, model);
  });

  afterAll(async () => {
    await db?.close();
  });

  /** A Database that counts the dedicated connections apply opens. */
  function counting(database: Database): { db: Database; connections: () => number } {
    let n = 0;
    return {
      db: {
        ...database,
        connect: async () => {
          n++;
          return database.connect();
        },
      },
      connections: () => n,
    };
  }

  /** Drop the tenant index, and hold a write lock on the table so that its rebuild waits for us. */
  async function blockedRebuild(): Promise<pg.Client> {
    await ctx.db.query('DROP INDEX prog.labels_tenant_id_idx');
    const writer = await ctx.db.client();
    await writer.query('BEGIN');
    await writer.query(`INSERT INTO prog.labels VALUES ('${A}', 'held')`);
    return writer;
  }

  async function waitFor(condition: () => boolean | Promise<boolean>): Promise<void> {
    while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 20));
  }

  it('apply reports an index build as it runs: its phase and counters, read from pg_stat_progress_create_index', async () => {
    const writer = await blockedRebuild();
    const events: Array<{ line: string; event: ApplyProgress }> = [];
    const plan = await buildPlan(db.pool, model);
    expect(plan.statements.map((s) => s.sql)).toEqual(['CREATE INDEX CONCURRENTLY labels_tenant_id_idx ON prog.labels (tenant_id);']);
    const watched = counting(db);
    // The build waits for the writer through the lock manager, so under lock_timeout: a long one, so that
    // only the test's commit ends the wait.
    const applying = applyPlan(watched.db, plan, { onProgress: (line, event) => events.push({ line, event }), progressPollMs: 20, lockTimeoutMs: 600_000 });
    try {
      await waitFor(() => events.some((e) => e.event.kind === 'index-build'));
    } finally {
      await writer.query('COMMIT');
      await writer.end();
    }
    const result = await applying;
    expect(result.executed).toHaveLength(1);

    expect(events[0]).toEqual({
      line: '[1/1] build index labels_tenant_id_idx on prog.labels (tenant_id) concurrently: the tenant predicate needs an index that leads with the tenant column',
      event: { kind: 'statement', n: 1, total: 1, statement: plan.statements[0] },
    });
    const waiting = events.find((e) => e.event.kind === 'index-build')!;
    expect(waiting.event).toMatchObject({
      kind: 'index-build',
      n: 1,
      total: 1,
      build: { phase: 'waiting for writers before build', lockersTotal: 1, lockersDone: 0 },
    });
    expect(waiting.line).toBe('[1/1] index labels_tenant_id_idx on prog.labels: waiting for writers before build, 0 of 1 transaction (0%)');
    // The apply session and the one that watched its build.
    expect(watched.connections()).toBe(2);
    const { rows } = await ctx.db.query<{ valid: boolean }>(
      `SELECT indisvalid AS valid FROM pg_index WHERE indexrelid = 'prog.labels_tenant_id_idx'::regclass`,
    );
    expect(rows[0].valid).toBe(true);
  });

  it('apply without onProgress opens no second connection to watch a build', async () => {
    await ctx.db.query('DROP INDEX prog.labels_tenant_id_idx');
    const plan = await buildPlan(db.pool, model);
    expect(plan.statements).toHaveLength(1);
    const watched = counting(db);
    const result = await applyPlan(watched.db, plan);
    expect(result.executed).toHaveLength(1);
    expect(watched.connections()).toBe(1);
  });

  it('describeIndexBuild names the counter that means something in each phase', () => {
    const zero = { blocksDone: 0, blocksTotal: 0, tuplesDone: 0, tuplesTotal: 0, lockersDone: 0, lockersTotal: 0 };
    expect(describeIndexBuild({ ...zero, phase: 'building index: scanning table', blocksDone: 1204, blocksTotal: 8850 })).toBe(
      'building index: scanning table, 1,204 of 8,850 blocks (13%)',
    );
    expect(describeIndexBuild({ ...zero, phase: 'building index: loading tuples in tree', tuplesDone: 5, tuplesTotal: 10 })).toBe(
      'building index: loading tuples in tree, 5 of 10 tuples (50%)',
    );
    expect(describeIndexBuild({ ...zero, phase: 'waiting for old snapshots', lockersDone: 1, lockersTotal: 3 })).toBe(
      'waiting for old snapshots, 1 of 3 transactions (33%)',
    );
    // Counters an earlier phase left behind are not this phase's.
    expect(describeIndexBuild({ ...zero, phase: 'waiting for old snapshots', blocksTotal: 1, lockersTotal: 1 })).toBe(
      'waiting for old snapshots, 0 of 1 transaction (0%)',
    );
    expect(describeIndexBuild({ ...zero, phase: 'index validation: sorting tuples', blocksDone: 9, blocksTotal: 9 })).toBe('index validation: sorting tuples');
    expect(describeIndexBuild({ ...zero, phase: 'index validation: scanning table', blocksDone: 25612, blocksTotal: 96775, tuplesTotal: 3 })).toBe(
      'index validation: scanning table, 25,612 of 96,775 blocks (26%)',
    );
    expect(describeIndexBuild({ ...zero, phase: 'initializing' })).toBe('initializing');
  });

  it('verify reports the relations done of total in each pass, after a start line', async () => {
    const events: Array<{ line: string; event: VerifyProgress }> = [];
    const result = await runVerify(db, factsFromModel(model), { onProgress: (line, event) => events.push({ line, event }) });
    expect(result.leaks).toBe(0);
    expect(result.relations).toBe(3);

    expect(events[0].event).toEqual({ kind: 'start', relations: 3, roles: [app], tenants: [A, B] });
    expect(events[0].line).toMatch(/^verify: 3 relations, app role /);
    const steps = events.slice(1).map((e) => e.event as Extract<VerifyProgress, { kind: 'relations' }>);
    expect(steps.every((s) => s.kind === 'relations' && s.total === 3 && s.passes === 3)).toBe(true);
    // Each pass counts 0, 1, 2 (naming the relation it is about to probe) and ends at 3 of 3.
    for (const pass of [1, 2, 3]) {
      const mine = steps.filter((s) => s.pass === pass);
      expect(mine.map((s) => s.done)).toEqual([0, 1, 2, 3]);
      expect(
        mine
          .slice(0, 3)
          .map((s) => s.current)
          .sort(),
      ).toEqual(['prog.labels', 'prog.notes', 'prog.tags']);
      expect(mine[3].current).toBeUndefined();
    }
    expect(steps.map((s) => s.pass)).toEqual([1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
    expect(events.at(-1)!.line).toBe(`verify: pass 3/3 (${VERIFY_PASSES[2]}): 3 of 3 relations done`);
    expect(events.some((e) => e.line.startsWith('verify: pass 1/3 (no tenant, fresh session): 0 of 3 relations done, probing prog.'))).toBe(true);
  });
});
