import type pg from 'pg';
import { DatabaseError } from '../errors.js';

/**
 * The lock that keeps two applies on one database from interleaving: a
 * session-level advisory lock, held from before the transaction phase until
 * the last index is built, keyed on the bytes of "rlsctl" (advisory locks are
 * per database, so applies to different databases of a cluster do not wait).
 *
 * Session-level rather than transaction-level because the index phase runs
 * outside any transaction (CREATE INDEX CONCURRENTLY cannot run in one) and
 * must be serialised too: two applies building the same index would race for
 * its name.
 *
 * It is taken with pg_try_advisory_lock in a loop, not by waiting in
 * pg_advisory_lock: a session waiting inside a statement holds a snapshot,
 * and CREATE INDEX CONCURRENTLY (in the apply that holds the lock) waits for
 * every transaction with an older snapshot to end — the two would wait for
 * each other. Between tries the waiting session holds nothing.
 */
export const APPLY_LOCK_KEY = '125810117932140';

export async function acquireApplyLock(client: pg.ClientBase, options: { waitMs: number; pollMs?: number; onWait?: () => void }): Promise<void> {
  const deadline = Date.now() + options.waitMs;
  let told = false;
  for (;;) {
    const { rows } = await client.query<{ ok: boolean }>('SELECT pg_catalog.pg_try_advisory_lock($1::pg_catalog.int8) AS ok', [APPLY_LOCK_KEY]);
    if (rows[0].ok) return;
    if (!told) {
      options.onWait?.();
      told = true;
    }
    if (Date.now() >= deadline) {
      throw new DatabaseError(`another rlsctl apply has been running on this database for more than ${Math.round(options.waitMs / 1000)} s`, {
        hint: 'wait for it to finish, or find it in pg_stat_activity (application_name rlsctl) and pg_locks (locktype advisory)',
      });
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 200));
  }
}

export async function releaseApplyLock(client: pg.ClientBase): Promise<void> {
  await client.query('SELECT pg_catalog.pg_advisory_unlock($1::pg_catalog.int8)', [APPLY_LOCK_KEY]);
}
