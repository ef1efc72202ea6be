import type { PolicyCommand } from '../policy/model.js';

/**
 * The rows of the catalog layer: one type per fact, as read-catalog.ts reads
 * them (one set-based query per fact). Object ids are kept as strings, only
 * as join keys inside the process; no command prints one. Commands build
 * their own views on these rows (audit/collect-catalog.ts,
 * catalog/introspect-catalog.ts, verify/verify-catalog.ts,
 * explain/read-explain-catalog.ts, facts/resolve-facts.ts,
 * init/read-init-facts.ts).
 *
 * Fields marked "detail" are read only when the reader asks for them (the
 * `detail` option of the fact): deparsing every index of a database of
 * 100,000 partitions costs seconds that the audit does not spend.
 */

/** pg_class.relkind of the relations rlsctl reads: ordinary, partitioned, view, materialized view, foreign. */
export type RelKind = 'r' | 'p' | 'v' | 'm' | 'f';

export interface ServerRow {
  versionNum: number;
  /** server_version, e.g. `18.1`. */
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

export interface RelationRow {
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
  /** detail: the direct parent's schema and name. */
  parent?: { schema: string; name: string };
  /** detail: pg_get_expr(relpartbound), `FOR VALUES ...` of a partition. */
  bound?: string;
  /** detail: a partitioned table's key columns; empty when the key holds an expression. */
  partitionKey?: string[];
}

/** A child in an inheritance tree (partitions at any depth, inheritance children) of a root asked for. */
export interface InheritanceRow {
  oid: string;
  parent: string;
  root: string;
}

export interface ColumnRow {
  relOid: string;
  name: string;
  num: number;
  notNull: boolean;
  /** pg_type.typname: uuid, int8, varchar... */
  type: string;
  /** detail: format_type() of the column (valid, quoted SQL for a cast). */
  formatType?: string;
  /** detail: the column's collation when it differs from its type's default, qualified. */
  collation?: string;
  /** detail `values`: what a synthetic value for the column needs (verify). */
  values?: ColumnValues;
}

export interface ColumnValues {
  hasDefault: boolean;
  /** An identity column, or a default that draws from a sequence. */
  sequenceDefault: boolean;
  /** pg_get_expr of the default. */
  defaultExpression: string | null;
  /** pg_attribute.attidentity: '' | 'a' | 'd'. */
  identity: string;
  /** pg_attribute.attgenerated: '' | 's'. */
  generated: string;
  /** typname of the base type (domains resolved). */
  baseType: string;
  /** typcategory of the base type. */
  category: string;
  enumFirst: string | null;
  maxLength: number | null;
  integerDigits: number | null;
}

/** pg_policy.polcmd decoded (src/catalog/decode-catalog.ts). */
export type PolicyCommandCode = PolicyCommand;

export interface PolicyRow {
  relOid: string;
  name: string;
  command: PolicyCommandCode;
  permissive: boolean;
  /** Role names, sorted; `public` for PUBLIC. */
  roles: string[];
  using?: string;
  check?: string;
}

export interface IndexRow {
  relOid: string;
  oid: string;
  /** The index's schema. */
  schema: string;
  name: string;
  valid: boolean;
  ready: boolean;
  unique: boolean;
  primary: boolean;
  /** Key column numbers in order; 0 for an expression. */
  keys: number[];
  partial: boolean;
  /** Key column names in order ('' for an expression). */
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
  /** detail: the index as CatalogIndex describes it (catalog-model.ts). */
  detail?: IndexDetail;
}

export interface IndexDetail {
  /** Key columns (name) and expressions (sql), in order. */
  keys: Array<{ column: string | null; expression: string | null }>;
  include: string[];
  method: string;
  predicate?: string;
  looseCollation: boolean;
  attachedTo?: { schema: string; name: string };
  definition: string;
}

export interface ForeignKeyRow {
  relOid: string;
  refOid: string;
  name: string;
  columns: number[];
  refColumns: number[];
  columnNames: string[];
  refColumnNames: string[];
  /** pg_constraint.confupdtype / confdeltype: a no action, r restrict, c cascade, n set null, d set default. */
  onUpdate: string;
  onDelete: string;
  /** pg_constraint.confmatchtype: s simple, f full, p partial. */
  match: string;
  deferrable: boolean;
  deferred: boolean;
  /** ON DELETE SET NULL / SET DEFAULT (columns): the columns listed (PostgreSQL 15 and later), else empty. */
  deleteSetColumns: string[];
  /** detail: the referenced relation's schema and name. */
  ref?: { schema: string; name: string };
}

/** The CHECK constraints of a relation, as pg_get_constraintdef prints them, by constraint name. */
export interface CheckRow {
  relOid: string;
  definitions: string[];
}

export interface RoleRow {
  name: string;
  superuser: boolean;
  bypassRls: boolean;
  login: boolean;
  /** Inherits the privileges of the roles it is a member of (rolinherit). */
  inherit: boolean;
  /** Roles this role is a direct member of, sorted. */
  memberOf: string[];
}

/** `member` can reach `role`: inherits its privileges (USAGE) and/or may SET ROLE to it. */
export interface MembershipRow {
  member: string;
  role: string;
  inherits: boolean;
  canSet: boolean;
}

/** One entry of a relation's ACL (aclexplode of relacl). */
export interface GrantRow {
  relOid: string;
  /** A role name, or PUBLIC. */
  grantee: string;
  privilege: string;
  grantable: boolean;
}

/** What a role may do on a relation, as has_*_privilege answers (grants through role membership included). */
export interface PrivilegeRow {
  relOid: string;
  role: string;
  /** USAGE on the relation's schema. */
  schemaUsage: boolean;
  /** has_table_privilege: the whole table. */
  table: { select: boolean; insert: boolean; update: boolean; delete: boolean };
  /** has_any_column_privilege: some column. */
  anyColumn: { select: boolean; insert: boolean; update: boolean };
  /** detail: the columns the role may UPDATE (with schema USAGE). */
  updatable?: string[];
}

export interface ViewDependencyRow {
  viewOid: string;
  refOid: string;
}

export interface FunctionRow {
  oid: string;
  schema: string;
  name: string;
  /** pg_get_function_identity_arguments. */
  args: string;
  /** regprocedure text, for messages. */
  signature: string;
  owner: string;
  /** A plain function (prokind f) without arguments returning a value (not void, trigger, event_trigger, internal). */
  callableWithoutArguments: boolean;
  /** prosrc. */
  source: string;
  /** Relations pg_depend says it reads (BEGIN ATOMIC bodies). */
  reads: string[];
  /** Of the roles asked about: those that may execute it. */
  executableBy: string[];
  /** Of those: the ones that also have USAGE on its schema. */
  callableBy: string[];
}

export interface SettingRow {
  /** The database the setting is for; undefined for every database. */
  database?: string;
  /** The role the setting is for; undefined for every role. */
  role?: string;
  /** Lower case. */
  name: string;
  value: string;
}

export interface ExtensionRow {
  name: string;
  schema: string;
  version: string;
}

/** A table that belongs to an extension (pg_depend 'e'). */
export interface ExtensionTableRow {
  schema: string;
  name: string;
  extension: string;
  /** Listed in the extension's configuration tables (pg_extension.extconfig). */
  config: boolean;
}

/** What the database holds of the trigger, its function and its schema. */
export interface PartitionTriggerState {
  /** The current role is a superuser (CREATE / DROP EVENT TRIGGER need one). */
  superuser: boolean;
  schema?: { ownerSuper: boolean; otherObjects: number };
  fn?: { source: string; config: string[]; securityDefiner: boolean; ownerSuper: boolean };
  trigger?: { event: string; enabled: string; tags: string[]; callsFunction: boolean };
}

/** A SQL-language function, read through its body for the tenant sources (src/audit/tenant-sources.ts). */
export interface SqlFunctionRow {
  schema: string;
  name: string;
  /** prosrc, or the deparsed body of a BEGIN ATOMIC / RETURN function. */
  body: string;
  securityDefiner: boolean;
}

/** The membership helper function rlsctl generates (src/compile/membership.ts), as the catalog holds it. */
export interface MemberFunctionState {
  source: string;
  config: string[];
  securityDefiner: boolean;
  volatility: string;
  returns: string;
  /** Owned by the owner of the membership table (whose rights it reads the table with). */
  ownedByTableOwner: boolean;
  /** PUBLIC may execute it (no ACL at all means PUBLIC may). */
  publicExecute: boolean;
  /** The app roles that may execute it. */
  executors: string[];
}
