import type pg from 'pg';
import { withCatalogSearchPath } from '../catalog/with-catalog-search-path.js';

/**
 * What `init` needs beyond the CatalogModel (src/catalog/introspect-catalog.ts),
 * read set-based (one query per fact, never one per table or role).
 */
export interface InitFacts {
  /**
   * Login roles with BYPASSRLS (not superusers) that matter to this database:
   * they (or a role they are a member of) own objects here or hold privileges
   * here (pg_shdepend), own the database, or are granted CONNECT on it by
   * name (CONNECT through PUBLIC, the default, does not count: every role has it).
   */
  bypassRoles: string[];
  /** Tables and partitioned tables that belong to an extension (pg_depend 'e'); rlsctl does not manage them. */
  extensionTables: { schema: string; name: string; extension: string; config: boolean }[];
  /** The schema of each installed extension. */
  extensionSchemas: { extension: string; schema: string }[];
}

const BYPASS_SQL = `
  WITH here AS (SELECT d.oid, d.datdba, d.datacl FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()),
  holders AS (
    SELECT DISTINCT s.refobjid AS role FROM pg_catalog.pg_shdepend s, here
     WHERE s.dbid = here.oid AND s.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
    UNION SELECT here.datdba FROM here
    UNION SELECT a.grantee FROM here, pg_catalog.aclexplode(here.datacl) a WHERE a.privilege_type = 'CONNECT' AND a.grantee <> 0
  )
  SELECT r.rolname::pg_catalog.text AS name
    FROM pg_catalog.pg_roles r
   WHERE r.rolbypassrls AND NOT r.rolsuper AND r.rolcanlogin
     AND EXISTS (SELECT 1 FROM holders h WHERE pg_catalog.pg_has_role(r.oid, h.role, 'MEMBER'))
   ORDER BY r.rolname COLLATE "C"`;

const EXTENSION_TABLES_SQL = `
  SELECT n.nspname::pg_catalog.text AS schema, c.relname::pg_catalog.text AS name, e.extname::pg_catalog.text AS extension,
         c.oid = ANY (e.extconfig) AS config
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'e'
                               AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
    JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
   WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
     AND CASE WHEN $1::pg_catalog.text[] IS NULL THEN n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
              ELSE n.nspname = ANY ($1::pg_catalog.text[]) END
   ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C"`;

const EXTENSION_SCHEMAS_SQL = `
  SELECT e.extname::pg_catalog.text AS extension, n.nspname::pg_catalog.text AS schema
    FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
   ORDER BY e.extname COLLATE "C"`;

export async function readInitFacts(client: pg.ClientBase | pg.Pool, schemas?: string[]): Promise<InitFacts> {
  return withCatalogSearchPath(client, async (c) => {
    const bypass = await c.query<{ name: string }>(BYPASS_SQL);
    const tables = await c.query<InitFacts['extensionTables'][number]>(EXTENSION_TABLES_SQL, [schemas ?? null]);
    const extSchemas = await c.query<InitFacts['extensionSchemas'][number]>(EXTENSION_SCHEMAS_SQL);
    return { bypassRoles: bypass.rows.map((r) => r.name), extensionTables: tables.rows, extensionSchemas: extSchemas.rows };
  });
}
