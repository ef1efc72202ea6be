import { decodePolcmd } from './decode-catalog.js';
import type pg from 'pg';
import type {
  CatalogForeignKey,
  CatalogGrant,
  CatalogIndex,
  CatalogModel,
  CatalogPolicy,
  CatalogRole,
  CatalogTable,
  IndexKey,
  Relkind,
} from './catalog-model.js';
import { withCatalogSearchPath } from './with-catalog-search-path.js';

/**
 * Read a live database into a CatalogModel. Set-based: one query per fact
 * (tables, columns, policies, indexes, roles, grants, foreign keys) for the
 * whole database, never one per table, so 1,000 tables cost what 10 do.
 * Every query is pg_catalog-qualified and sorted; no OID reaches the model.
 *
 * Read-only: it takes no lock beyond the ACCESS SHARE that reading the
 * catalog tables takes, so it is safe on a busy production database.
 */
export interface IntrospectOptions {
  /**
   * The schemas to read. Partitions of a table in these schemas are read too,
   * wherever they live. Default: every schema except pg_* and information_schema.
   */
  schemas?: string[];
}

/**
 * The relations in scope. Tables owned by an extension (pg_depend deptype 'e')
 * are the extension's business, not the policy file's: skipped.
 */
const SCOPE = `
  scope AS (
    SELECT c.oid, n.nspname, c.relname
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
       AND NOT EXISTS (
             SELECT 1 FROM pg_catalog.pg_depend d
              WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'e')
       AND CASE
             WHEN $1::pg_catalog.text[] IS NULL THEN n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
             ELSE n.nspname = ANY ($1::pg_catalog.text[])
               OR (c.relispartition AND EXISTS (
                     SELECT 1 FROM pg_catalog.pg_class r
                       JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
                      WHERE r.oid = pg_catalog.pg_partition_root(c.oid) AND rn.nspname = ANY ($1::pg_catalog.text[])))
           END
  )`;

const TABLES_SQL = `
  WITH ${SCOPE}
  SELECT s.nspname AS schema, s.relname AS name, c.relkind::pg_catalog.text AS relkind,
         pn.nspname AS parent_schema, pc.relname AS parent_name,
         pg_catalog.pg_get_userbyid(c.relowner)::pg_catalog.text AS owner,
         c.relrowsecurity AS rls_enabled, c.relforcerowsecurity AS rls_forced
    FROM scope s
    JOIN pg_catalog.pg_class c ON c.oid = s.oid
    LEFT JOIN pg_catalog.pg_inherits i ON c.relispartition AND i.inhrelid = c.oid
    LEFT JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent
    LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
   ORDER BY s.nspname COLLATE "C", s.relname COLLATE "C"`;

const COLUMNS_SQL = `
  WITH ${SCOPE}
  SELECT s.nspname AS schema, s.relname AS table, a.attname AS name,
         pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
         CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
              THEN pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname) END AS collation
    FROM scope s
    JOIN pg_catalog.pg_attribute a ON a.attrelid = s.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
    LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
   ORDER BY s.nspname COLLATE "C", s.relname COLLATE "C", a.attnum`;

const POLICIES_SQL = `
  WITH ${SCOPE}
  SELECT s.nspname AS schema, s.relname AS table, p.polname AS name, p.polpermissive AS permissive,
         p.polcmd::pg_catalog.text AS cmd,
         ARRAY(SELECT x.role FROM (
                 SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(r)::pg_catalog.text END AS role
                   FROM pg_catalog.unnest(p.polroles) AS r) AS x
                ORDER BY x.role COLLATE "C") AS roles,
         pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS using,
         pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) AS check
    FROM scope s
    JOIN pg_catalog.pg_policy p ON p.polrelid = s.oid
   ORDER BY s.nspname COLLATE "C", s.relname COLLATE "C", p.polname COLLATE "C"`;

