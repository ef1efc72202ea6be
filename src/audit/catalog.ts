import type {
  ColumnRow,
  ForeignKeyRow,
  FunctionRow,
  GrantRow,
  IndexRow,
  MembershipRow,
  PolicyRow,
  RelationRow,
  RoleRow,
  ServerRow,
  SettingRow,
  SqlFunctionRow,
  ViewDependencyRow,
} from '../catalog/catalog-rows.js';

/**
 * What the audit reads from the catalog: one array per fact, each the rows
 * of the catalog layer (src/catalog/read-catalog.ts) for the whole database
 * (collect-catalog.ts). Object ids are kept only as join keys inside the
 * process; no finding prints one.
 */
export interface AuditCatalog {
  server: ServerRow;
  relations: RelationRow[];
  columns: ColumnRow[];
  policies: PolicyRow[];
  indexes: IndexRow[];
  foreignKeys: ForeignKeyRow[];
  roles: RoleRow[];
  memberships: MembershipRow[];
  viewDependencies: ViewDependencyRow[];
  functions: FunctionRow[];
  /** Every SQL-language function in the user's schemas (absent in catalogs built by hand). */
  sqlFunctions?: SqlFunctionRow[];
  settings: SettingRow[];
  grants: GrantRow[];
  /** Relation oid → app roles that hold any of SELECT, INSERT, UPDATE, DELETE on it (asked only for candidates). */
  appReach: Map<string, string[]>;
  /** Milliseconds per query, for --verbose and the benchmark. */
  timings: Record<string, number>;
}
