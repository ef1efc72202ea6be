import type pg from 'pg';
import type { Statement } from '../compile/statement.js';
import { DatabaseError } from '../errors.js';
import { qualify } from '../compile/quote.js';

/**
 * Lock diagnostics: when a statement of apply gave up waiting for a lock
 * (lock_timeout, SQLSTATE 55P03), who it waited for, in the error's hint.
 */

/**
 * A lock timeout (55P03) names the sessions that hold a lock on the table, as
 * they are just after it: usually one long transaction (a report, an idle
 * session that never committed) that apply would otherwise have queued
 * behind, with every reader of the table queued behind apply. Not their
 * queries: a query text can hold data.
 */
export async function withLockHolders(client: pg.ClientBase, cause: unknown, statement: Statement, failure: DatabaseError): Promise<DatabaseError> {
  if ((cause as { code?: string }).code !== '55P03') return failure;
  const table = !('table' in statement.target) ? statement.target.name : statement.target.table;
  let holders: Array<{ pid: number; usename: string | null; app: string | null; state: string | null; seconds: number | null; mode: string }>;
  try {
    ({ rows: holders } = await client.query(
      `SELECT a.pid, a.usename::pg_catalog.text AS usename, a.application_name AS app, a.state,
              pg_catalog.floor(EXTRACT(epoch FROM pg_catalog.now() - a.xact_start))::int AS seconds, l.mode
         FROM pg_catalog.pg_locks l
         JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'relation' AND l.granted AND l.relation = pg_catalog.to_regclass($1)
          AND l.pid <> pg_catalog.pg_backend_pid()
        ORDER BY a.xact_start NULLS LAST, a.pid
        LIMIT 5`,
      [qualify(statement.target.schema, table)],
    ));
  } catch {
    return failure;
  }
  if (holders.length === 0) return statement.phase === 'concurrent' ? withOldTransactions(client, cause, failure) : failure;
  const who = holders.map(
    (h) =>
      `pid ${h.pid} (user ${h.usename ?? '?'}${h.app ? `, application ${h.app}` : ''}${h.state ? `, ${h.state}` : ''}${h.seconds !== null ? `, in a transaction for ${h.seconds} s` : ''}; holds ${h.mode})`,
  );
  return new DatabaseError(failure.message, {
    hint: [
      `another transaction holds a lock on ${statement.target.schema}.${table} longer than lock_timeout: ${who.join(', ')}`,
      `  run apply again when ${holders.length === 1 ? 'it has' : 'they have'} finished, at a quieter time, or with a longer --lock-timeout; to end ${holders.length === 1 ? 'it' : 'them'} now: SELECT pg_catalog.pg_terminate_backend(${holders[0].pid});`,
    ].join('\n'),
    cause,
  });
}

/**
 * CREATE INDEX CONCURRENTLY also waits, through the lock manager and so under
 * lock_timeout, for every transaction of the database that holds a snapshot
 * older than its own ("waiting for old snapshots"), whatever table it reads:
 * a pg_dump or a long report anywhere stops the build. Name the oldest.
 */
async function withOldTransactions(client: pg.ClientBase, cause: unknown, failure: DatabaseError): Promise<DatabaseError> {
  let old: Array<{ pid: number; usename: string | null; app: string | null; state: string | null; seconds: number }>;
  try {
    ({ rows: old } = await client.query(
      `SELECT a.pid, a.usename::pg_catalog.text AS usename, a.application_name AS app, a.state,
              pg_catalog.floor(EXTRACT(epoch FROM pg_catalog.now() - a.xact_start))::int AS seconds
         FROM pg_catalog.pg_stat_activity a
        WHERE a.datname = pg_catalog.current_database() AND a.pid <> pg_catalog.pg_backend_pid()
          AND a.xact_start IS NOT NULL AND (a.backend_xmin IS NOT NULL OR a.backend_xid IS NOT NULL)
        ORDER BY a.xact_start, a.pid
        LIMIT 5`,
    ));
  } catch {
    return failure;
  }
  const who = old.map(
    (h) =>
      `pid ${h.pid} (user ${h.usename ?? '?'}${h.app ? `, application ${h.app}` : ''}${h.state ? `, ${h.state}` : ''}, in a transaction for ${h.seconds} s)`,
  );
  return new DatabaseError(failure.message, {
    hint: [
      'CREATE INDEX CONCURRENTLY waits for the transactions of this database that were open when it started, whatever they read, and lock_timeout ended the wait' +
        (who.length > 0 ? `; open now: ${who.join(', ')}` : ''),
      '  while it waits it blocks no reads or writes of the table: run apply again with a longer --lock-timeout (e.g. --lock-timeout 600), or when long transactions (pg_dump, reports, sessions idle in transaction) have ended',
    ].join('\n'),
    cause,
  });
}
