import type pg from 'pg';
import { UsageError } from '../errors.js';
import type { FactsTable, TenantFacts } from '../facts/resolve-facts.js';
import { qualify } from '../compile/quote.js';
import { loadParser } from '../policy/expression.js';
import { checksByColumn, functionNames, type ColumnCheck } from './check-values.js';

/**
 * What verify needs to know about the database, read set-based: one query
 * per fact for the whole database (style.md), never one per table. Every
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
}

const SYSTEM_SCHEMAS = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'`;
const NOT_EXTENSION = (alias: string, catalog: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = '${catalog}'::pg_catalog.regclass AND e.objid = ${alias}.oid AND e.deptype = 'e')`;

const KIND: Record<string, RelationKind> = { r: 'table', p: 'table', f: 'foreign_table', v: 'view', m: 'materialized_view' };

export async function readVerifyCatalog(client: pg.ClientBase, facts: TenantFacts, setting: string): Promise<VerifyCatalog> {
  const roles = facts.appRoles;

  // 1. The declared tenant tables.
  const { rows: declaredRows } = await client.query<{ ord: string; oid: string | null; relkind: string | null }>(
    `SELECT d.ord::text AS ord, c.oid::text AS oid, c.relkind::text AS relkind
       FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS d(schema, name, ord)
       LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = d.schema
       LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = d.name AND c.relkind IN ('r', 'p', 'f')
      ORDER BY d.ord`,
    [facts.tenantTables.map((t) => t.schema), facts.tenantTables.map((t) => t.name)],
  );
  const missing = declaredRows.filter((r) => r.oid === null).map((r) => facts.tenantTables[Number(r.ord) - 1]);
  if (missing.length > 0) {
    throw new UsageError(
      `the database lacks ${missing.length === 1 ? 'a tenant table' : `${missing.length} tenant tables`} of the policy file: ${missing.map((t) => `${t.schema}.${t.name}`).join(', ')}`,
      { hint: 'run your migrations first, or point --db at the database the policy file describes' },
    );
  }
  const declaredOid = new Map<string, number>();
  const declaredByOid = new Map<number, FactsTable>();
  facts.tenantTables.forEach((t, i) => {
    const oid = Number(declaredRows[i].oid);
    declaredOid.set(`${t.schema}.${t.name}`, oid);
    declaredByOid.set(oid, t);
  });
  const declaredOids = [...declaredByOid.keys()];

  // 2. Partitions and inheritance children, at every depth (pg_inherits), with their root.
  const { rows: childRows } = await client.query<{ oid: string; parent: string; root: string }>(
    `WITH RECURSIVE tree(oid, parent, root) AS (
       SELECT i.inhrelid, i.inhparent, i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhparent = ANY ($1::oid[])
       UNION
       SELECT i.inhrelid, i.inhparent, t.root FROM pg_catalog.pg_inherits i JOIN tree t ON i.inhparent = t.oid
     )
     SELECT DISTINCT ON (oid) oid::text, parent::text, root::text FROM tree ORDER BY oid, root`,
    [declaredOids],
  );
  const childOf = new Map(childRows.map((r) => [Number(r.oid), { parent: Number(r.parent), root: Number(r.root) }]));
  const tenantOids = [...declaredOids, ...childRows.map((r) => Number(r.oid)).filter((o) => !declaredByOid.has(o))];

  // 3. Views and materialized views that read tenant relations, transitively (pg_depend → pg_rewrite).
  const { rows: viewRows } = await client.query<{ oid: string; reads: string[] }>(
    `WITH RECURSIVE reads(view, rel) AS (
       SELECT r.ev_class, d.refobjid
         FROM pg_catalog.pg_depend d
         JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid
        WHERE d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = ANY ($1::oid[]) AND r.ev_class <> d.refobjid
       UNION
       SELECT r.ev_class, reads.rel
         FROM reads
         JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = reads.view
         JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid AND r.ev_class <> reads.view
     )
     SELECT reads.view::text AS oid, ARRAY(SELECT DISTINCT x.rel::text FROM reads x WHERE x.view = reads.view ORDER BY 1) AS reads
       FROM reads
       JOIN pg_catalog.pg_class c ON c.oid = reads.view AND c.relkind IN ('v', 'm')
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE ${SYSTEM_SCHEMAS} AND ${NOT_EXTENSION('c', 'pg_catalog.pg_class')}
      GROUP BY reads.view`,
    [tenantOids],
  );
  const viewReads = new Map(viewRows.map((r) => [Number(r.oid), r.reads.map(Number)]));
  const allOids = [...tenantOids, ...viewReads.keys()];

  // 4. Every relation's name, kind, partition bound and key.
  const { rows: relRows } = await client.query<{
    oid: string;
    schema: string;
    name: string;
    relkind: string;
    relispartition: boolean;
    bound: string | null;
    partkey: string[] | null;
    owner: string;
    rls: boolean;
    force: boolean;
    options: string[] | null;
  }>(
    `SELECT c.oid::text, n.nspname AS schema, c.relname AS name, c.relkind::text, c.relispartition,
            pg_catalog.pg_get_userbyid(c.relowner) AS owner, c.relrowsecurity AS rls, c.relforcerowsecurity AS force, c.reloptions::text[] AS options,
            pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS bound,
            CASE WHEN pt.partrelid IS NULL THEN NULL
                 WHEN 0 = ANY (pt.partattrs::int2[]) THEN ARRAY[]::text[]
                 ELSE ARRAY(SELECT a.attname::text FROM unnest(pt.partattrs::int2[]) WITH ORDINALITY k(attnum, ord)
                              JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ORDER BY k.ord) END AS partkey
       FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_catalog.pg_partitioned_table pt ON pt.partrelid = c.oid
      WHERE c.oid = ANY ($1::oid[])
      ORDER BY n.nspname, c.relname`,
    [allOids],
  );

  // 5. Columns, with what a synthetic value needs: base type, category, first enum label, length.
  const { rows: colRows } = await client.query<{
    oid: string;
    name: string;
    type: string;
    notnull: boolean;
    hasdef: boolean;
    identity: string;
    generated: string;
    basetype: string;
    category: string;
    enumfirst: string | null;
    freshdef: boolean;
    defexpr: string | null;
    maxlen: number | null;
    intdigits: number | null;
  }>(
    `SELECT a.attrelid::text AS oid, a.attname AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
            a.attnotnull AS notnull, a.atthasdef AS hasdef, a.attidentity::text AS identity, a.attgenerated::text AS generated,
            a.attidentity <> '' OR EXISTS (
              SELECT 1 FROM pg_catalog.pg_attrdef ad
                JOIN pg_catalog.pg_depend dep ON dep.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND dep.objid = ad.oid
                JOIN pg_catalog.pg_class sq ON dep.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND sq.oid = dep.refobjid AND sq.relkind = 'S'
               WHERE ad.adrelid = a.attrelid AND ad.adnum = a.attnum) AS freshdef,
            (SELECT pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) FROM pg_catalog.pg_attrdef ad WHERE ad.adrelid = a.attrelid AND ad.adnum = a.attnum) AS defexpr,
            bt.typname AS basetype, bt.typcategory::text AS category,
            (SELECT e.enumlabel::text FROM pg_catalog.pg_enum e WHERE e.enumtypid = bt.oid ORDER BY e.enumsortorder LIMIT 1) AS enumfirst,
            CASE WHEN bt.typname IN ('varchar', 'bpchar') AND COALESCE(NULLIF(t.typtypmod, -1), a.atttypmod) > 4
                 THEN COALESCE(NULLIF(t.typtypmod, -1), a.atttypmod) - 4 END AS maxlen,
            CASE WHEN bt.typname = 'numeric' AND COALESCE(NULLIF(t.typtypmod, -1), a.atttypmod) > 4
                 THEN (((COALESCE(NULLIF(t.typtypmod, -1), a.atttypmod) - 4) >> 16) & 65535) - ((COALESCE(NULLIF(t.typtypmod, -1), a.atttypmod) - 4) & 65535) END AS intdigits
       FROM pg_catalog.pg_attribute a
       JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
       JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
      WHERE a.attrelid = ANY ($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attrelid, a.attnum`,
    [allOids],
  );

  // 6. Foreign keys of the tenant relations.
  const { rows: fkRows } = await client.query<{
    oid: string;
    name: string;
    columns: string[];
    refoid: string;
    refschema: string;
    refname: string;
    refcolumns: string[];
  }>(
    `SELECT k.conrelid::text AS oid, k.conname AS name, rn.nspname AS refschema, rc.relname AS refname,
            ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(attnum, ord)
                    JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum ORDER BY u.ord) AS columns,
            k.confrelid::text AS refoid,
            ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(attnum, ord)
                    JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.attnum ORDER BY u.ord) AS refcolumns
       FROM pg_catalog.pg_constraint k
       JOIN pg_catalog.pg_class rc ON rc.oid = k.confrelid
       JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
      WHERE k.contype = 'f' AND k.conrelid = ANY ($1::oid[])
        -- A foreign key to a partitioned table is also stored once per referenced partition, as a child
        -- of the same table's constraint (PostgreSQL 12+): the constraint on the parent is the one that counts.
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint pk WHERE pk.oid = k.conparentid AND pk.conrelid = k.conrelid)
      ORDER BY k.conrelid, k.conname`,
    [tenantOids],
  );

  // 7. Unique indexes (primary keys included) of the tenant relations.
  const { rows: uniqueRows } = await client.query<{ oid: string; columns: string[] | null }>(
    `SELECT i.indrelid::text AS oid,
            CASE WHEN 0 = ANY (i.indkey::int2[]) THEN NULL
                 ELSE ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY u(attnum, ord)
                              JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = u.attnum ORDER BY u.ord) END AS columns
       FROM pg_catalog.pg_index i
      WHERE i.indisunique AND i.indrelid = ANY ($1::oid[])
      ORDER BY i.indrelid, i.indexrelid`,
    [tenantOids],
  );

  // 8. What each app role may do on each relation (schema USAGE included).
  const { rows: privRows } = await client.query<{
    oid: string;
    role: string;
    sel: boolean;
    ins: boolean;
    upd: boolean;
    del: boolean;
    updatable: string[];
    nousage: boolean;
  }>(
    `SELECT c.oid::text, r.role,
            NOT u.usage AND (pg_catalog.has_any_column_privilege(r.role, c.oid, 'SELECT') OR pg_catalog.has_any_column_privilege(r.role, c.oid, 'INSERT')
                             OR pg_catalog.has_any_column_privilege(r.role, c.oid, 'UPDATE') OR pg_catalog.has_table_privilege(r.role, c.oid, 'DELETE')) AS nousage,
            ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
                   WHERE u.usage AND a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                     AND pg_catalog.has_column_privilege(r.role, c.oid, a.attnum, 'UPDATE') ORDER BY a.attnum) AS updatable,
            u.usage AND pg_catalog.has_any_column_privilege(r.role, c.oid, 'SELECT') AS sel,
            u.usage AND pg_catalog.has_any_column_privilege(r.role, c.oid, 'INSERT') AS ins,
            u.usage AND pg_catalog.has_any_column_privilege(r.role, c.oid, 'UPDATE') AS upd,
            u.usage AND pg_catalog.has_table_privilege(r.role, c.oid, 'DELETE') AS del
       FROM pg_catalog.pg_class c
      CROSS JOIN (SELECT x FROM unnest($2::text[]) AS x WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles o WHERE o.rolname = x)) AS r(role)
      CROSS JOIN LATERAL (SELECT pg_catalog.has_schema_privilege(r.role, c.relnamespace, 'USAGE') AS usage) u
      WHERE c.oid = ANY ($1::oid[])`,
    [allOids, roles],
  );

  const columnsOf = group(colRows, (r) => Number(r.oid));
  // A default that calls a volatile function (gen_random_uuid(), clock_timestamp()) gives each row its own
  // value, like a sequence; now() or current_date are the same for the whole transaction (make-row.ts).
  await loadParser();
  const defaultCalls = new Map(colRows.filter((c) => c.defexpr !== null).map((c) => [c, functionNames(c.defexpr!)]));
  const { rows: volatileRows } = await client.query<{ name: string }>(
    `SELECT DISTINCT p.proname::text AS name FROM pg_catalog.pg_proc p WHERE p.provolatile = 'v' AND p.proname = ANY ($1::text[])`,
    [[...new Set([...defaultCalls.values()].flat())]],
  );
  const volatile = new Set(volatileRows.map((r) => r.name));
  for (const [column, names] of defaultCalls) if (names.some((n) => volatile.has(n))) column.freshdef = true;
  const fksOf = group(fkRows, (r) => Number(r.oid));
  const uniquesOf = group(uniqueRows, (r) => Number(r.oid));

  // 7b. CHECK constraints of the tenant relations (inherited ones included), parsed with libpg-query.
  const { rows: checkRows } = await client.query<{ oid: string; defs: string[] }>(
    `SELECT k.conrelid::text AS oid, array_agg(pg_catalog.pg_get_constraintdef(k.oid) ORDER BY k.conname) AS defs
       FROM pg_catalog.pg_constraint k
      WHERE k.contype = 'c' AND k.conrelid = ANY ($1::oid[])
      GROUP BY k.conrelid`,
    [tenantOids],
  );
  await loadParser();
  const checksOf = new Map(checkRows.map((r) => [Number(r.oid), checksByColumn(r.defs)]));
  const privsOf = group(privRows, (r) => Number(r.oid));

  const relations: VerifyRelation[] = relRows.map((r) => {
    const oid = Number(r.oid);
    const child = childOf.get(oid);
    const declared = declaredByOid.get(oid) ?? (child ? declaredByOid.get(child.root) : undefined);
    const isView = viewReads.has(oid) && !declared;
    const kind: RelationKind = isView ? KIND[r.relkind] : child && r.relispartition ? 'partition' : (KIND[r.relkind] ?? 'table');
    const privileges = new Map<string, RolePrivileges>();
    for (const role of roles) privileges.set(role, { select: false, insert: false, update: false, delete: false, updatable: [] });
    for (const p of privsOf.get(oid) ?? []) {
      privileges.set(p.role, {
        select: p.sel,
        insert: p.ins,
        update: p.upd,
        delete: p.del,
        updatable: p.updatable,
        ...(p.nousage ? { noSchemaUsage: true } : {}),
      });
    }
    return {
      oid,
      schema: r.schema,
      name: r.name,
      sql: qualify(r.schema, r.name),
      kind,
      relkind: r.relkind,
      declared,
      tenantColumn: declared?.column,
      parentOid: child?.parent,
      bound: r.bound ?? undefined,
      partitionKey: r.partkey === null ? undefined : r.partkey.length === 0 ? null : r.partkey,
      reads: viewReads.get(oid) ?? [],
      columns: (columnsOf.get(oid) ?? []).map((c) => ({
        name: c.name,
        type: c.type,
        notNull: c.notnull,
        hasDefault: c.hasdef,
        freshDefault: c.freshdef,
        identity: c.identity,
        generated: c.generated,
        baseType: c.basetype,
        category: c.category,
        enumFirst: c.enumfirst,
        maxLength: c.maxlen,
        integerDigits: c.intdigits,
        ...(checksOf.get(oid)?.has(c.name) ? { check: checksOf.get(oid)!.get(c.name) } : {}),
      })),
      foreignKeys: (fksOf.get(oid) ?? []).map((k) => ({
        name: k.name,
        columns: k.columns,
        refOid: Number(k.refoid),
        refSql: qualify(k.refschema, k.refname),
        refColumns: k.refcolumns,
      })),
      uniqueKeys: (uniquesOf.get(oid) ?? []).flatMap((u) => (u.columns ? [u.columns] : [])),
      privileges,
      storage: r.relkind === 'r',
      security: { owner: r.owner, rowSecurity: r.rls, forceRowSecurity: r.force, options: r.options ?? [] },
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

  const functions = await readFunctions(client, relations, roles);
  const loginDefaults = await readLoginDefaults(client, roles, setting);
  return { relations, byOid, functions, loginDefaults, tenantColumns };
}

/**
 * SECURITY DEFINER functions callable without arguments that an app role may
 * execute and that read a tenant relation: pg_depend records that for SQL
 * functions with a BEGIN ATOMIC body only (PostgreSQL 14+), so a body that
 * names a tenant relation counts too. A function that reads no tenant
 * relation (now(), a version string) cannot leak tenant rows and is left out.
 */
