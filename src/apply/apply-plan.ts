import type pg from 'pg';
import { performance } from 'node:perf_hooks';
import { asDatabaseError, type Database } from '../db/connection.js';
import type { Statement } from '../compile/statement.js';
import { DatabaseError, UsageError } from '../errors.js';
import { introspectCatalog } from '../catalog/introspect-catalog.js';
import { hashCatalog } from '../catalog/hash-catalog.js';
import { planOnClient, plannedSchemas } from '../plan/build-plan.js';
import { planProblems, type Plan } from '../plan/plan.js';
import { acquireApplyLock, releaseApplyLock } from './advisory-lock.js';
import { checkPrivileges } from './check-privileges.js';
import { qualify } from '../compile/quote.js';
import { GUARD_SETTING } from '../compile/partition-trigger.js';
import { describeIndexBuild, indexLabel, watchIndexBuild, type IndexBuildProgress } from './index-build-progress.js';
import { withLockHolders } from './lock-diagnostics.js';

export { describeIndexBuild, type IndexBuildProgress } from './index-build-progress.js';

/**
 * Run a plan.
 *
 * 1. Take the apply lock (advisory-lock.ts): a second apply waits for the
 *    first to finish, then finds the database changed and plans again.
 * 2. One transaction for every RLS flag and policy: all or nothing. Inside
 *    it, lock_timeout (default 5 s) so that apply never queues behind a long
 *    transaction holding one of its tables (CREATE POLICY and ALTER TABLE
 *    take ACCESS EXCLUSIVE, and a waiting ACCESS EXCLUSIVE request blocks
 *    every reader behind it), and statement_timeout (default 60 s).
 *    The catalog is read again under the lock; if it is not the one the plan
 *    was made from, the plan is made again in the transaction. Ownership of
 *    every table is checked before the first statement.
 * 3. Then the index statements, one by one outside any transaction (CREATE
 *    INDEX CONCURRENTLY cannot run inside one), with the same lock_timeout
 *    and no statement_timeout by default (a build on a large table takes as
 *    long as it takes). A build that fails leaves an INVALID index behind:
 *    it is dropped at once (retried; see dropIfInvalid), or the error gives
 *    the statement to drop it, and the next plan would rebuild it anyway.
 *
 * A statement that gives up waiting for a lock names who it waited for
 * (lock-diagnostics.ts); a running index build reports its progress
 * (index-build-progress.ts).
 */
export interface ApplyOptions {
  /**
   * What apply is doing, as a line for people and as data. Giving it also
   * makes apply watch each index build from a second connection (see
   * watchIndexBuild in index-build-progress.ts): leave it out where nobody is looking.
   */
  onProgress?: (line: string, event: ApplyProgress) => void;
  /** How often a running index build is polled for progress (ms); default 500. */
  progressPollMs?: number;
  /** lock_timeout for every statement (ms); default 5,000. */
  lockTimeoutMs?: number;
  /** statement_timeout for the transaction phase (ms); default 60,000. */
  statementTimeoutMs?: number;
  /**
   * Deadline of the whole transaction phase, from its BEGIN (ms); default
   * 60,000. lock_timeout is per statement: N tables that each wait almost
   * that long would keep the first tables locked for N times it.
   */
  transactionTimeoutMs?: number;
  /** statement_timeout for each index build (ms); default 0, no limit. */
  indexTimeoutMs?: number;
  /** The wait before retrying to drop an INVALID index a failed build left (ms), doubled the second time; default 1,000. */
  invalidIndexRetryMs?: number;
  /** How long to wait for another apply on the same database (ms); default 10 minutes. */
  lockWaitMs?: number;
}

/** A step of apply, for a progress display. */
export type ApplyProgress =
  | { kind: 'waiting-for-lock' }
  | { kind: 'replanning' }
  /** Statement `n` of `total` (numbered over the whole plan) starts. */
  | { kind: 'statement'; n: number; total: number; statement: Statement }
  /** An index build in progress, as pg_stat_progress_create_index reports it (PostgreSQL 12+). */
  | { kind: 'index-build'; n: number; total: number; statement: Statement; build: IndexBuildProgress };

