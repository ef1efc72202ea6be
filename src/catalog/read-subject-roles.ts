import type { SubjectRole } from '../rls/row-security-subjects.js';
import type { CatalogSnapshot } from './read-catalog.js';

/**
 * The roles the row-security model asks about (src/rls/row-security-subjects.ts),
 * from the catalog layer's facts (read-catalog.ts: the roles and the
 * memberships of the given names, one query each whatever their number):
 * each role's superuser and BYPASSRLS attributes and the roles whose
 * privileges it has (pg_has_role ... USAGE is PostgreSQL's
 * has_privs_of_role: membership that inherits). A name the database lacks is
 * left out.
 */
export async function subjectRolesOf(catalog: CatalogSnapshot, names: readonly string[]): Promise<Map<string, SubjectRole>> {
  const wanted = [...new Set(names)].sort();
  if (wanted.length === 0) return new Map();
  const server = await catalog.server();
  const roles = (await catalog.roles()).filter((r) => wanted.includes(r.name));
  const privs = new Map<string, Set<string>>();
  for (const m of await catalog.memberships(wanted, server.versionNum)) {
    if (!m.inherits) continue;
    const set = privs.get(m.member) ?? new Set<string>();
    set.add(m.role);
    privs.set(m.member, set);
  }
  return new Map(
    roles.map((r) => {
      const own = privs.get(r.name) ?? new Set<string>();
      return [r.name, { name: r.name, superuser: r.superuser, bypassRls: r.bypassRls, hasPrivilegesOf: (other: string) => own.has(other) }];
    }),
  );
}
