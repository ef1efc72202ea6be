import type { Database } from '../db/connection.js';
import type { PolicyModel } from '../policy/model.js';
import { compileStatements } from '../compile/render-sql.js';

/**
 * Bring a database to the policy file. Used for the embedded default of
 * audit, explain and verify (a throwaway database built from --schema).
 * Interim body: runs the compiled script; the planner-based apply replaces it.
 */
export async function convergeDatabase(db: Database, model: PolicyModel): Promise<void> {
  const client = await db.connect();
  try {
    const statements = compileStatements(model);
    await client.query('BEGIN');
    for (const s of statements.filter((s) => s.phase === 'transaction')) await client.query(s.sql);
    await client.query('COMMIT');
    for (const s of statements.filter((s) => s.phase === 'concurrent')) {
      // PostgreSQL cannot build an index on a partitioned table concurrently.
      await client.query(s.sql).catch(async () => client.query(s.sql.replace(' CONCURRENTLY', '')));
    }
  } finally {
    await client.end();
  }
}