// indkey is an int2vector (subscripts from 0); a 0 in it marks an expression,
// whose text pg_get_indexdef(index, column number, true) gives.
const INDEXES_SQL = `
  WITH ${SCOPE}
  SELECT s.nspname AS schema, s.relname AS table, ic.relname AS name,
         ARRAY(SELECT pg_catalog.json_build_array(a.attname, CASE WHEN i.indkey[k] = 0 THEN pg_catalog.pg_get_indexdef(i.indexrelid, k + 1, true) END)::pg_catalog.text
                 FROM pg_catalog.generate_series(0, i.indnatts - 1) AS k
                 LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k] AND i.indkey[k] <> 0
                ORDER BY k) AS keys,
         i.indnkeyatts AS key_count, i.indisunique AS unique, i.indisprimary AS primary,
         i.indisvalid AS valid, NOT i.indimmediate AS deferrable, am.amname AS method,
         EXISTS (SELECT 1 FROM pg_catalog.generate_series(0, i.indnkeyatts - 1) AS k
                   JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k]
                   JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
                  WHERE i.indcollation[k] <> a.attcollation AND NOT co.collisdeterministic) AS loose_collation,
         pg_catalog.pg_get_expr(i.indpred, i.indrelid) AS predicate,
         pn.nspname AS parent_schema, pc.relname AS parent_name,
         pg_catalog.pg_get_indexdef(i.indexrelid) AS definition
    FROM scope s
    JOIN pg_catalog.pg_index i ON i.indrelid = s.oid
    JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_catalog.pg_am am ON am.oid = ic.relam
    LEFT JOIN pg_catalog.pg_inherits inh ON inh.inhrelid = i.indexrelid
    LEFT JOIN pg_catalog.pg_class pc ON pc.oid = inh.inhparent
    LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
   ORDER BY s.nspname COLLATE "C", s.relname COLLATE "C", ic.relname COLLATE "C"`;

// pg_auth_members holds one row per grantor since PostgreSQL 16: DISTINCT.
const ROLES_SQL = `
  SELECT r.rolname::pg_catalog.text AS name, r.rolsuper AS superuser, r.rolbypassrls AS bypass_rls,
         r.rolcanlogin AS can_login, r.rolinherit AS inherit,
         ARRAY(SELECT DISTINCT b.rolname::pg_catalog.text
                 FROM pg_catalog.pg_auth_members m
                 JOIN pg_catalog.pg_roles b ON b.oid = m.roleid
                WHERE m.member = r.oid
                ORDER BY 1) AS member_of
    FROM pg_catalog.pg_roles r
   ORDER BY r.rolname COLLATE "C"`;

// A NULL relacl means the owner's default privileges only: no explicit grant.
const GRANTS_SQL = `
  WITH ${SCOPE}
  SELECT g.* FROM (
    SELECT s.nspname::pg_catalog.text AS schema, s.relname::pg_catalog.text AS table,
           CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee)::pg_catalog.text END AS grantee,
           a.privilege_type AS privilege, a.is_grantable AS grantable
      FROM scope s
      JOIN pg_catalog.pg_class c ON c.oid = s.oid
     CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) AS a
  ) AS g
  ORDER BY g.schema COLLATE "C", g.table COLLATE "C", g.grantee COLLATE "C", g.privilege COLLATE "C"`;

const FOREIGN_KEYS_SQL = `
  WITH ${SCOPE}
  SELECT s.nspname AS schema, s.relname AS table, con.conname AS name,
         ARRAY(SELECT a.attname::pg_catalog.text FROM pg_catalog.unnest(con.conkey) WITH ORDINALITY AS k(attnum, n)
                 JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.n) AS columns,
         rn.nspname AS ref_schema, rc.relname AS ref_table,
         ARRAY(SELECT a.attname::pg_catalog.text FROM pg_catalog.unnest(con.confkey) WITH ORDINALITY AS k(attnum, n)
                 JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.n) AS ref_columns
    FROM scope s
    JOIN pg_catalog.pg_constraint con ON con.conrelid = s.oid AND con.contype = 'f'
    JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid
    JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
   WHERE con.conparentid = 0
   ORDER BY s.nspname COLLATE "C", s.relname COLLATE "C", con.conname COLLATE "C"`;

