import type pg from 'pg';
import type { SubjectRole } from '../rls/row-security-subjects.js';

/**
 * The roles the row-security model asks about (src/rls/row-security-subjects.ts),
 * read in one query whatever their number: each role's superuser and BYPASSRLS
 * attributes and the roles whose privileges it has (pg_has_role ... USAGE is
 * PostgreSQL's has_privs_of_role: membership that inherits). A name the
 * database lacks is left out.
 */
export async function readSubjectRoles(client: pg.ClientBase, names: readonly string[]): Promise<Map<string, SubjectRole>> {
  const { rows } = await client.query<{ name: string; superuser: boolean; bypass: boolean; privs: string[] }>(
    `SELECT r.rolname AS name, r.rolsuper AS superuser, r.rolbypassrls AS bypass,
            ARRAY(SELECT o.rolname::text FROM pg_catalog.pg_roles o
                   WHERE o.oid <> r.oid AND NOT r.rolsuper AND pg_catalog.pg_has_role(r.oid, o.oid, 'USAGE')) AS privs
       FROM pg_catalog.pg_roles r
      WHERE r.rolname = ANY ($1::text[])`,
    [[...new Set(names)]],
  );
  return new Map(
    rows.map((r) => {
      const privs = new Set(r.privs);
      return [r.name, { name: r.name, superuser: r.superuser, bypassRls: r.bypass, hasPrivilegesOf: (other: string) => privs.has(other) }];
    }),
  );
}
