import type { PolicyCommand } from '../policy/model.js';
/**
 * What the audit reads from the catalog: one array per fact, each filled by
 * one set-based query for the whole database (collect-catalog.ts). Object
 * ids are kept only as join keys inside the process; no finding prints one.
 */

export type RelKind = 'r' | 'p' | 'v' | 'm' | 'f';

export interface CatalogRelation {
  oid: string;
  schema: string;
  name: string;
  kind: RelKind;
  owner: string;
  rls: boolean;
  force: boolean;
  /** reloptions as `name=value` strings (`security_invoker=true`, ...). */
  options: string[];
  isPartition: boolean;
  /** The direct parent of a partition (pg_inherits). */
  parentOid?: string;
}

export interface CatalogColumn {
  relOid: string;
  name: string;
  num: number;
  notNull: boolean;
  /** pg_type.typname: uuid, int8, varchar... */
  type: string;
}

/** pg_policy.polcmd decoded (src/catalog/decode-catalog.ts). */
export type PolicyCommandCode = PolicyCommand;

export interface CatalogPolicy {
  relOid: string;
  name: string;
  command: PolicyCommandCode;
  permissive: boolean;
  /** Role names; `public` for PUBLIC. */
  roles: string[];
  using?: string;
  check?: string;
}

export interface CatalogIndex {
  relOid: string;
  name: string;
  valid: boolean;
  unique: boolean;
  primary: boolean;
  /** Key column numbers in order; 0 for an expression. */
  keys: number[];
  partial: boolean;
  /** Key column names in order ('' for an expression); only the tenant columns are read for `columns`. */
  keyNames?: string[];
  /**
   * For unique indexes, how each key column gets its value when the insert
   * names none: 'identity', the default's text as pg_get_expr prints it, or ''
   * (RLS061: a key generated globally unique cannot collide across tenants).
   */
  keyDefaults?: string[];
  /** A DEFERRABLE constraint's index (pg_index.indimmediate false): uniqueness checked at commit or later. */
  deferrable?: boolean;
  /** The constraint the index backs (primary key, unique), if any. */
  constraint?: string;
}

export interface CatalogForeignKey {
  relOid: string;
  refOid: string;
  name: string;
  columns: number[];
  refColumns: number[];
  columnNames: string[];
  refColumnNames: string[];
}

export interface CatalogRole {
  name: string;
  superuser: boolean;
  bypassRls: boolean;
  login: boolean;
}

/** `member` can reach `role`: inherits its privileges (USAGE) and/or may SET ROLE to it. */
export interface CatalogMembership {
  member: string;
  role: string;
  inherits: boolean;
  canSet: boolean;
}

export interface CatalogViewDependency {
  viewOid: string;
  refOid: string;
}

export interface CatalogFunction {
  schema: string;
  name: string;
  /** pg_get_function_identity_arguments. */
  args: string;
  owner: string;
  /** App roles that may execute it. */
  executableBy: string[];
}

/** A SQL-language function, read through its body for the tenant sources (src/audit/tenant-sources.ts). */
export interface CatalogSqlFunction {
  schema: string;
  name: string;
  /** prosrc, or the deparsed body of a BEGIN ATOMIC / RETURN function. */
  body: string;
  securityDefiner: boolean;
}

export interface CatalogRoleSetting {
  /** The database the setting is for; undefined for every database. */
  database?: string;
  /** The role the setting is for; undefined for every role. */
  role?: string;
  name: string;
  value: string;
}

export interface CatalogGrant {
  relOid: string;
  /** A role name, or PUBLIC. */
  grantee: string;
  privilege: string;
}

export interface CatalogServer {
  versionNum: number;
  version: string;
  database: string;
  /** row_security as the server configuration sets it, and where from. */
  rowSecurity: { setting: string; source: string };
  /**
   * The partition event trigger of `partitions.protect_new` (src/compile/partition-trigger.ts):
   * `enabled` when it fires, `disabled` when it exists but does not; undefined when absent.
   */
  partitionTrigger?: 'enabled' | 'disabled';
}

export interface AuditCatalog {
  server: CatalogServer;
  relations: CatalogRelation[];
  columns: CatalogColumn[];
  policies: CatalogPolicy[];
  indexes: CatalogIndex[];
  foreignKeys: CatalogForeignKey[];
  roles: CatalogRole[];
  memberships: CatalogMembership[];
  viewDependencies: CatalogViewDependency[];
  functions: CatalogFunction[];
  /** Every SQL-language function in the user's schemas (absent in catalogs built by hand). */
  sqlFunctions?: CatalogSqlFunction[];
  settings: CatalogRoleSetting[];
  grants: CatalogGrant[];
  /** Relation oid → app roles that hold any of SELECT, INSERT, UPDATE, DELETE on it (asked only for candidates). */
  appReach: Map<string, string[]>;
  /** Milliseconds per query, for --verbose and the benchmark. */
  timings: Record<string, number>;
}
