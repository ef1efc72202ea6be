import type pg from 'pg';
import { parseSync } from 'libpg-query';
import { loadParser } from '../policy/expression.js';

/**
 * Split a SQL script into its statements with the real parser and run them
 * one by one, as psql does. Sent as one multi-statement query, the script
 * would run as one implicit transaction, and CREATE INDEX CONCURRENTLY cannot
 * run inside a transaction block.
 */
export function splitStatements(sql: string): string[] {
  const bytes = Buffer.from(sql, 'utf8');
  const result = parseSync(sql) as { stmts?: Array<{ stmt_location?: number; stmt_len?: number }> };
  return (result.stmts ?? [])
    .map((s) => {
      const start = s.stmt_location ?? 0;
      const end = s.stmt_len ? start + s.stmt_len : bytes.length;
      return bytes.subarray(start, end).toString('utf8').trim();
    })
    .filter((s) => s.length > 0);
}

export async function runScript(client: pg.Client | pg.PoolClient, sql: string): Promise<void> {
  await loadParser();
  for (const statement of splitStatements(sql)) await client.query(statement);
}
