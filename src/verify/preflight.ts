import type pg from 'pg';
import { DatabaseError, UsageError } from '../errors.js';
import { quoteIdent } from '../compile/quote.js';

/**
 * The connecting role must see every row (superuser or BYPASSRLS: it writes
 * the rows of both tenants and knows the true owner of a row) and must be
 * able to SET ROLE to every app role (PostgreSQL 16+: a grant WITH SET; 14
 * and 15: membership).
 */
export async function preflight(client: pg.Client, roles: string[]): Promise<string> {
  const { rows } = await client.query<{ me: string; super: boolean; bypass: boolean; missing: string[] }>(
    `SELECT r.rolname AS me, r.rolsuper AS super, r.rolbypassrls AS bypass,
            ARRAY(SELECT x FROM unnest($1::text[]) AS x WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles o WHERE o.rolname = x) ORDER BY 1) AS missing
       FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`,
    [roles],
  );
  const me = rows[0];
  if (me.missing.length > 0) {
    throw new UsageError(
      `the app role${me.missing.length === 1 ? '' : 's'} ${me.missing.join(', ')} do${me.missing.length === 1 ? 'es' : ''} not exist in this database`,
      {
        hint: 'create the roles (or fix roles.app in the policy file / --app-role) and run again',
      },
    );
  }
  const cannot: Array<{ role: string; reason: string }> = [];
  await client.query('BEGIN');
  try {
    for (const role of roles) {
      await client.query('SAVEPOINT rlsctl_role');
      try {
        await client.query(`SET LOCAL ROLE ${quoteIdent(role)}`);
      } catch (error) {
        cannot.push({ role, reason: (error as Error).message });
      }
      await client.query('ROLLBACK TO SAVEPOINT rlsctl_role');
    }
  } finally {
    await client.query('ROLLBACK');
  }
  const missing: string[] = [];
  if (cannot.length > 0) {
    missing.push(`${me.me} cannot SET ROLE to ${cannot.map((c) => c.role).join(', ')} (${cannot[0].reason})`);
  }
  if (!me.super && !me.bypass) missing.push(`${me.me} is neither a superuser nor BYPASSRLS, so it cannot see or write the rows of both tenants`);
  if (missing.length > 0) {
    const grants = cannot.map((c) => `GRANT ${quoteIdent(c.role)} TO ${quoteIdent(me.me)};`);
    throw new DatabaseError(`verify cannot act as the app roles: ${missing.join('; ')}`, {
      hint: [
        'verify connects as a role that bypasses row level security and switches to each app role with SET ROLE; as a superuser:',
        ...grants.map((g) => `  ${g}   -- PostgreSQL 16+: ... WITH INHERIT FALSE, SET TRUE`),
        ...(!me.super && !me.bypass ? [`  ALTER ROLE ${quoteIdent(me.me)} BYPASSRLS;   -- or connect as the migration role or a superuser`] : []),
      ].join('\n'),
    });
  }
  return me.me;
}
