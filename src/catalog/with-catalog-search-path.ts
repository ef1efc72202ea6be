import type pg from 'pg';

/**
 * pg_get_expr(), format_type() and pg_get_indexdef() print a name qualified
 * or not depending on whether it is visible in the session's search_path. A
 * policy expression read by one session and compared with one canonicalised by
 * another would then differ for no reason (perpetual drift). Every catalog
 * read and every canonicalisation therefore runs with the same fixed path,
 * `pg_catalog, pg_temp`: built-in names unqualified, every other qualified.
 *
 * The path is set for the session and put back afterwards rather than with
 * SET LOCAL, because the caller may or may not be inside a transaction (apply
 * plans again inside its own). If the caller's transaction fails, its
 * rollback restores the path anyway.
 */
export const CATALOG_SEARCH_PATH = 'pg_catalog, pg_temp';

export async function withCatalogSearchPath<T>(client: pg.ClientBase | pg.Pool, fn: (client: pg.ClientBase) => Promise<T>): Promise<T> {
  if (isPool(client)) {
    const pooled = await client.connect();
    try {
      return await withCatalogSearchPath(pooled, fn);
    } finally {
      pooled.release();
    }
  }
  const { rows } = await client.query<{ path: string }>(
    `SELECT pg_catalog.current_setting('search_path') AS path, pg_catalog.set_config('search_path', $1, false)`,
    [CATALOG_SEARCH_PATH],
  );
  let failed = false;
  try {
    return await fn(client);
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    await client.query(`SELECT pg_catalog.set_config('search_path', $1, false)`, [rows[0].path]).catch((error) => {
      // In a failed transaction the caller's ROLLBACK restores the path.
      if (!failed) throw error;
    });
  }
}

/** A Pool hands out clients; a client (or a pooled client) runs queries on one connection. */
function isPool(client: pg.ClientBase | pg.Pool): client is pg.Pool {
  return typeof (client as pg.Pool).totalCount === 'number' && typeof (client as pg.Pool).connect === 'function';
}
