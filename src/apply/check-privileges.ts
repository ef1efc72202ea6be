import type pg from 'pg';
import type { Statement } from '../compile/statement.js';
import { DatabaseError } from '../errors.js';
import { readTablesNotOwned } from '../catalog/read-catalog.js';

/**
 * ALTER TABLE ... ROW LEVEL SECURITY, CREATE / ALTER / DROP POLICY and CREATE
 * INDEX all require owning the table (being the owner role, a member that
 * inherits its privileges, or a superuser); no GRANT confers them. Checked
 * for every table of the plan in one query before the first statement, so a
 * role without the rights fails naming every table it cannot change, with
 * nothing changed, instead of at the 400th statement.
 */
export async function checkPrivileges(client: pg.ClientBase, statements: Statement[]): Promise<void> {
  const tables = new Map<string, { schema: string; name: string }>();
  for (const s of statements) {
    // The partition event trigger's objects: plan requires a superuser for them (src/compile/partition-trigger.ts).
    if (s.target.kind === 'function') continue;
    const name = s.target.kind === 'table' ? s.target.name : s.target.table;
    tables.set(`${s.target.schema}.${name}`, { schema: s.target.schema, name });
  }
  if (tables.size === 0) return;
  const list = [...tables.values()];
  const rows = await readTablesNotOwned(client, list);
  if (rows.length === 0) return;
  const shown = rows.slice(0, 10).map((r) => `${r.schema}.${r.name} (owner ${r.owner})`);
  if (rows.length > 10) shown.push(`and ${rows.length - 10} more`);
  throw new DatabaseError(
    `permission denied: role ${rows[0].me} must own the tables it changes (ALTER TABLE, CREATE POLICY and CREATE INDEX require ownership) and does not own ${shown.join(', ')}; nothing was changed`,
    { hint: "run apply as the tables' owner (often the migration role) or a member of it, or as a superuser" },
  );
}
