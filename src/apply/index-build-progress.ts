import type pg from 'pg';
import type { Database } from '../db/connection.js';
import type { Statement } from '../compile/statement.js';

/**
 * The progress of an index build, for apply's progress display: watched from
 * a second connection in pg_stat_progress_create_index, and put in words.
 */

/** One row of pg_stat_progress_create_index; the counters that do not apply to the phase are 0. */
export interface IndexBuildProgress {
  /** PostgreSQL's words, e.g. `building index: scanning table`, `waiting for writers before build`. */
  phase: string;
  blocksDone: number;
  blocksTotal: number;
  tuplesDone: number;
  tuplesTotal: number;
  /** Transactions the build waits for (the `waiting for ...` phases). */
  lockersDone: number;
  lockersTotal: number;
}

/**
 * Watch one CREATE INDEX CONCURRENTLY from a second connection: the session
 * running it is busy until the build ends, and pg_stat_progress_create_index
 * (PostgreSQL 12+) shows another session's build to a role that is that
 * session's user. Each poll is a single short statement in its own
 * transaction, so it never holds the snapshot that the build's "waiting for
 * old snapshots" phase waits on for longer than the poll itself. Polls never
 * overlap. Progress is a courtesy: when the second connection cannot be made
 * (max_connections reached) or a poll fails, the build runs unwatched.
 */
export async function watchIndexBuild(
  db: Database,
  pid: number,
  pollMs: number,
  report: (build: IndexBuildProgress) => void,
): Promise<{ stop(): Promise<void> }> {
  let watcher: pg.Client;
  try {
    watcher = await db.connect();
  } catch {
    return { stop: async () => undefined };
  }
  watcher.on('error', () => undefined);
  let stopped = false;
  let ended = false;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> = Promise.resolve();
  const poll = async () => {
    try {
      const { rows } = await watcher.query<{ phase: string; bd: string; bt: string; td: string; tt: string; ld: string; lt: string }>(
        `SELECT phase, blocks_done AS bd, blocks_total AS bt, tuples_done AS td, tuples_total AS tt, lockers_done AS ld, lockers_total AS lt
           FROM pg_catalog.pg_stat_progress_create_index WHERE pid = $1`,
        [pid],
      );
      const row = rows[0];
      if (row && !stopped) {
        report({
          phase: row.phase,
          blocksDone: Number(row.bd),
          blocksTotal: Number(row.bt),
          tuplesDone: Number(row.td),
          tuplesTotal: Number(row.tt),
          lockersDone: Number(row.ld),
          lockersTotal: Number(row.lt),
        });
      }
    } catch {
      stopped = true;
      return;
    }
    if (!stopped) timer = setTimeout(tick, pollMs);
  };
  const tick = () => {
    inFlight = poll();
  };
  timer = setTimeout(tick, Math.min(pollMs, 100));
  return {
    async stop() {
      if (ended) return;
      ended = true;
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await inFlight;
      await watcher.end().catch(() => undefined);
    },
  };
}

export function indexLabel(statement: Statement): string {
  const t = statement.target;
  return t.kind === 'index' ? `index ${t.name} on ${t.schema}.${t.table}` : statement.summary;
}

/**
 * `building index: scanning table, 1,204 of 8,850 blocks (13%)`: the counter
 * that belongs to the phase. PostgreSQL leaves the counters of an earlier
 * phase in place (a "waiting for old snapshots" row still shows the blocks of
 * the scan before it), so the phase picks the counter, not which one is set.
 */
export function describeIndexBuild(build: IndexBuildProgress): string {
  const of = (done: number, total: number, unit: string) =>
    `${done.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} ${unit} (${Math.min(100, Math.floor((done * 100) / total))}%)`;
  const phase = build.phase;
  if (phase.startsWith('waiting for')) {
    return build.lockersTotal > 0 ? `${phase}, ${of(build.lockersDone, build.lockersTotal, build.lockersTotal === 1 ? 'transaction' : 'transactions')}` : phase;
  }
  if (phase.includes('scanning') && build.blocksTotal > 0) return `${phase}, ${of(build.blocksDone, build.blocksTotal, 'blocks')}`;
  if ((phase.includes('sorting') || phase.includes('loading')) && build.tuplesTotal > 0)
    return `${phase}, ${of(build.tuplesDone, build.tuplesTotal, 'tuples')}`;
  return phase;
}
