import type { PolicyCommand } from '../policy/model.js';
import type { RelKind } from './catalog-rows.js';

/**
 * A live database as rlsctl sees it, in the shapes the policy side compiles
 * to (compile/desired-state.ts), so `plan` can compare them field by field.
 * Names, never OIDs: two reads of the same database give equal models.
 */
export interface CatalogModel {
  /** server_version_num, e.g. 180004. */
  serverVersion: number;
  /** Tables, partitions, views, materialized views and foreign tables in scope, sorted by schema and name. */
  tables: CatalogTable[];
  /** Every role of the cluster, sorted by name. */
  roles: CatalogRole[];
  /** Table privileges granted explicitly (aclexplode of relacl), sorted. */
  grants: CatalogGrant[];
  /** Foreign keys between tables in scope, sorted by schema, table and name. */
  foreignKeys: CatalogForeignKey[];
}

/** pg_class.relkind of the relations rlsctl reads (catalog-rows.ts). */
export type Relkind = RelKind;

export interface CatalogTable {
  schema: string;
  name: string;
  relkind: Relkind;
  /** The table this one is a partition of (its direct parent), when it is one. */
  partitionOf?: { schema: string; name: string };
  owner: string;
  rls: { enabled: boolean; forced: boolean };
  columns: CatalogColumn[];
  policies: CatalogPolicy[];
  indexes: CatalogIndex[];
}

export interface CatalogColumn {
  name: string;
  /** format_type() of the column, qualified when its schema is not pg_catalog. */
  type: string;
  notNull: boolean;
  /** The column's collation when it differs from its type's default, qualified. */
  collation?: string;
}

export interface CatalogPolicy {
  name: string;
  permissive: boolean;
  command: PolicyCommand;
  /** Role names, sorted; `public` for PUBLIC. */
  roles: string[];
  /** pg_get_expr() text, read with search_path = pg_catalog, pg_temp (objects outside pg_catalog are qualified). */
  using?: string;
  check?: string;
}

export type IndexKey = { kind: 'column'; name: string } | { kind: 'expression'; sql: string };

export interface CatalogIndex {
  name: string;
  /** Key columns and expressions, in order (INCLUDE columns are not keys). */
  keys: IndexKey[];
  /** INCLUDE columns. */
  include: string[];
  unique: boolean;
  primary: boolean;
  /** False for an index left behind by a failed CREATE INDEX CONCURRENTLY, or a partitioned index still missing a partition's index. */
  valid: boolean;
  /** Access method: btree, hash, gin, ... */
  method: string;
  /** The WHERE clause of a partial index. */
  predicate?: string;
  /** A DEFERRABLE unique constraint's index (pg_index.indimmediate false): uniqueness is checked at commit, or later. */
  deferrable?: true;
  /**
   * A key column has a nondeterministic collation (case-insensitive, say) that
   * the index does not use: `=` on the column matches values the index holds
   * apart, so the index does not make the column unique for `=`.
   */
  looseCollation?: true;
  /** The index of the parent partitioned table this index is attached to. */
  attachedTo?: { schema: string; name: string };
  /** pg_get_indexdef() text. */
  definition: string;
}

export interface CatalogRole {
  name: string;
  superuser: boolean;
  bypassRls: boolean;
  canLogin: boolean;
  /** Inherits the privileges of the roles it is a member of (rolinherit). */
  inherit: boolean;
  /** Roles this role is a direct member of, sorted. */
  memberOf: string[];
}

export interface CatalogGrant {
  schema: string;
  table: string;
  /** A role name, or PUBLIC. */
  grantee: string;
  /** SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER, MAINTAIN (17+). */
  privilege: string;
  grantable: boolean;
}

export interface CatalogForeignKey {
  name: string;
  schema: string;
  table: string;
  columns: string[];
  refSchema: string;
  refTable: string;
  refColumns: string[];
}

/** The leading plain columns of an index, up to its first expression. */
export function leadingColumns(index: CatalogIndex): string[] {
  const out: string[] = [];
  for (const key of index.keys) {
    if (key.kind !== 'column') break;
    out.push(key.name);
  }
  return out;
}

export function catalogTableKey(t: { schema: string; name: string }): string {
  return `${t.schema}.${t.name}`;
}