export interface ApplyResult {
  /** The statements that ran, in order. */
  executed: Statement[];
  /** The plan that ran: the one given, or the one made again under the lock. */
  plan: Plan;
  /** True when the catalog had changed since the plan was made and the plan was made again. */
  replanned: boolean;
}

type Progress = (line: string, event: ApplyProgress) => void;

export async function applyPlan(db: Database, plan: Plan, options: ApplyOptions = {}): Promise<ApplyResult> {
  const progress: Progress = options.onProgress ?? (() => undefined);
  if (plan.statements.length === 0) return { executed: [], plan, replanned: false };
  const client = await db.connect();
  // A connection that dies mid-apply must reject the pending query, not crash the process.
  client.on('error', () => undefined);
  const executed: Statement[] = [];
  let locked = false;
  try {
    await acquireApplyLock(client, {
      waitMs: options.lockWaitMs ?? 10 * 60_000,
      onWait: () => progress('waiting for another rlsctl apply on this database to finish', { kind: 'waiting-for-lock' }),
    });
    locked = true;
    const { plan: current, replanned } = await runTransactionPhase(client, plan, options, executed, progress);
    await runIndexPhase(db, client, current, options, executed, progress);
    return { executed, plan: current, replanned };
  } catch (error) {
    throw asDatabaseError(error, executed.length === 0 ? 'apply (nothing was changed)' : 'apply');
  } finally {
    if (locked) await releaseApplyLock(client).catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}

async function runTransactionPhase(
  client: pg.Client,
  given: Plan,
  options: ApplyOptions,
  executed: Statement[],
  progress: Progress,
): Promise<{ plan: Plan; replanned: boolean }> {
  const lockMs = options.lockTimeoutMs ?? 5000;
  const statementMs = options.statementTimeoutMs ?? 60_000;
  const deadline = new TransactionDeadline(options.transactionTimeoutMs ?? 60_000, statementMs);
  await client.query('BEGIN');
  let plan = given;
  let replanned = false;
  try {
    await setTimeouts(client, lockMs, statementMs, true);
    // The partition event trigger stands aside for this transaction: the plan covers every partition it knows.
    await client.query(`SELECT pg_catalog.set_config($1, 'on', true)`, [GUARD_SETTING]);
    const catalog = await introspectCatalog(client, { schemas: plannedSchemas(plan.source.model) });
    if (hashCatalog(catalog) !== plan.catalogHash) {
      progress('the database changed since the plan was made: planning again under the lock', { kind: 'replanning' });
      plan = await planOnClient(client, plan.source.model, { prune: plan.source.prune, inTransaction: true, catalog });
      replanned = true;
      const problems = planProblems(plan);
      if (problems.length > 0) {
        throw new UsageError(`${problems.join('; ')}; nothing was changed`, {
          hint: 'the database changed while apply waited for its lock (a migration ran?): run rlsctl plan to see it, then bring the policy file and the database together and apply again',
        });
      }
    }
    await checkPrivileges(client, plan.statements);
    const statements = plan.statements.filter((s) => s.phase === 'transaction');
    let n = 0;
    const total = plan.statements.length;
    for (const statement of statements) {
      progress(`[${++n}/${total}] ${statement.summary}`, { kind: 'statement', n, total, statement });
      const bound = await deadline.bound(client, lockMs);
      try {
        if (bound === 'reached') throw deadline.error(statement, n - 1, statements.length);
        await client.query(statement.sql);
      } catch (error) {
        // Roll back first: the aborted transaction can run no query, and the lock holders are looked up next.
        await client.query('ROLLBACK').catch(() => undefined);
        if (bound === 'deadline' && (error as { code?: string }).code === '57014') throw deadline.error(statement, n - 1, statements.length, error);
        if (error instanceof DatabaseError) throw error;
        throw await withLockHolders(client, error, statement, statementError(error, statement, 'nothing was changed: the transaction was rolled back'));
      }
    }
    try {
      await client.query('COMMIT');
    } catch (error) {
      throw commitOutcome(error, statements);
    }
    executed.push(...statements);
    return { plan, replanned };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

async function runIndexPhase(db: Database, client: pg.Client, plan: Plan, options: ApplyOptions, executed: Statement[], progress: Progress): Promise<void> {
  const statements = plan.statements.filter((s) => s.phase === 'concurrent');
  if (statements.length === 0) return;
  await setTimeouts(client, options.lockTimeoutMs ?? 5000, options.indexTimeoutMs ?? 0, false);
  const total = plan.statements.length;
  let n = total - statements.length;
  // Progress of a build is read from another session, which finds this one by its backend pid.
  const pid = options.onProgress ? (await client.query<{ pid: number }>('SELECT pg_catalog.pg_backend_pid() AS pid')).rows[0].pid : undefined;
  for (const statement of statements) {
    const index = ++n;
    const line = `[${index}/${total}] ${statement.summary}`;
    progress(line, { kind: 'statement', n: index, total, statement });
    const watch =
      pid !== undefined && /^CREATE (UNIQUE )?INDEX CONCURRENTLY/.test(statement.sql)
        ? await watchIndexBuild(db, pid, options.progressPollMs ?? 500, (build) =>
            // The build's state first: on a narrow terminal the line is cut at the end.
            progress(`[${index}/${total}] ${indexLabel(statement)}: ${describeIndexBuild(build)}`, { kind: 'index-build', n: index, total, statement, build }),
          )
        : undefined;
    try {
      await client.query(statement.sql);
    } catch (error) {
      await watch?.stop();
      let leftover: Leftover = { note: '' };
      if (/^CREATE (UNIQUE )?INDEX CONCURRENTLY/.test(statement.sql) && statement.target.kind === 'index') {
        leftover = await dropIfInvalid(client, statement.target.schema, statement.target.name, options.invalidIndexRetryMs ?? 1000);
      }
      const committed = executed.length;
      const failure = await withLockHolders(
        client,
        error,
        statement,
        statementError(
          error,
          statement,
          `${committed} earlier statement${committed === 1 ? '' : 's'} (the policies and RLS flags, and indexes before this one) stay applied${leftover.note}; run apply again once the cause is fixed`,
        ),
      );
      if (!leftover.drop) throw failure;
      // The statement on a line of its own: the identifiers it quotes may hold any character.
      throw new DatabaseError(failure.message, {
        hint: `${failure.hint ? `${failure.hint}\n  ` : ''}to drop the INVALID index once the sessions using the table are done, run:\n    ${leftover.drop}`,
        cause: error,
      });
    } finally {
      await watch?.stop();
    }
    executed.push(statement);
  }
}

/**
 * COMMIT failed. An ERROR reply means the server rolled the transaction back:
 * nothing was changed, as for any other failure. A FATAL one, a lost
 * connection (no reply, or SQLSTATE class 08) does not say: the server may
 * have ended the session before the commit record or after it (a session
 * terminated while it waits for a synchronous standby has committed
 * locally). Then the outcome is unknown, and the error says how to find it.
 */
function commitOutcome(error: unknown, statements: Statement[]): unknown {
  const e = error as { code?: string; severity?: string; message?: string };
  const lost = typeof e?.code !== 'string' || e.code.startsWith('08') || e.severity === 'FATAL' || e.severity === 'PANIC';
  if (!lost) return error;
  const last = statements[statements.length - 1];
  return new DatabaseError(
    `apply lost its connection during COMMIT of the policy transaction (${e?.message ?? String(error)}): whether its ${statements.length} statement${statements.length === 1 ? '' : 's'} (RLS flags and policies) took effect is unknown; no index was built`,
    {
      hint: [
        'PostgreSQL commits all of them or none. To know which: run rlsctl plan with the same --db and policy file;',
        `  if it still lists "${last.summary}", nothing was committed; if not, all of it was. Either way rlsctl apply again does only what is missing.`,
      ].join('\n'),
      cause: error,
    },
  );
}

/**
 * The deadline of the transaction phase, enforced by the server: before each
 * statement, statement_timeout becomes the time left when that is shorter
 * than --statement-timeout (a statement's timer starts before its lock wait,
 * so it ends a wait that lock_timeout would let run on). The same on every
 * supported version, with no second connection and nothing to race COMMIT.
 */
class TransactionDeadline {
  private readonly started = performance.now();
  private limit: number;
  private binding = false;

  constructor(
    private readonly ms: number,
    statementMs: number,
  ) {
    this.limit = statementMs;
  }

  /** 'deadline' when the time left bounds the next statement, 'reached' when none is left. */
  async bound(client: pg.ClientBase, lockMs: number): Promise<'statement' | 'deadline' | 'reached'> {
    const left = Math.floor(this.ms - (performance.now() - this.started));
    if (left <= 0) return 'reached';
    if (left < this.limit) {
      this.limit = left;
      this.binding = true;
      await setTimeouts(client, lockMs, left, true);
    }
    return this.binding ? 'deadline' : 'statement';
  }

  error(statement: Statement, done: number, total: number, cause?: unknown): DatabaseError {
    return new DatabaseError(
      `apply stopped at "${statement.summary}": the policy transaction reached its deadline of ${formatMs(this.ms)} (--transaction-timeout) after ${done} of ${total} statements; nothing was changed: the transaction was rolled back`,
      {
        hint: 'its statements waited for locks that other sessions held (lock_timeout bounds each wait, the deadline all of them, so the tables locked first are not held for long): run apply again at a quieter time, or give it a longer --transaction-timeout',
        cause,
      },
    );
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

async function setTimeouts(client: pg.ClientBase, lockMs: number, statementMs: number, local: boolean): Promise<void> {
  await client.query(`SELECT pg_catalog.set_config('lock_timeout', $1, $3), pg_catalog.set_config('statement_timeout', $2, $3)`, [
    `${lockMs}ms`,
    `${statementMs}ms`,
    local,
  ]);
}

/**
 * A failed CREATE INDEX CONCURRENTLY leaves an INVALID index that every write
 * still maintains: drop it, with DROP INDEX CONCURRENTLY (it blocks no reads
 * or writes, and waits under lock_timeout for the transactions using the
 * table). A session that held up the build often holds up the drop too, so
 * it is tried three times, `retryMs` and then twice that apart. What happened
 * is part of the error: `; the INVALID index ... was dropped`, or that it
 * is still there with the exact statement to run (for the hint), or nothing
 * when no index was left.
 */
interface Leftover {
  /** Appended to the error's message. */
  note: string;
  /** The statement to run, when the index is still there. */
  drop?: string;
}

async function dropIfInvalid(client: pg.ClientBase, schema: string, name: string, retryMs: number): Promise<Leftover> {
  const drop = `DROP INDEX CONCURRENTLY IF EXISTS ${qualify(schema, name)};`;
  const dropped = `; the INVALID index ${schema}.${name} it left was dropped`;
  let reason = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, retryMs * attempt));
    try {
      const { rows } = await client.query<{ invalid: boolean }>(
        `SELECT NOT i.indisvalid AS invalid
           FROM pg_catalog.pg_index i
           JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relname = $2`,
        [schema, name],
      );
      if (!rows[0]?.invalid) return { note: attempt === 0 ? '' : dropped };
      await client.query(drop);
      return { note: dropped };
    } catch (error) {
      reason = (error as Error).message;
    }
  }
  return { note: `; it left the INVALID index ${schema}.${name}, which writes still maintain, and dropping it failed 3 times (${reason})`, drop };
}

/** A failed statement as exit 3, naming the statement, the object and PostgreSQL's reason. */
export function statementError(error: unknown, statement: Statement, consequence: string): DatabaseError {
  const e = error as { code?: string; message?: string };
  const object = !('table' in statement.target)
    ? `${statement.target.schema}.${statement.target.name}`
    : `${statement.target.kind} ${statement.target.name} on ${statement.target.schema}.${statement.target.table}`;
  const hints: Record<string, string> = {
    '42501': "apply needs to own the tables it changes (or be a superuser): run it as the tables' owner, often the migration role",
    '55P03':
      'another transaction holds a lock on the table longer than lock_timeout: find it in pg_stat_activity / pg_locks, or run apply again when it has finished',
    '57014': 'the statement ran longer than statement_timeout',
    '23505': 'the table holds duplicate values for a unique index the policy file declares: remove the duplicates first',
    '42704': 'a role or object the statement names does not exist',
  };
  const reason = e.code === '42501' ? `permission denied (${e.message})` : (e.message ?? String(error));
  return new DatabaseError(`apply failed at "${statement.summary}" (${object}): ${reason}; ${consequence}`, {
    hint: hints[e.code ?? ''] ?? `the statement was:\n${statement.sql}`,
    cause: error,
  });
}
