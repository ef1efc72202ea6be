import type pg from 'pg';
import { subjectRolesOf } from '../catalog/read-subject-roles.js';
import type { SubjectRole } from '../rls/row-security-subjects.js';
import { CatalogSnapshot, groupBy } from '../catalog/read-catalog.js';
import type { ColumnRow, FunctionRow, SettingRow, ViewDependencyRow } from '../catalog/catalog-rows.js';
import { UsageError } from '../errors.js';
import type { FactsTable, TenantFacts } from '../facts/resolve-facts.js';
import { qualify } from '../compile/quote.js';
import { loadParser } from '../policy/expression.js';
import { checksByColumn, functionNames, type ColumnCheck } from './check-values.js';

/**
 * What verify needs to know about the database, from the catalog layer
 * (src/catalog/read-catalog.ts): one set-based query per fact, never one
 * per table. Every
 * relation an app role can reach that holds or shows tenant rows: the
 * declared tenant tables, their partitions (and inheritance children) read
 * directly, the views and materialized views over them, and the SECURITY
 * DEFINER functions without arguments that read them.
 */

export type RelationKind = 'table' | 'partition' | 'view' | 'materialized_view' | 'foreign_table';

export interface VerifyColumn {
  name: string;
  /** The type as format_type() prints it: valid, quoted SQL for a cast. */
  type: string;
  notNull: boolean;
  hasDefault: boolean;
  /**
   * Its default gives every row a new value: an identity column, or a
   * default that draws from a sequence (serial, nextval) or calls a
   * volatile function (gen_random_uuid()). Another default
   * (now(), current_date, 0) repeats within a transaction: a unique column
   * with one gets a made-up value instead (make-row.ts).
   */
  freshDefault: boolean;
  /** pg_attribute.attidentity: '' | 'a' (ALWAYS) | 'd' (BY DEFAULT). */
  identity: string;
  /** pg_attribute.attgenerated: '' | 's' (stored). */
  generated: string;
  /** typname of the base type (domains resolved). */
  baseType: string;
  /** typcategory of the base type: N numeric, S string, D date/time, B boolean, U user (uuid, jsonb…), E enum, A array, I network… */
  category: string;
  enumFirst: string | null;
  /** Character limit of varchar(n) / char(n), else null. */
  maxLength: number | null;
  /** Digits before the decimal point that numeric(p, s) allows (p - s), else null. */
  integerDigits: number | null;
  /** What the table's CHECK constraints allow in this column, in the shapes check-values.ts reads. */
  check?: ColumnCheck;
}

export interface VerifyForeignKey {
  name: string;
  columns: string[];
  refOid: number;
  /** The referenced relation, quoted for SQL (it may be a table verify does not probe). */
  refSql: string;
  refColumns: string[];
}

export interface RolePrivileges {
  select: boolean;
  insert: boolean;
  update: boolean;
  delete: boolean;
  /** Columns the role may UPDATE (table-level grants included). */
  updatable: string[];
  /**
   * The role holds privileges on the relation but not USAGE on its schema:
   * every privilege above reads false, because no query of the role can reach
   * it (`permission denied for schema`). Reported so that a run that probed
   * nothing does not look like a clean one.
   */
  noSchemaUsage?: boolean;
}

export interface VerifyRelation {
  oid: number;
  schema: string;
  name: string;
  /** schema.name, quoted for SQL. */
  sql: string;
  kind: RelationKind;
  relkind: string;
  /** For tables and partitions: the declared tenant table this relation is or descends from. */
  declared?: FactsTable;
  /** The tenant column (tables and partitions whose tenant is not `via` a parent). */
  tenantColumn?: string;
  /** A `via` table: the parent relation and the key columns. */
  via?: { parentOid: number; columns: string[]; references: string[] };
  /** Partitions and inheritance children: the direct parent. */
  parentOid?: number;
  /** pg_get_expr(relpartbound): `FOR VALUES ...` of a partition. */
  bound?: string;
  /** A partitioned table's key columns; null when the key holds an expression. */
  partitionKey?: string[] | null;
  /** Views: the tenant relations (tables, partitions, views) they read, transitively. */
  reads: number[];
  /** Views and functions: an output column that carries the tenant (same name and type as a tenant column they read). */
  viewTenantColumn?: string;
  columns: VerifyColumn[];
  foreignKeys: VerifyForeignKey[];
  /** Column lists of unique indexes; an index on an expression is left out. */
  uniqueKeys: string[][];
  /** By role name: a Map, so that a role named `__proto__` is a role like any other. */
  privileges: Map<string, RolePrivileges>;
  /** Rows hold heap tuples here (ordinary tables and leaf partitions). */
  storage: boolean;
  /** Its owner, row level security flags and reloptions (security_invoker), for src/rls/row-security-subjects.ts. */
  security?: { owner: string; rowSecurity: boolean; forceRowSecurity: boolean; options: string[] };
}

