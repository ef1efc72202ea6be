import type { SourceLocation } from '../errors.js';

/** The normalised policy file: what every command downstream of the YAML works with. */

// Defined in src/tenant/ so that the runtime entry (src/runtime.ts) loads only src/tenant/.
import type { TenantType } from '../tenant/tenant-type.js';
export { TENANT_TYPES, type TenantType } from '../tenant/tenant-type.js';

export const ENGINES = ['postgres', 'citus'] as const;
export type Engine = (typeof ENGINES)[number];

export const COMMANDS = ['select', 'insert', 'update', 'delete'] as const;
export type Command = (typeof COMMANDS)[number];
export type PolicyCommand = Command | 'all';

export interface PolicyModel {
  version: 1;
  /**
   * `claim`: the tenant is this path inside the setting's JSON (`tenant.claim`,
   * `app_metadata.org_id` → ['app_metadata', 'org_id']); absent, the setting holds the tenant itself.
   * `membership`: the tenants come from a membership table (src/compile/membership.ts).
   */
  tenant: { setting: string; type: TenantType; column: string; claim?: string[]; membership?: Membership };
  /** `engine: citus`: policies without sub-queries (src/compile/tenant-lookup.ts). Absent means postgres. */
  engine?: Engine;
  roles: { app: string[]; bypass: string[] };
  /** Managed schemas, in file order: every table in them must be declared. */
  schemas: string[];
  tables: TableDecl[];
  /**
   * `partitions.protect_new`: apply installs an event trigger that protects each
   * partition created or attached later under a declared table (src/compile/partition-trigger.ts).
   * Absent means false.
   */
  partitions?: { protectNew: boolean };
  /** The YAML files the model was read from, sorted. */
  files: string[];
}

/** `tenant.membership`: a user sees the rows of every tenant they are a member of. */
export interface Membership {
  schema: string;
  table: string;
  userColumn: string;
  tenantColumn: string;
  /** Where the user comes from: a setting, or a claim (a dotted path) inside a JSON setting. */
  user: { setting: string; type: TenantType; claim?: string };
  /** The file named `tenant.setting`: the active tenant, rows of that tenant only (and only for a member). */
  activeTenant: boolean;
}

export type TableDecl = TenantTable | SharedTable | ExemptTable;

interface TableBase {
  schema: string;
  name: string;
  location: SourceLocation;
  /** Hand-written extra policies, compiled as written. */
  policies: ExtraPolicy[];
}

export interface TenantTable extends TableBase {
  mode: 'tenant';
  /** The tenant column; undefined for a table whose tenant comes `via` its parent. */
  column?: string;
  commands: Command[];
  via?: Via;
  /** Index column lists as compiled: tenant column (or via columns) first. */
  indexes: IndexDecl[];
}

export interface SharedTable extends TableBase {
  mode: 'shared';
  indexes: IndexDecl[];
}

export interface ExemptTable extends TableBase {
  mode: 'exempt';
  reason: string;
  indexes: IndexDecl[];
}

export interface Via {
  parentSchema: string;
  parentName: string;
  columns: string[];
  references: string[];
}

export interface IndexDecl {
  columns: string[];
  unique: boolean;
  /** A name the user chose; otherwise compile derives one. */
  name?: string;
  location: SourceLocation;
}

export interface ExtraPolicy {
  name: string;
  to: string[];
  command: PolicyCommand;
  permissive: boolean;
  using?: string;
  check?: string;
  location: SourceLocation;
}

export function tableKey(t: { schema: string; name: string }): string {
  return `${t.schema}.${t.name}`;
}

export function findTable(model: PolicyModel, schema: string, name: string): TableDecl | undefined {
  return model.tables.find((t) => t.schema === schema && t.name === name);
}
