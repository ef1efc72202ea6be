import type { PolicyCommand } from '../policy/model.js';

/**
 * Decodings of catalog codes, each written once for every reader of the catalog.
 *
 * pg_policy.polcmd: `r` SELECT, `a` INSERT, `w` UPDATE, `d` DELETE, `*` ALL
 * (PostgreSQL's catalog documentation, pg_policy).
 */
const POLCMD: ReadonlyMap<string, PolicyCommand> = new Map([
  ['r', 'select'],
  ['a', 'insert'],
  ['w', 'update'],
  ['d', 'delete'],
  ['*', 'all'],
]);

export function decodePolcmd(code: string): PolicyCommand {
  const command = POLCMD.get(code);
  // A code PostgreSQL does not have cannot be judged: refuse it rather than guess a command.
  if (!command) throw new Error(`unknown pg_policy.polcmd ${JSON.stringify(code)}`);
  return command;
}