export interface VerifyFunction {
  oid: number;
  schema: string;
  name: string;
  /** schema.name(), quoted for SQL. */
  sql: string;
  /** regprocedure text, for messages. */
  signature: string;
  executableBy: string[];
  owner: string;
}

export interface LoginDefaults {
  /** The tenant setting's value a login as this role would start with (ALTER ROLE/DATABASE ... SET). */
  tenantSetting?: string;
  rowSecurity: string;
}

export interface VerifyCatalog {
  relations: VerifyRelation[];
  byOid: Map<number, VerifyRelation>;
  functions: VerifyFunction[];
  loginDefaults: Map<string, LoginDefaults>;
  /** Tenant column names and types of the tenant relations, for views and functions. */
  tenantColumns: Array<{ name: string; type: string }>;
  /** The app roles as the row-security model sees them (src/rls/row-security-subjects.ts). */
  subjects: Map<string, SubjectRole>;
  /** The server's major version (14, 18). */
  serverMajor: number;
}

const KIND: Record<string, RelationKind> = { r: 'table', p: 'table', f: 'foreign_table', v: 'view', m: 'materialized_view' };

export async function readVerifyCatalog(client: pg.ClientBase, facts: TenantFacts, setting: string): Promise<VerifyCatalog> {
  const roles = facts.appRoles;
  const catalog = new CatalogSnapshot(client);

  // 1. The declared tenant tables.
  const found = new Map(
    (await catalog.relations({ names: facts.tenantTables.map((t) => ({ schema: t.schema, name: t.name })) }))
      .filter((r) => r.kind === 'r' || r.kind === 'p' || r.kind === 'f')
      .map((r) => [`${r.schema}.${r.name}`, r]),
  );
  const missing = facts.tenantTables.filter((t) => !found.has(`${t.schema}.${t.name}`));
  if (missing.length > 0) {
    throw new UsageError(
      `the database lacks ${missing.length === 1 ? 'a tenant table' : `${missing.length} tenant tables`} of the policy file: ${missing.map((t) => `${t.schema}.${t.name}`).join(', ')}`,
      { hint: 'run your migrations first, or point --db at the database the policy file describes' },
    );
  }
  const declaredOid = new Map<string, number>();
  const declaredByOid = new Map<number, FactsTable>();
  for (const t of facts.tenantTables) {
    const oid = Number(found.get(`${t.schema}.${t.name}`)!.oid);
    declaredOid.set(`${t.schema}.${t.name}`, oid);
    declaredByOid.set(oid, t);
  }
  const declaredOids = [...declaredByOid.keys()];

  // 2. Partitions and inheritance children, at every depth, with their root (the first by oid when several).
  const childOf = new Map<number, { parent: number; root: number }>();
  for (const r of await catalog.inheritance(declaredOids.map(String))) {
    if (!childOf.has(Number(r.oid))) childOf.set(Number(r.oid), { parent: Number(r.parent), root: Number(r.root) });
  }
  const tenantOids = [...declaredOids, ...[...childOf.keys()].filter((o) => !declaredByOid.has(o))];
  const tenantOidTexts = tenantOids.map(String);

  // 3. Views and materialized views that read tenant relations, transitively.
  const viewReads = transitiveReads(await catalog.viewDependencies(), new Set(tenantOidTexts));
  const allOids = [...tenantOids, ...viewReads.keys()].map(String);

  // 4. Every relation's name, kind, partition bound and key.
  const relRows = await catalog.relations({ oids: allOids }, 2);

  // 5. Columns, with what a synthetic value needs: base type, category, first enum label, length.
  const colRows = await catalog.columns({ oids: allOids }, { detail: 2 });

  // 6. Foreign keys of the tenant relations.
  const fkRows = await catalog.foreignKeys({ oids: tenantOidTexts }, { partitionCopies: true, detail: true });

  // 7. Unique indexes (primary keys included) of the tenant relations, in the order they were made.
  const uniqueRows = (await catalog.indexes({ oids: tenantOidTexts }, true)).filter((i) => i.unique).sort((x, y) => Number(x.oid) - Number(y.oid));

  // 8. What each app role may do on each relation (schema USAGE included).
  const privRows = await catalog.privileges(allOids, roles, true);

  const columnsOf = groupBy(colRows, (r) => Number(r.relOid));
  // A default that calls a volatile function (gen_random_uuid(), clock_timestamp()) gives each row its own
  // value, like a sequence; now() or current_date are the same for the whole transaction (make-row.ts).
  await loadParser();
  const defaultCalls = new Map(colRows.flatMap((c) => (c.values?.defaultExpression ? [[c, functionNames(c.values.defaultExpression)] as const] : [])));
  const volatile = new Set(await catalog.volatileFunctionNames([...new Set([...defaultCalls.values()].flat())]));
  const freshDefault = new Set<ColumnRow>();
  for (const [column, names] of defaultCalls) if (names.some((n) => volatile.has(n))) freshDefault.add(column);
  const fksOf = groupBy(fkRows, (r) => Number(r.relOid));
  const uniquesOf = groupBy(uniqueRows, (r) => Number(r.relOid));

  // 7b. CHECK constraints of the tenant relations (inherited ones included), parsed with libpg-query.
  const checkRows = await catalog.checks(tenantOidTexts);
  await loadParser();
  const checksOf = new Map(checkRows.map((r) => [Number(r.relOid), checksByColumn(r.definitions)]));
  const privsOf = groupBy(privRows, (r) => Number(r.relOid));

  const relations: VerifyRelation[] = relRows.map((r) => {
    const oid = Number(r.oid);
    const relkind: string = r.kind;
    const child = childOf.get(oid);
    const declared = declaredByOid.get(oid) ?? (child ? declaredByOid.get(child.root) : undefined);
    const isView = viewReads.has(oid) && !declared;
    const kind: RelationKind = isView ? KIND[relkind] : child && r.isPartition ? 'partition' : (KIND[relkind] ?? 'table');
    const privileges = new Map<string, RolePrivileges>();
    for (const role of roles) privileges.set(role, { select: false, insert: false, update: false, delete: false, updatable: [] });
    for (const p of privsOf.get(oid) ?? []) {
      const usage = p.schemaUsage;
      const held = p.anyColumn.select || p.anyColumn.insert || p.anyColumn.update || p.table.delete;
      privileges.set(p.role, {
        select: usage && p.anyColumn.select,
        insert: usage && p.anyColumn.insert,
        update: usage && p.anyColumn.update,
        delete: usage && p.table.delete,
        updatable: p.updatable ?? [],
        ...(!usage && held ? { noSchemaUsage: true } : {}),
      });
    }
    return {
      oid,
      schema: r.schema,
      name: r.name,
      sql: qualify(r.schema, r.name),
      kind,
      relkind,
      declared,
      tenantColumn: declared?.column,
      parentOid: child?.parent,
      bound: r.bound,
      partitionKey: r.partitionKey === undefined ? undefined : r.partitionKey.length === 0 ? null : r.partitionKey,
      reads: viewReads.get(oid) ?? [],
      columns: (columnsOf.get(oid) ?? []).map((c) => ({
        name: c.name,
        type: c.formatType!,
        notNull: c.notNull,
        hasDefault: c.values!.hasDefault,
        freshDefault: c.values!.sequenceDefault || freshDefault.has(c),
        identity: c.values!.identity,
        generated: c.values!.generated,
        baseType: c.values!.baseType,
        category: c.values!.category,
        enumFirst: c.values!.enumFirst,
        maxLength: c.values!.maxLength,
        integerDigits: c.values!.integerDigits,
        ...(checksOf.get(oid)?.has(c.name) ? { check: checksOf.get(oid)!.get(c.name) } : {}),
      })),
      foreignKeys: (fksOf.get(oid) ?? []).map((k) => ({
        name: k.name,
        columns: k.columnNames,
        refOid: Number(k.refOid),
        refSql: qualify(k.ref!.schema, k.ref!.name),
        refColumns: k.refColumnNames,
      })),
      uniqueKeys: (uniquesOf.get(oid) ?? []).flatMap((u) => (u.keys.includes(0) ? [] : [[...(u.keyNames ?? []), ...u.detail!.include]])),
      privileges,
      storage: relkind === 'r',
      security: { owner: r.owner, rowSecurity: r.rls, forceRowSecurity: r.force, options: r.options },
    };
  });
  const byOid = new Map(relations.map((r) => [r.oid, r]));

  // `via`: the parent is a declared tenant table; partitions of a via table keep its key columns.
  for (const rel of relations) {
    const via = rel.declared?.via;
    if (!via) continue;
    const parentOid = declaredOid.get(`${via.parentSchema}.${via.parentName}`);
    if (parentOid === undefined) {
      throw new UsageError(
        `${rel.schema}.${rel.name} takes its tenant via ${via.parentSchema}.${via.parentName}, which is not a tenant table of the policy file`,
      );
    }
    rel.via = { parentOid, columns: via.columns, references: via.references };
  }
  for (const rel of relations) {
    if (rel.tenantColumn && !rel.columns.some((c) => c.name === rel.tenantColumn)) {
      throw new UsageError(`${rel.schema}.${rel.name} has no column ${rel.tenantColumn}, the tenant column the policy file names for it`, {
        hint: 'fix `column:` for this table in the policy file, or the tenant column of the file',
      });
    }
  }

  // Views carry the tenant when they show a column with the name and type of a tenant column they read.
  const tenantColumns = uniqueBy(
    relations.flatMap((r) => {
      const column = r.tenantColumn ? r.columns.find((c) => c.name === r.tenantColumn) : undefined;
      return column ? [{ name: column.name, type: column.type }] : [];
    }),
    (c) => `${c.name}:${c.type}`,
  );
  for (const view of relations.filter((r) => r.kind === 'view' || r.kind === 'materialized_view')) {
    const candidates = view.reads.flatMap((oid) => {
      const read = byOid.get(oid);
      const column = read?.tenantColumn ? read.columns.find((c) => c.name === read.tenantColumn) : undefined;
      return column ? [column] : [];
    });
    view.viewTenantColumn = view.columns.find((c) => candidates.some((t) => t.name === c.name && t.type === c.type))?.name;
  }

  const functions = securityDefinerReaders(await catalog.functions(roles), relations);
  const loginDefaults = loginDefaultsOf(await catalog.settings(), roles, setting);
  const subjects = await subjectRolesOf(catalog, roles);
  const serverMajor = Math.floor((await catalog.server()).versionNum / 10000);
  return { relations, byOid, functions, loginDefaults, tenantColumns, subjects, serverMajor };
}