async function readFunctions(client: pg.ClientBase, relations: VerifyRelation[], roles: string[]): Promise<VerifyFunction[]> {
  const { rows } = await client.query<{
    oid: string;
    schema: string;
    name: string;
    signature: string;
    src: string;
    roles: string[];
    deps: string[];
    owner: string;
  }>(
    `SELECT p.oid::text, n.nspname AS schema, p.proname AS name, p.oid::pg_catalog.regprocedure::text AS signature,
            COALESCE(p.prosrc, '') AS src, o.rolname AS owner,
            ARRAY(SELECT r.role FROM unnest($1::text[]) AS r(role)
                   WHERE CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_roles o WHERE o.rolname = r.role)
                              THEN pg_catalog.has_function_privilege(r.role, p.oid, 'EXECUTE')
                                   AND pg_catalog.has_schema_privilege(r.role, n.oid, 'USAGE')
                              ELSE false END
                   ORDER BY 1) AS roles,
            ARRAY(SELECT d.refobjid::text FROM pg_catalog.pg_depend d
                   WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = p.oid
                     AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass) AS deps
       FROM pg_catalog.pg_proc p
       JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
       JOIN pg_catalog.pg_roles o ON o.oid = p.proowner
      WHERE p.prosecdef AND p.prokind = 'f' AND p.pronargs = 0
        AND p.prorettype <> ALL (ARRAY['pg_catalog.void'::pg_catalog.regtype, 'pg_catalog.trigger'::pg_catalog.regtype,
                                       'pg_catalog.event_trigger'::pg_catalog.regtype, 'pg_catalog.internal'::pg_catalog.regtype]::oid[])
        AND ${SYSTEM_SCHEMAS} AND ${NOT_EXTENSION('p', 'pg_catalog.pg_proc')}
      ORDER BY n.nspname, p.proname, p.oid`,
    [roles],
  );
  const oids = new Set(relations.map((r) => String(r.oid)));
  const names = [...new Set(relations.map((r) => r.name))];
  const mentions = (src: string) => names.some((name) => new RegExp(`(^|[^\\w$])"?${escapeRegExp(name)}"?($|[^\\w$])`, 'i').test(src));
  return rows
    .filter((r) => r.roles.length > 0 && (r.deps.some((d) => oids.has(d)) || mentions(r.src)))
    .map((r) => ({
      oid: Number(r.oid),
      schema: r.schema,
      name: r.name,
      sql: `${qualify(r.schema, r.name)}()`,
      signature: r.signature,
      executableBy: r.roles,
      owner: r.owner,
    }));
}

