import type pg from 'pg';
import { UsageError } from '../errors.js';

/**
 * Refuse a client that is inside a transaction block. BEGIN there is only a
 * WARNING: the READ ONLY and REPEATABLE READ of our BEGIN would silently not
 * apply, and our ROLLBACK would end the caller's transaction and their work.
 *
 * The server states the transaction status in every ReadyForQuery message
 * ('I' idle, 'T' in a block, 'E' in a failed block), as libpq's
 * PQtransactionStatus reports it; pg's Client exposes it as
 * getTransactionStatus(). It is read after a round trip of our own, so that
 * queries the caller queued and that have not finished yet count. A client
 * without that method (an older pg) is judged by the round trip itself:
 * now() is the start of the transaction and statement_timestamp() that of
 * the statement, equal only in the implicit transaction of one statement.
 * The probe reads nothing and writes nothing: the caller's transaction is as
 * it was.
 */
export async function refuseOpenTransaction(client: pg.ClientBase, what: string, hint: string): Promise<void> {
  let inBlock: boolean;
  try {
    const { rows } = await client.query<{ in_block: boolean }>('SELECT pg_catalog.now() <> pg_catalog.statement_timestamp() AS in_block');
    inBlock = rows[0].in_block;
  } catch (error) {
    // 25P02: the caller's transaction has failed; it is still open.
    if ((error as { code?: string }).code !== '25P02') throw error;
    inBlock = true;
  }
  const status = typeof client.getTransactionStatus === 'function' ? client.getTransactionStatus() : null;
  if (status === 'T' || status === 'E' || (status === null && inBlock)) {
    throw new UsageError(
      `${what} was given a client inside an open transaction${status === 'E' ? ' (a failed one)' : ''}: it would run in that transaction without READ ONLY and then roll it back, so it refuses; the transaction is untouched`,
      {
        hint,
      },
    );
  }
}