/**
 * SECURITY DEFINER functions callable without arguments that an app role may
 * execute and that read a tenant relation: pg_depend records that for SQL
 * functions with a BEGIN ATOMIC body only (PostgreSQL 14+), so a body that
 * names a tenant relation counts too. A function that reads no tenant
 * relation (now(), a version string) cannot leak tenant rows and is left out.
 */
function securityDefinerReaders(rows: FunctionRow[], relations: VerifyRelation[]): VerifyFunction[] {
  const oids = new Set(relations.map((r) => String(r.oid)));
  const names = [...new Set(relations.map((r) => r.name))];
  const mentions = (src: string) => names.some((name) => new RegExp(`(^|[^\\w$])"?${escapeRegExp(name)}"?($|[^\\w$])`, 'i').test(src));
  return rows
    .filter((r) => r.callableWithoutArguments && r.callableBy.length > 0 && (r.reads.some((d) => oids.has(d)) || mentions(r.source)))
    .map((r) => ({
      oid: Number(r.oid),
      schema: r.schema,
      name: r.name,
      sql: `${qualify(r.schema, r.name)}()`,
      signature: r.signature,
      executableBy: r.callableBy,
      owner: r.owner,
    }));
}

/**
 * A login as an app role starts with its ALTER ROLE ... SET defaults; SET
 * ROLE does not apply them. The probes apply the two that matter (the tenant
 * setting and row_security) as a login would: role and database, then role,
 * then database (PostgreSQL's order).
 */
