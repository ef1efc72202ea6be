import { expect } from 'vitest';
import type { TestDatabase } from './db.js';

/**
 * Proof that hostile input ran nothing: a canary table, and a snapshot of everything a
 * smuggled statement could change in one database (relations, columns, policies, RLS
 * flags, indexes, functions, triggers, grants, per-role settings and every user table's
 * row count). Roles are cluster-wide and other test files create theirs in parallel, so
 * payloads that create roles use a name starting with `pwned` and the snapshot lists those.
 */
export const CANARY = 'hostile_canary';

export interface DatabaseSnapshot {
  catalog: string[];
  rowCounts: Record<string, number>;
  pwnedRoles: string[];
}

/** Create the canary table (3 rows) in `public` if it is not there yet. */
export async function createCanary(db: TestDatabase): Promise<void> {
  await db.query(`CREATE TABLE IF NOT EXISTS public.${CANARY} (id int PRIMARY KEY, note text NOT NULL)`);
  await db.query(`INSERT INTO public.${CANARY} VALUES (1, 'one'), (2, 'two'), (3, 'three') ON CONFLICT DO NOTHING`);
}

const CATALOG_SQL = `
SELECT 'rel ' || c.oid::regclass::text || ' ' || c.relkind::text || ' rls=' || c.relrowsecurity || ' force=' || c.relforcerowsecurity
       || ' acl=' || coalesce(c.relacl::text, '-') AS line
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
UNION ALL
SELECT 'col ' || a.attrelid::regclass::text || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || ' notnull=' || a.attnotnull || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
   AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'pol ' || p.polrelid::regclass::text || ' ' || p.polname || ' ' || p.polcmd::text || ' ' || p.polpermissive
       || ' roles=' || p.polroles::text || ' using=' || coalesce(pg_get_expr(p.polqual, p.polrelid), '-')
       || ' check=' || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '-')
  FROM pg_policy p
UNION ALL
SELECT 'idx ' || pg_get_indexdef(i.indexrelid) || ' valid=' || i.indisvalid
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
UNION ALL
SELECT 'fn ' || p.oid::regprocedure::text || ' ' || md5(p.prosrc) || ' secdef=' || p.prosecdef
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
UNION ALL
SELECT 'trg ' || t.tgrelid::regclass::text || ' ' || t.tgname FROM pg_trigger t WHERE NOT t.tgisinternal
UNION ALL
SELECT 'evt ' || e.evtname FROM pg_event_trigger e
UNION ALL
SELECT 'nsp ' || n.nspname || ' acl=' || coalesce(n.nspacl::text, '-') FROM pg_namespace n
 WHERE n.nspname NOT LIKE 'pg_%' AND n.nspname <> 'information_schema'
UNION ALL
SELECT 'set ' || s.setrole::text || ' ' || s.setconfig::text
  FROM pg_db_role_setting s WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
UNION ALL
SELECT 'defacl ' || d.defaclrole::regrole::text || ' ' || d.defaclobjtype::text || ' ' || d.defaclacl::text FROM pg_default_acl d
ORDER BY 1`;

/** Everything a smuggled statement could change, read as the superuser. */
export async function snapshotDatabase(db: TestDatabase): Promise<DatabaseSnapshot> {
  const catalog = (await db.query<{ line: string }>(CATALOG_SQL)).rows.map((r) => r.line);
  const tables = (
    await db.query<{ t: string }>(
      `SELECT c.oid::regclass::text AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1`,
    )
  ).rows.map((r) => r.t);
  const rowCounts: Record<string, number> = Object.create(null);
  for (const t of tables) {
    // `t` is regclass text: already quoted as needed.
    const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`);
    rowCounts[t] = Number(rows[0].n);
  }
  const pwnedRoles = (await db.query<{ r: string }>(`SELECT rolname AS r FROM pg_roles WHERE rolname LIKE 'pwned%' ORDER BY 1`)).rows.map((r) => r.r);
  return { catalog, rowCounts, pwnedRoles };
}

/** Assert that nothing changed since `before`, and that the canary is intact. */
export async function expectUntouched(db: TestDatabase, before: DatabaseSnapshot): Promise<void> {
  const after = await snapshotDatabase(db);
  expect(after.pwnedRoles).toEqual([]);
  expect(after.catalog).toEqual(before.catalog);
  expect(after.rowCounts).toEqual(before.rowCounts);
  const { rows } = await db.query<{ id: number; note: string }>(`SELECT id, note FROM public.${CANARY} ORDER BY id`);
  expect(rows).toEqual([
    { id: 1, note: 'one' },
    { id: 2, note: 'two' },
    { id: 3, note: 'three' },
  ]);
}
