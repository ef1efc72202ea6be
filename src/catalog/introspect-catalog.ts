import type pg from 'pg';
import type { CatalogForeignKey, CatalogGrant, CatalogIndex, CatalogModel, CatalogPolicy, CatalogRole, CatalogTable, IndexKey } from './catalog-model.js';
import { CatalogSnapshot } from './read-catalog.js';
import { withCatalogSearchPath } from './with-catalog-search-path.js';

/**
 * Read a live database into a CatalogModel: `plan`'s, `apply`'s and `init`'s
 * view of the facts of the catalog layer (read-catalog.ts: one set-based
 * query per fact, never one per table, so 1,000 tables cost what 10 do),
 * read with the fixed search_path of with-catalog-search-path.ts. No OID
 * reaches the model.
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

export async function introspectCatalog(client: pg.ClientBase | pg.Pool, options: IntrospectOptions = {}): Promise<CatalogModel> {
  return withCatalogSearchPath(client, async (c) => {
    const catalog = new CatalogSnapshot(c);
    const scope = { schemas: options.schemas };
    const server = await catalog.server();
    const relations = await catalog.relations(scope, 1);
    const columns = await catalog.columns(scope, { detail: 1 });
    const policies = await catalog.policies(scope);
    const indexes = await catalog.indexes(scope, true);
    const roles = await catalog.roles();
    const grants = await catalog.grants(scope);
    const foreignKeys = await catalog.foreignKeys(scope, { detail: true });

    const byOid = new Map<string, CatalogTable>();
    const tables = relations.map((r) => {
      const table: CatalogTable = {
        schema: r.schema,
        name: r.name,
        relkind: r.kind,
        ...(r.parent ? { partitionOf: r.parent } : {}),
        owner: r.owner,
        rls: { enabled: r.rls, forced: r.force },
        columns: [],
        policies: [],
        indexes: [],
      };
      byOid.set(r.oid, table);
      return table;
    });
    for (const r of columns) {
      byOid.get(r.relOid)?.columns.push({ name: r.name, type: r.formatType ?? r.type, notNull: r.notNull, ...(r.collation ? { collation: r.collation } : {}) });
    }
    for (const r of policies) {
      const policy: CatalogPolicy = {
        name: r.name,
        permissive: r.permissive,
        command: r.command,
        roles: r.roles,
        ...(r.using !== undefined ? { using: r.using } : {}),
        ...(r.check !== undefined ? { check: r.check } : {}),
      };
      byOid.get(r.relOid)?.policies.push(policy);
    }
    for (const r of indexes) {
      const detail = r.detail!;
      const index: CatalogIndex = {
        name: r.name,
        keys: detail.keys.map(({ column, expression }): IndexKey =>
          column !== null ? { kind: 'column', name: column } : { kind: 'expression', sql: expression ?? '' },
        ),
        include: detail.include,
        unique: r.unique,
        primary: r.primary,
        valid: r.valid,
        method: detail.method,
        ...(detail.predicate !== undefined ? { predicate: detail.predicate } : {}),
        ...(r.deferrable ? { deferrable: true as const } : {}),
        ...(detail.looseCollation ? { looseCollation: true as const } : {}),
        ...(detail.attachedTo ? { attachedTo: detail.attachedTo } : {}),
        definition: detail.definition,
      };
      byOid.get(r.relOid)?.indexes.push(index);
    }
    const named = (oid: string) => byOid.get(oid)!;
    return {
      serverVersion: server.versionNum,
      tables,
      roles: roles.map((r): CatalogRole => ({
        name: r.name,
        superuser: r.superuser,
        bypassRls: r.bypassRls,
        canLogin: r.login,
        inherit: r.inherit,
        memberOf: r.memberOf,
      })),
      grants: grants.map((r): CatalogGrant => ({
        schema: named(r.relOid).schema,
        table: named(r.relOid).name,
        grantee: r.grantee,
        privilege: r.privilege,
        grantable: r.grantable,
      })),
      foreignKeys: foreignKeys.map((r): CatalogForeignKey => ({
        name: r.name,
        schema: named(r.relOid).schema,
        table: named(r.relOid).name,
        columns: r.columnNames,
        refSchema: r.ref!.schema,
        refTable: r.ref!.name,
        refColumns: r.refColumnNames,
      })),
    };
  });
}
