import { decodePolcmd } from '../catalog/decode-catalog.js';
import type { PolicyCommand } from '../policy/model.js';
import type pg from 'pg';
import type { FactsTable } from '../facts/resolve-facts.js';
import type { SubjectRelation } from '../rls/row-security-subjects.js';

/**
 * What explain needs to know about the tenant tables, read once before the
 * first query is planned (one set-based query per fact, never one per query
 * or per table): which relations (partitions and inheritance children
 * included) belong to which tenant table, their columns, their valid
 * indexes, their policies, and whether hypopg is there.
 */

export interface IndexInfo {
  schema: string;
  name: string;
  /** Key columns in order; null for an expression. */
  columns: Array<string | null>;
  unique: boolean;
  partial: boolean;
}

export interface PolicyInfo {
  name: string;
  permissive: boolean;
  command: PolicyCommand;
  roles: string[];
  using: string | null;
  check: string | null;
}

export interface TenantRelation {
  /** The tenant table of the facts (a partition's root). */
  table: FactsTable;
  /** The columns a tenant-scoped access leads with: the tenant column, or the `via` columns. */
  lead: string[];
  partitioned: boolean;
  columns: Set<string>;
  /** Valid indexes of the tenant table itself. */
  indexes: IndexInfo[];
  policies: PolicyInfo[];
}

/** A relation of a tenant table's tree as row security sees it when a query names it: its own flags, owner and policies. */
export interface RelationSecurity {
  schema: string;
  name: string;
  relation: SubjectRelation;
  policies: PolicyInfo[];
}

export interface HypopgStatus {
  installed: boolean;
  /** In pg_available_extensions: `CREATE EXTENSION hypopg` would work. */
  available: boolean;
  schema?: string;
  version?: string;
}

export interface ExplainCatalog {
  serverVersion: string;
  major: number;
  /** `schema.relname` of every tenant table, partition and child, to its tenant table. */
  relations: Map<string, TenantRelation>;
  /** `schema.relname` of every tenant table, partition and child, to its own row security. */
  security: Map<string, RelationSecurity>;
  /** `schema.indexname` of every valid index on those relations. */
  indexes: Map<string, IndexInfo>;
  /** Tenant tables of the facts that the database lacks. */
  missing: FactsTable[];
  hypopg: HypopgStatus;
}

export function relationKey(schema: string, name: string): string {
  return `${schema}.${name}`;
}

