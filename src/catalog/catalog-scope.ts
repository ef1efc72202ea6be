/**
 * The one schema-scope filter of the catalog layer, and the one decoding of
 * ACLs, as SQL fragments that read-catalog.ts puts into its queries.
 *
 * Scope: the schemas a command reads, given as a `text[]` parameter; NULL
 * means every schema that is the application's: not `pg_*` (pg_catalog,
 * pg_toast, the temporary schemas) and not information_schema. A partition
 * whose root is in a listed schema is in scope wherever it lives. Relations
 * that belong to an extension (pg_depend deptype 'e') are the extension's
 * business: left out unless the fact asks to keep them.
 */

/** The application's schemas: never the system's. */
export function userSchemaSql(nsp: string): string {
  return `${nsp}.nspname !~ '^pg_' AND ${nsp}.nspname <> 'information_schema'`;
}

export interface ScopeSql {
  /** Alias of pg_class. */
  rel: string;
  /** Alias of pg_namespace. */
  nsp: string;
  /** The `text[]` parameter of listed schemas ($n), NULL for every user schema. */
  schemas: string;
  /** Keep relations that belong to an extension (default: leave them out). */
  extensions?: boolean;
}

export function relationScopeSql({ rel, nsp, schemas, extensions }: ScopeSql): string {
  const inSchemas = `CASE
      WHEN ${schemas}::pg_catalog.text[] IS NULL THEN ${userSchemaSql(nsp)}
      ELSE ${nsp}.nspname = ANY (${schemas}::pg_catalog.text[])
        OR (${rel}.relispartition AND EXISTS (
              SELECT 1 FROM pg_catalog.pg_class sr
                JOIN pg_catalog.pg_namespace sn ON sn.oid = sr.relnamespace
               WHERE sr.oid = pg_catalog.pg_partition_root(${rel}.oid) AND sn.nspname = ANY (${schemas}::pg_catalog.text[])))
    END`;
  return extensions ? inSchemas : `${inSchemas} AND ${notExtensionMemberSql(rel, 'pg_catalog.pg_class')}`;
}

/** The object `alias.oid` of catalog `catalog` does not belong to an extension. */
export function notExtensionMemberSql(alias: string, catalog: string): string {
  return `${alias}.oid NOT IN (SELECT d.objid FROM pg_catalog.pg_depend d WHERE d.classid = '${catalog}'::pg_catalog.regclass AND d.deptype = 'e')`;
}

/** The entries of an ACL, as rows `alias(grantor, grantee, privilege_type, is_grantable)`. */
export function aclEntriesSql(acl: string, alias: string): string {
  return `pg_catalog.aclexplode(${acl}) AS ${alias}`;
}

/** The grantee of an ACL entry by name: PUBLIC for oid 0. */
export function aclGranteeSql(alias: string): string {
  return `CASE WHEN ${alias}.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(${alias}.grantee)::pg_catalog.text END`;
}