function loginDefaultsOf(settings: SettingRow[], roles: string[], setting: string): Map<string, LoginDefaults> {
  const pick = (role: string, name: string) => {
    const wanted = name.toLowerCase();
    const of = (r: string | undefined, forDatabase: boolean) =>
      settings.find((s) => s.role === r && (s.database !== undefined) === forDatabase && s.name === wanted)?.value;
    return of(role, true) ?? of(role, false) ?? of(undefined, true);
  };
  return new Map(roles.map((role) => [role, { tenantSetting: pick(role, setting), rowSecurity: pick(role, 'row_security') ?? 'on' }]));
}

/** View oid -> the tenant relations it reads, directly or through other views (sorted as text, as the oids print). */
function transitiveReads(dependencies: ViewDependencyRow[], tenant: Set<string>): Map<number, number[]> {
  const refsOf = groupBy(dependencies, (d) => d.viewOid);
  const readsOf = (view: string, visiting: Set<string>): Set<string> => {
    const out = new Set<string>();
    visiting.add(view);
    for (const { refOid } of refsOf.get(view) ?? []) {
      if (tenant.has(refOid)) out.add(refOid);
      if (refsOf.has(refOid) && !visiting.has(refOid)) for (const r of readsOf(refOid, visiting)) out.add(r);
    }
    visiting.delete(view);
    return out;
  };
  const result = new Map<number, number[]>();
  for (const view of refsOf.keys()) {
    const reads = readsOf(view, new Set());
    if (reads.size > 0) result.set(Number(view), [...reads].sort().map(Number));
  }
  return result;
}

function uniqueBy<T>(items: T[], key: (item: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((i) => (seen.has(key(i)) ? false : (seen.add(key(i)), true)));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