export async function readExplainCatalog(client: pg.ClientBase, tables: FactsTable[]): Promise<ExplainCatalog> {
  const { rows: version } = await client.query<{ num: string; text: string }>(
    "SELECT pg_catalog.current_setting('server_version_num') AS num, pg_catalog.current_setting('server_version') AS text",
  );
  const major = Math.floor(Number(version[0].num) / 10000);
  const schemas = tables.map((t) => t.schema);
  const names = tables.map((t) => t.name);

  // Every relation of each tenant table's inheritance tree (partitions at any depth), with its root.
  const { rows: members } = await client.query<{
    root_schema: string;
    root_name: string;
    schema: string;
    name: string;
    relkind: string;
    columns: string[];
    owner: string;
    rls: boolean;
    force: boolean;
    is_partition: boolean;
  }>(
    `WITH RECURSIVE roots AS (
       SELECT t.schema, t.name, c.oid
         FROM unnest($1::text[], $2::text[]) AS t(schema, name)
         JOIN pg_catalog.pg_namespace n ON n.nspname = t.schema
         JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.name AND c.relkind IN ('r', 'p')
     ), tree AS (
       SELECT schema, name, oid FROM roots
       UNION
       SELECT tree.schema, tree.name, i.inhrelid FROM tree JOIN pg_catalog.pg_inherits i ON i.inhparent = tree.oid
     )
     SELECT tree.schema AS root_schema, tree.name AS root_name, n.nspname AS schema, c.relname AS name, c.relkind::text AS relkind,
            pg_catalog.pg_get_userbyid(c.relowner) AS owner, c.relrowsecurity AS rls, c.relforcerowsecurity AS force, c.relispartition AS is_partition,
            ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS columns
       FROM tree
       JOIN pg_catalog.pg_class c ON c.oid = tree.oid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      ORDER BY 1, 2, 3, 4`,
    [schemas, names],
  );

  const { rows: indexRows } = await client.query<{
    table_schema: string;
    table_name: string;
    schema: string;
    name: string;
    columns: Array<string | null>;
    unique: boolean;
    partial: boolean;
  }>(
    `SELECT tn.nspname AS table_schema, t.relname AS table_name, n.nspname AS schema, ic.relname AS name,
            ARRAY(SELECT a.attname::text
                    FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                    LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum AND k.attnum > 0
                   WHERE k.ord <= i.indnkeyatts
                   ORDER BY k.ord) AS columns,
            i.indisunique AS unique, i.indpred IS NOT NULL AS partial
       FROM pg_catalog.pg_index i
       JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace
       JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
       JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
      WHERE i.indisvalid AND i.indisready AND (tn.nspname::text, t.relname::text) IN (SELECT * FROM unnest($1::text[], $2::text[]))
      ORDER BY 1, 2, 4`,
    [members.map((m) => m.schema), members.map((m) => m.name)],
  );

  const { rows: policyRows } = await client.query<{
    schema: string;
    table: string;
    name: string;
    permissive: boolean;
    command: string;
    roles: string[];
    using: string | null;
    check: string | null;
  }>(
    `SELECT n.nspname AS schema, c.relname AS table, p.polname AS name, p.polpermissive AS permissive, p.polcmd::text AS command,
            ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(r)::text END FROM unnest(p.polroles) AS r ORDER BY 1) AS roles,
            pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS using, pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) AS check
       FROM pg_catalog.pg_policy p
       JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE (n.nspname::text, c.relname::text) IN (SELECT * FROM unnest($1::text[], $2::text[]))
      ORDER BY 1, 2, 3`,
    // Every relation of the trees: a partition read directly is checked with its own policies.
    [members.map((m) => m.schema), members.map((m) => m.name)],
  );

  const { rows: hypopg } = await client.query<{ version: string | null; schema: string | null; available: boolean }>(
    `SELECT e.extversion AS version, n.nspname AS schema,
            EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'hypopg') AS available
       FROM (SELECT 1) AS one
       LEFT JOIN pg_catalog.pg_extension e ON e.extname = 'hypopg'
       LEFT JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace`,
  );

  const relations = new Map<string, TenantRelation>();
  const policiesOf = new Map<string, PolicyInfo[]>();
  for (const p of policyRows) {
    const key = relationKey(p.schema, p.table);
    const list = policiesOf.get(key) ?? [];
    list.push({ name: p.name, permissive: p.permissive, command: decodePolcmd(p.command), roles: p.roles, using: p.using, check: p.check });
    policiesOf.set(key, list);
  }
  const security = new Map<string, RelationSecurity>();
  for (const m of members) {
    const key = relationKey(m.schema, m.name);
    security.set(key, {
      schema: m.schema,
      name: m.name,
      relation: { kind: m.relkind, owner: m.owner, rowSecurity: m.rls, forceRowSecurity: m.force, isPartition: m.is_partition, label: key },
      policies: policiesOf.get(key) ?? [],
    });
  }
  const indexes = new Map<string, IndexInfo>();
  for (const row of indexRows)
    indexes.set(relationKey(row.schema, row.name), { schema: row.schema, name: row.name, columns: row.columns, unique: row.unique, partial: row.partial });
  const missing: FactsTable[] = [];
  for (const table of tables) {
    const own = members.filter((m) => m.root_schema === table.schema && m.root_name === table.name);
    const root = own.find((m) => m.schema === table.schema && m.name === table.name);
    if (!root) {
      missing.push(table);
      continue;
    }
    const info: TenantRelation = {
      table,
      lead: table.column ? [table.column] : (table.via?.columns ?? []),
      partitioned: root.relkind === 'p',
      columns: new Set(root.columns),
      indexes: indexRows.filter((r) => r.table_schema === table.schema && r.table_name === table.name).map((r) => indexes.get(relationKey(r.schema, r.name))!),
      policies: policiesOf.get(relationKey(table.schema, table.name)) ?? [],
    };
    for (const m of own) if (!relations.has(relationKey(m.schema, m.name))) relations.set(relationKey(m.schema, m.name), info);
  }
  return {
    serverVersion: version[0].text,
    major,
    relations,
    security,
    indexes,
    missing,
    hypopg: {
      installed: hypopg[0].version !== null,
      available: hypopg[0].available,
      schema: hypopg[0].schema ?? undefined,
      version: hypopg[0].version ?? undefined,
    },
  };
}