export async function introspectCatalog(client: pg.ClientBase | pg.Pool, options: IntrospectOptions = {}): Promise<CatalogModel> {
  return withCatalogSearchPath(client, async (c) => {
    const params = [options.schemas ?? null];
    const version = await c.query<{ v: string }>(`SELECT pg_catalog.current_setting('server_version_num') AS v`);
    const tables = await c.query(TABLES_SQL, params);
    const columns = await c.query(COLUMNS_SQL, params);
    const policies = await c.query(POLICIES_SQL, params);
    const indexes = await c.query(INDEXES_SQL, params);
    const roles = await c.query(ROLES_SQL);
    const grants = await c.query(GRANTS_SQL, params);
    const foreignKeys = await c.query(FOREIGN_KEYS_SQL, params);

    const byKey = new Map<string, CatalogTable>();
    const model: CatalogModel = {
      serverVersion: Number(version.rows[0].v),
      tables: tables.rows.map((r) => {
        const table: CatalogTable = {
          schema: r.schema,
          name: r.name,
          relkind: r.relkind as Relkind,
          ...(r.parent_name ? { partitionOf: { schema: r.parent_schema, name: r.parent_name } } : {}),
          owner: r.owner,
          rls: { enabled: r.rls_enabled, forced: r.rls_forced },
          columns: [],
          policies: [],
          indexes: [],
        };
        byKey.set(key(r.schema, r.name), table);
        return table;
      }),
      roles: roles.rows.map((r): CatalogRole => ({
        name: r.name,
        superuser: r.superuser,
        bypassRls: r.bypass_rls,
        canLogin: r.can_login,
        inherit: r.inherit,
        memberOf: r.member_of,
      })),
      grants: grants.rows.map((r): CatalogGrant => ({ schema: r.schema, table: r.table, grantee: r.grantee, privilege: r.privilege, grantable: r.grantable })),
      foreignKeys: foreignKeys.rows.map((r): CatalogForeignKey => ({
        name: r.name,
        schema: r.schema,
        table: r.table,
        columns: r.columns,
        refSchema: r.ref_schema,
        refTable: r.ref_table,
        refColumns: r.ref_columns,
      })),
    };
    for (const r of columns.rows) {
      byKey.get(key(r.schema, r.table))?.columns.push({
        name: r.name,
        type: r.type,
        notNull: r.not_null,
        ...(r.collation ? { collation: r.collation } : {}),
      });
    }
    for (const r of policies.rows) {
      const policy: CatalogPolicy = {
        name: r.name,
        permissive: r.permissive,
        command: decodePolcmd(r.cmd),
        roles: r.roles,
        ...(r.using !== null ? { using: r.using } : {}),
        ...(r.check !== null ? { check: r.check } : {}),
      };
      byKey.get(key(r.schema, r.table))?.policies.push(policy);
    }
    for (const r of indexes.rows) {
      const all = (r.keys as string[]).map((k) => JSON.parse(k) as [string | null, string | null]);
      const toKey = ([column, expression]: [string | null, string | null]): IndexKey =>
        column !== null ? { kind: 'column', name: column } : { kind: 'expression', sql: expression ?? '' };
      const index: CatalogIndex = {
        name: r.name,
        keys: all.slice(0, r.key_count).map(toKey),
        include: all.slice(r.key_count).flatMap(([column]) => (column === null ? [] : [column])),
        unique: r.unique,
        primary: r.primary,
        valid: r.valid,
        method: r.method,
        ...(r.predicate !== null ? { predicate: r.predicate } : {}),
        ...(r.deferrable ? { deferrable: true as const } : {}),
        ...(r.loose_collation ? { looseCollation: true as const } : {}),
        ...(r.parent_name ? { attachedTo: { schema: r.parent_schema, name: r.parent_name } } : {}),
        definition: r.definition,
      };
      byKey.get(key(r.schema, r.table))?.indexes.push(index);
    }
    return model;
  });
}

function key(schema: string, name: string): string {
  return `${schema}.${name}`;
}
