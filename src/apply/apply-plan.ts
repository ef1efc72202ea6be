import type pg from 'pg';
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
 *    it is dropped at once, and the next plan would rebuild it anyway.
 */
export interface ApplyOptions {
  onProgress?: (line: string) => void;
  /** lock_timeout for every statement (ms); default 5,000. */
  lockTimeoutMs?: number;
  /** statement_timeout for the transaction phase (ms); default 60,000. */
  statementTimeoutMs?: number;
  /** statement_timeout for each index build (ms); default 0, no limit. */
  indexTimeoutMs?: number;
  /** How long to wait for another apply on the same database (ms); default 10 minutes. */
  lockWaitMs?: number;
}

export interface ApplyResult {
  /** The statements that ran, in order. */
  executed: Statement[];
  /** The plan that ran: the one given, or the one made again under the lock. */
  plan: Plan;
  /** True when the catalog had changed since the plan was made and the plan was made again. */
  replanned: boolean;
}

export async function applyPlan(db: Database, plan: Plan, options: ApplyOptions = {}): Promise<ApplyResult> {
  const progress = options.onProgress ?? (() => undefined);
  if (plan.statements.length === 0) return { executed: [], plan, replanned: false };
  const client = await db.connect();
  // A connection that dies mid-apply must reject the pending query, not crash the process.
  client.on('error', () => undefined);
  const executed: Statement[] = [];
  let locked = false;
  try {
    await acquireApplyLock(client, {
      waitMs: options.lockWaitMs ?? 10 * 60_000,
      onWait: () => progress('waiting for another rlsctl apply on this database to finish'),
    });
    locked = true;
    const { plan: current, replanned } = await runTransactionPhase(client, plan, options, executed, progress);
    await runIndexPhase(client, current, options, executed, progress);
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
  progress: (line: string) => void,
): Promise<{ plan: Plan; replanned: boolean }> {
  await client.query('BEGIN');
  let plan = given;
  let replanned = false;
  try {
    await setTimeouts(client, options.lockTimeoutMs ?? 5000, options.statementTimeoutMs ?? 60_000, true);
    const catalog = await introspectCatalog(client, { schemas: plannedSchemas(plan.source.model) });
    if (hashCatalog(catalog) !== plan.catalogHash) {
      progress('the database changed since the plan was made: planning again under the lock');
      plan = await planOnClient(client, plan.source.model, { prune: plan.source.prune, inTransaction: true, catalog });
      replanned = true;
      const problems = planProblems(plan);
      if (problems.length > 0) throw new UsageError(`${problems.join('; ')}; nothing was changed`);
    }
    await checkPrivileges(client, plan.statements);
    const statements = plan.statements.filter((s) => s.phase === 'transaction');
    let n = 0;
    for (const statement of statements) {
      progress(`[${++n}/${plan.statements.length}] ${statement.summary}`);
      try {
        await client.query(statement.sql);
      } catch (error) {
        throw statementError(error, statement, 'nothing was changed: the transaction was rolled back');
      }
    }
    await client.query('COMMIT');
    executed.push(...statements);
    return { plan, replanned };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

async function runIndexPhase(client: pg.Client, plan: Plan, options: ApplyOptions, executed: Statement[], progress: (line: string) => void): Promise<void> {
  const statements = plan.statements.filter((s) => s.phase === 'concurrent');
  if (statements.length === 0) return;
  await setTimeouts(client, options.lockTimeoutMs ?? 5000, options.indexTimeoutMs ?? 0, false);
  const offset = plan.statements.length - statements.length;
  let n = offset;
  for (const statement of statements) {
    progress(`[${++n}/${plan.statements.length}] ${statement.summary}`);
    try {
      await client.query(statement.sql);
    } catch (error) {
      if (/^CREATE (UNIQUE )?INDEX CONCURRENTLY/.test(statement.sql) && statement.target.kind === 'index') {
        await dropIfInvalid(client, statement.target.schema, statement.target.name);
      }
      const committed = executed.length;
      throw statementError(
        error,
        statement,
        `${committed} earlier statement${committed === 1 ? '' : 's'} (the policies and RLS flags, and indexes before this one) stay applied; run apply again once the cause is fixed`,
      );
    }
    executed.push(statement);
  }
}

async function setTimeouts(client: pg.ClientBase, lockMs: number, statementMs: number, local: boolean): Promise<void> {
  await client.query(`SELECT pg_catalog.set_config('lock_timeout', $1, $3), pg_catalog.set_config('statement_timeout', $2, $3)`, [
    `${lockMs}ms`,
    `${statementMs}ms`,
    local,
  ]);
}

/** A failed CREATE INDEX CONCURRENTLY leaves an INVALID index that writes still maintain: remove it. */
async function dropIfInvalid(client: pg.ClientBase, schema: string, name: string): Promise<void> {
  try {
    const { rows } = await client.query<{ invalid: boolean }>(
      `SELECT NOT i.indisvalid AS invalid
         FROM pg_catalog.pg_index i
         JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = $2`,
      [schema, name],
    );
    if (rows[0]?.invalid) {
      await client.query(`DROP INDEX CONCURRENTLY IF EXISTS ${qualify(schema, name)}`);
    }
  } catch {
    // The next plan sees the invalid index and rebuilds it.
  }
}

/** A failed statement as exit 3, naming the statement, the object and PostgreSQL's reason. */
export function statementError(error: unknown, statement: Statement, consequence: string): DatabaseError {
  const e = error as { code?: string; message?: string };
  const object =
    statement.target.kind === 'table' ? `${statement.target.schema}.${statement.target.name}` : `${statement.target.kind} ${statement.target.name} on ${statement.target.schema}.${statement.target.table}`;
  const hints: Record<string, string> = {
    '42501': 'apply needs to own the tables it changes (or be a superuser): run it as the tables\' owner, often the migration role',
    '55P03': 'another transaction holds a lock on the table longer than lock_timeout: find it in pg_stat_activity / pg_locks, or run apply again when it has finished',
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