/**
 * A login as an app role starts with its ALTER ROLE ... SET defaults; SET
 * ROLE does not apply them. The probes apply the two that matter (the tenant
 * setting and row_security) as a login would: role and database, then role,
 * then database (PostgreSQL's order).
 */
async function readLoginDefaults(client: pg.ClientBase, roles: string[], setting: string): Promise<Map<string, LoginDefaults>> {
  const { rows } = await client.query<{ role: string | null; fordb: boolean; config: string[] }>(
    `SELECT r.rolname AS role, s.setdatabase <> 0 AS fordb, s.setconfig AS config
       FROM pg_catalog.pg_db_role_setting s
       LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
      WHERE s.setdatabase IN (0, (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()))
        AND (s.setrole = 0 OR r.rolname = ANY ($1::text[]))`,
    [roles],
  );
  const valueOf = (config: string[], name: string) => {
    const entry = config.find((c) => c.toLowerCase().startsWith(`${name.toLowerCase()}=`));
    return entry === undefined ? undefined : entry.slice(name.length + 1);
  };
  const pick = (role: string, name: string) => {
    const order = [rows.find((r) => r.role === role && r.fordb), rows.find((r) => r.role === role && !r.fordb), rows.find((r) => r.role === null && r.fordb)];
    for (const row of order) {
      const value = row ? valueOf(row.config, name) : undefined;
      if (value !== undefined) return value;
    }
    return undefined;
  };
  return new Map(roles.map((role) => [role, { tenantSetting: pick(role, setting), rowSecurity: pick(role, 'row_security') ?? 'on' }]));
}

function group<T>(rows: T[], key: (row: T) => number): Map<number, T[]> {
  const map = new Map<number, T[]>();
  for (const row of rows) {
    const k = key(row);
    const list = map.get(k) ?? [];
    list.push(row);
    map.set(k, list);
  }
  return map;
}

function uniqueBy<T>(items: T[], key: (item: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((i) => (seen.has(key(i)) ? false : (seen.add(key(i)), true)));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
