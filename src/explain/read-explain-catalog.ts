import type { PolicyCommand } from '../policy/model.js';
import type pg from 'pg';
import type { FactsTable } from '../facts/resolve-facts.js';
import { CatalogSnapshot, groupBy } from '../catalog/read-catalog.js';
import type { SubjectRelation, SubjectRole } from '../rls/row-security-subjects.js';
import { readViewFacts, type ExplainView } from './read-view-facts.js';

/**
 * What explain needs to know about the tenant tables, read once before the
 * first query is planned from the catalog layer (src/catalog/read-catalog.ts:
 * one set-based query per fact, never one per query or per table): which relations (partitions and inheritance children
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
  /** The views of the user schemas, by `schema.name` (read-view-facts.ts). */
  views: Map<string, ExplainView>;
  /** The roles explain plans as and the views' owners, as the row-security model sees them. */
  subjects: Map<string, SubjectRole>;
  /** `schema.indexname` of every valid index on those relations. */
  indexes: Map<string, IndexInfo>;
  /** Tenant tables of the facts that the database lacks. */
  missing: FactsTable[];
  hypopg: HypopgStatus;
}

export function relationKey(schema: string, name: string): string {
  return `${schema}.${name}`;
}

/** `roles`: the roles the queries are planned as, read for the row-security model with the views' owners. */
export async function readExplainCatalog(client: pg.ClientBase, tables: FactsTable[], roles: readonly string[] = []): Promise<ExplainCatalog> {
  const catalog = new CatalogSnapshot(client);
  const server = await catalog.server();
  const major = Math.floor(server.versionNum / 10000);

  // Every relation of each tenant table's inheritance tree (partitions at any depth), with its root.
  const roots = (await catalog.relations({ names: tables.map((t) => ({ schema: t.schema, name: t.name })) })).filter((r) => r.kind === 'r' || r.kind === 'p');
  const rootOids = roots.map((r) => r.oid);
  const tree = await catalog.inheritance(rootOids);
  const memberOids = [...new Set([...rootOids, ...tree.map((t) => t.oid)])];
  const members = new Map((await catalog.relations({ oids: memberOids })).map((r) => [r.oid, r]));
  const columns = await catalog.columns({ oids: rootOids });
  const indexRows = (await catalog.indexes({ oids: memberOids })).filter((i) => i.valid && i.ready);
  // Every relation of the trees: a partition read directly is checked with its own policies.
  const policies = await catalog.policies({ oids: memberOids });
  const hypopg = (await catalog.extensions()).find((e) => e.name === 'hypopg');
  const available = (await catalog.availableExtensions(['hypopg'])).length > 0;

  const relations = new Map<string, TenantRelation>();
  const indexes = new Map<string, IndexInfo>();
  for (const row of indexRows) {
    const columns = (row.keyNames ?? []).map((name) => (name === '' ? null : name));
    indexes.set(relationKey(row.schema, row.name), { schema: row.schema, name: row.name, columns, unique: row.unique, partial: row.partial });
  }
  const rootByKey = new Map(roots.map((r) => [relationKey(r.schema, r.name), r]));
  const columnsOf = groupBy(columns, (c) => c.relOid);
  const indexesOf = groupBy(indexRows, (i) => i.relOid);
  const policiesOf = new Map<string, PolicyInfo[]>();
  for (const [oid, list] of groupBy(policies, (p) => p.relOid)) {
    policiesOf.set(
      oid,
      list.map((p) => ({ name: p.name, permissive: p.permissive, command: p.command, roles: p.roles, using: p.using ?? null, check: p.check ?? null })),
    );
  }
  const security = new Map<string, RelationSecurity>();
  for (const m of members.values()) {
    const key = relationKey(m.schema, m.name);
    security.set(key, {
      schema: m.schema,
      name: m.name,
      relation: { kind: m.kind, owner: m.owner, rowSecurity: m.rls, forceRowSecurity: m.force, isPartition: m.isPartition, label: key },
      policies: policiesOf.get(m.oid) ?? [],
    });
  }
  const childrenOf = groupBy(tree, (t) => t.root);
  const missing: FactsTable[] = [];
  for (const table of tables) {
    const root = rootByKey.get(relationKey(table.schema, table.name));
    if (!root) {
      missing.push(table);
      continue;
    }
    const info: TenantRelation = {
      table,
      lead: table.column ? [table.column] : (table.via?.columns ?? []),
      partitioned: root.kind === 'p',
      columns: new Set((columnsOf.get(root.oid) ?? []).map((c) => c.name)),
      indexes: (indexesOf.get(root.oid) ?? []).map((r) => indexes.get(relationKey(r.schema, r.name))!),
      policies: policiesOf.get(root.oid) ?? [],
    };
    const own = [root.oid, ...(childrenOf.get(root.oid) ?? []).map((t) => t.oid)];
    for (const oid of own) {
      const m = members.get(oid);
      if (m && !relations.has(relationKey(m.schema, m.name))) relations.set(relationKey(m.schema, m.name), info);
    }
  }
  const { views, subjects } = await readViewFacts(catalog, roles);
  return {
    serverVersion: server.version,
    major,
    relations,
    security,
    views,
    subjects,
    indexes,
    missing,
    hypopg: { installed: hypopg !== undefined, available, schema: hypopg?.schema, version: hypopg?.version },
  };
}
