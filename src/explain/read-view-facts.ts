import type pg from 'pg';

/**
 * The views explain needs to attribute what a plan reads (kept apart from
 * read-explain-catalog.ts, which moves onto the shared catalog layer): each
 * view outside the system schemas, whether it runs as its invoker, its
 * owner's bypass attributes, and the relations its rule reads (pg_depend of
 * its pg_rewrite rule), each with its owner and FORCE flag. One set-based
 * query, read once before the first query is planned.
 */

export interface ViewRead {
  schema: string;
  name: string;
  /** r, p, v, m, f, ... */
  kind: string;
  owner: string;
  /** FORCE ROW LEVEL SECURITY on the relation read. */
  forced: boolean;
  /** The view's owner has the privileges of the relation's owner (pg_has_role ... USAGE). */
  ownerHasPrivs: boolean;
}

export interface ViewFact {
  schema: string;
  name: string;
  owner: string;
  ownerSuperuser: boolean;
  ownerBypassRls: boolean;
  /** WITH (security_invoker = true): reads its relations as whoever reads the view (15+). */
  invoker: boolean;
  reads: ViewRead[];
}

export async function readViewFacts(client: pg.ClientBase): Promise<Map<string, ViewFact>> {
  const { rows } = await client.query<ViewFact>(
    `SELECT n.nspname AS schema, c.relname AS name, pg_catalog.pg_get_userbyid(c.relowner) AS owner,
            COALESCE(o.rolsuper, false) AS "ownerSuperuser", COALESCE(o.rolbypassrls, false) AS "ownerBypassRls",
            EXISTS (SELECT 1 FROM unnest(COALESCE(c.reloptions, '{}'::text[])) AS opt
                     WHERE opt ~* '^security_invoker=(true|on|yes|1|t|y)$') AS invoker,
            COALESCE((SELECT json_agg(DISTINCT jsonb_build_object(
                        'schema', rn.nspname, 'name', rc.relname, 'kind', rc.relkind::text,
                        'owner', pg_catalog.pg_get_userbyid(rc.relowner), 'forced', rc.relforcerowsecurity,
                        'ownerHasPrivs', pg_catalog.pg_has_role(c.relowner, rc.relowner, 'USAGE')))
                        FROM pg_catalog.pg_rewrite rw
                        JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = rw.oid
                                                   AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid <> c.oid
                        JOIN pg_catalog.pg_class rc ON rc.oid = d.refobjid
                        JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
                       WHERE rw.ev_class = c.oid), '[]'::json) AS reads
       FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_catalog.pg_roles o ON o.oid = c.relowner
      WHERE c.relkind = 'v' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'`,
  );
  return new Map(rows.map((r) => [`${r.schema}.${r.name}`, r]));
}

/**
 * Why the policies of `table` do not apply when it is read through `view`:
 * the view reads it with its owner's rights (no security_invoker), and that
 * owner is a superuser, has BYPASSRLS, or has the privileges of the table's
 * owner on a table that does not force row level security (audit's RLS050).
 * Undefined when they apply. One small function, so that a shared model of
 * row security can replace it.
 */
export function viewBypassReason(
  views: Map<string, ViewFact>,
  view: ViewFact,
  table: { schema: string; name: string },
  /** The view whose owner reads `view`'s relations: `view` itself, or the view around a security-invoker one. */
  reader: ViewFact | undefined = view.invoker ? undefined : view,
  seen = new Set<string>(),
): string | undefined {
  const key = `${view.schema}.${view.name}`;
  if (seen.has(key)) return undefined;
  seen.add(key);
  for (const read of view.reads) {
    const inner = read.kind === 'v' ? views.get(`${read.schema}.${read.name}`) : undefined;
    if (inner) {
      // A security-invoker view inside reads as this view's reader; any other as its own owner.
      const nested = viewBypassReason(views, inner, table, inner.invoker ? reader : inner, seen);
      if (nested) return nested;
      continue;
    }
    // Read as the app role itself (a security-invoker view at the top): the policies apply.
    if (read.schema !== table.schema || read.name !== table.name || !reader) continue;
    const where = `the view ${reader.schema}.${reader.name}${reader === view ? '' : ` (through ${view.schema}.${view.name})`}`;
    if (reader.ownerSuperuser) return `${where} reads it as its owner ${reader.owner}, a superuser`;
    if (reader.ownerBypassRls) return `${where} reads it as its owner ${reader.owner}, who has BYPASSRLS`;
    // pg_has_role of the view's own owner: exact where the reader is this view, approximate through an invoker view.
    const privs = reader === view ? read.ownerHasPrivs : reader.owner === read.owner;
    if (privs && !read.forced)
      return `${where} reads it as its owner ${reader.owner}, who ${reader.owner === read.owner ? 'owns' : `has the privileges of ${read.owner}, the owner of`} ${table.schema}.${table.name}, which does not force row level security`;
  }
  return undefined;
}
