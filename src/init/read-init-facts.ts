import type pg from 'pg';
import { withCatalogSearchPath } from '../catalog/with-catalog-search-path.js';
import { CatalogSnapshot } from '../catalog/read-catalog.js';
import type { ExtensionTableRow } from '../catalog/catalog-rows.js';

/**
 * What `init` needs beyond the CatalogModel (src/catalog/introspect-catalog.ts),
 * from the catalog layer (src/catalog/read-catalog.ts: one set-based query
 * per fact, never one per table or role).
 */
export interface InitFacts {
  /**
   * Login roles with BYPASSRLS (not superusers) that matter to this database:
   * they (or a role they are a member of) own objects here or hold privileges
   * here (pg_shdepend), own the database, or are granted CONNECT on it by
   * name (CONNECT through PUBLIC, the default, does not count: every role has it).
   */
  bypassRoles: string[];
  /** Tables and partitioned tables that belong to an extension (pg_depend 'e'); rlsctl does not manage them. */
  extensionTables: ExtensionTableRow[];
  /** The schema of each installed extension. */
  extensionSchemas: { extension: string; schema: string }[];
}

export async function readInitFacts(client: pg.ClientBase | pg.Pool, schemas?: string[]): Promise<InitFacts> {
  return withCatalogSearchPath(client, async (c) => {
    const catalog = new CatalogSnapshot(c);
    const bypassRoles = await catalog.databaseBypassRoles();
    const extensionTables = await catalog.extensionTables(schemas);
    const extensionSchemas = (await catalog.extensions()).map((e) => ({ extension: e.name, schema: e.schema }));
    return { bypassRoles, extensionTables, extensionSchemas };
  });
}
