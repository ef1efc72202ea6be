import type pg from 'pg';
import { EVENT_TRIGGER, TRIGGER_FUNCTION, TRIGGER_SCHEMA } from '../compile/partition-trigger.js';
import { decodePolcmd } from './decode-catalog.js';
import { aclEntriesSql, aclGranteeSql, notExtensionMemberSql, relationScopeSql, userSchemaSql } from './catalog-scope.js';
import type {
  CheckRow,
  ColumnRow,
  ExtensionRow,
  ExtensionTableRow,
  ForeignKeyRow,
  FunctionRow,
  IndexRow,
  InheritanceRow,
  MembershipRow,
  PartitionTriggerState,
  PolicyRow,
  PrivilegeRow,
  RelKind,
  RelationRow,
  RoleRow,
  ServerRow,
  SettingRow,
  SqlFunctionRow,
  MemberFunctionState,
  GrantRow,
  ViewDependencyRow,
} from './catalog-rows.js';

/**
 * The catalog layer: every query rlsctl sends to pg_catalog to learn what a
 * database holds. One set-based query per fact for the whole selection,
 * never one per table, so 100,000 relations cost round trips that 10 do.
 * House rules: every catalog name `pg_catalog.`-qualified, a deterministic
 * ORDER BY, the one schema scope of catalog-scope.ts, the one decoding of
 * polcmd (decode-catalog.ts) and of ACLs (catalog-scope.ts).
 *
 * Everything here only reads: safe inside a READ ONLY transaction, and on a
 * busy production database (ACCESS SHARE on catalog tables only). The texts
 * that pg_get_expr and format_type print depend on the session's
 * search_path: a reader that compares texts across sessions runs the facts
 * inside withCatalogSearchPath (with-catalog-search-path.ts).
 *
 * CatalogSnapshot reads each fact lazily, at most once per snapshot (per
 * distinct arguments): a command asks only for the facts it needs.
 */

export type Queryable = pg.ClientBase | pg.Pool;

/**
 * Which relations a fact reads: by oid, by name, or (neither) the relations
 * of the schemas in scope (`schemas`; every user schema when absent).
 */
export interface Selection {
  oids?: string[];
  names?: Array<{ schema: string; name: string }>;
  schemas?: string[];
  /** With a schema scope: keep relations that belong to an extension (the audit judges what lives in user schemas). */
  extensions?: boolean;
  /** With a schema scope: only relations that have a column of this name. */
  withColumn?: string;
  /** With a schema scope: only tables and partitioned tables that are not partitions. */
  rootTables?: boolean;
}

/** The WHERE fragment of a selection over pg_class `c` / pg_namespace `n`; $1 oids, $2 schemas, $3/$4 names, $5 withColumn, $6 rootTables. */
function selectionSql(selection: Selection, relOid: string, kinds: string): string {
  const scope = relationScopeSql({ rel: 'c', nsp: 'n', schemas: '$2', extensions: selection.extensions });
  return `CASE
      WHEN $1::pg_catalog.oid[] IS NOT NULL THEN ${relOid} = ANY ($1::pg_catalog.oid[])
      WHEN $3::pg_catalog.text[] IS NOT NULL THEN ${relOid} IN (
        SELECT sc.oid FROM ROWS FROM (pg_catalog.unnest($3::pg_catalog.text[]), pg_catalog.unnest($4::pg_catalog.text[])) AS sel(schema, name)
          JOIN pg_catalog.pg_namespace sn ON sn.nspname = sel.schema
          JOIN pg_catalog.pg_class sc ON sc.relnamespace = sn.oid AND sc.relname = sel.name)
      ELSE c.relkind IN (${kinds}) AND ${scope}
        AND ($5::pg_catalog.text IS NULL OR EXISTS (
              SELECT 1 FROM pg_catalog.pg_attribute wa WHERE wa.attrelid = c.oid AND wa.attname = $5::pg_catalog.text AND wa.attnum > 0 AND NOT wa.attisdropped))
        AND (NOT $6::pg_catalog.bool OR (c.relkind IN ('r', 'p') AND NOT c.relispartition))
    END`;
}

function selectionParams(selection: Selection): unknown[] {
  return [
    selection.oids ?? null,
    selection.schemas ?? null,
    selection.names ? selection.names.map((n) => n.schema) : null,
    selection.names ? selection.names.map((n) => n.name) : null,
    selection.withColumn ?? null,
    selection.rootTables ?? false,
  ];
}

const RELKINDS = `'r', 'p', 'v', 'm', 'f'`;

export async function readServer(client: Queryable): Promise<ServerRow> {
  const { rows } = await client.query<{ num: string; version: string; database: string; rs_setting: string; rs_source: string; pt: string | null }>(
    `SELECT pg_catalog.current_setting('server_version_num') AS num,
            pg_catalog.current_setting('server_version') AS version,
            pg_catalog.current_database() AS database,
            s.reset_val AS rs_setting, s.source AS rs_source,
            (SELECT e.evtenabled::pg_catalog.text FROM pg_catalog.pg_event_trigger e WHERE e.evtname = $1) AS pt
       FROM pg_catalog.pg_settings s
      WHERE s.name = 'row_security'`,
    [EVENT_TRIGGER],
  );
  const r = rows[0];
  const partitionTrigger = r.pt === null ? undefined : r.pt === 'D' ? 'disabled' : 'enabled';
  return {
    versionNum: Number(r.num),
    version: r.version,
    database: r.database,
    rowSecurity: { setting: r.rs_setting, source: r.rs_source },
    ...(partitionTrigger ? { partitionTrigger } : {}),
  };
}

/** Relations (tables, partitions, views, materialized views, foreign tables), sorted by schema and name. */
/** `detail` 1: with the parent's name; 2: also the partition bound and partition key (pg_get_expr opens each relation: seconds at 100,000 partitions). */
export async function readRelations(client: Queryable, selection: Selection, detail: 0 | 1 | 2 = 0): Promise<RelationRow[]> {
  const { rows } = await client.query<{
    oid: string;
    schema: string;
    name: string;
    kind: RelKind;
    owner: string;
    rls: boolean;
    force: boolean;
    options: string[] | null;
    is_partition: boolean;
    parent: string | null;
    parent_name: string | null;
    bound: string | null;
    partkey: string[] | null;
  }>(
    `SELECT c.oid::pg_catalog.text AS oid, n.nspname AS schema, c.relname AS name, c.relkind::pg_catalog.text AS kind,
            pg_catalog.pg_get_userbyid(c.relowner) AS owner,
            c.relrowsecurity AS rls, c.relforcerowsecurity AS force,
            c.reloptions::pg_catalog.text[] AS options, c.relispartition AS is_partition, i.inhparent::pg_catalog.text AS parent,
            CASE WHEN $7 >= 1 AND i.inhparent IS NOT NULL THEN (
              SELECT pg_catalog.json_build_array(pn.nspname, pc.relname)::pg_catalog.text
                FROM pg_catalog.pg_class pc JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace WHERE pc.oid = i.inhparent) END AS parent_name,
            CASE WHEN $7 >= 2 THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END AS bound,
            CASE WHEN $7 >= 2 AND c.relkind = 'p' THEN (
              SELECT CASE WHEN 0 = ANY (pt.partattrs::pg_catalog.int2[]) THEN ARRAY[]::pg_catalog.text[]
                          ELSE ARRAY(SELECT a.attname::pg_catalog.text FROM pg_catalog.unnest(pt.partattrs::pg_catalog.int2[]) WITH ORDINALITY k(attnum, ord)
                                       JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ORDER BY k.ord) END
                FROM pg_catalog.pg_partitioned_table pt WHERE pt.partrelid = c.oid) END AS partkey
       FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_catalog.pg_inherits i ON c.relispartition AND i.inhrelid = c.oid
      WHERE c.relkind IN (${RELKINDS}) AND ${selectionSql(selection, 'c.oid', RELKINDS)}
      ORDER BY n.nspname, c.relname`,
    [...selectionParams(selection), detail],
  );
  return rows.map((r) => {
    const row: RelationRow = {
      oid: r.oid,
      schema: r.schema,
      name: r.name,
      kind: r.kind,
      owner: r.owner,
      rls: r.rls,
      force: r.force,
      options: r.options ?? [],
      isPartition: r.is_partition,
      parentOid: r.parent ?? undefined,
    };
    if (detail >= 1) {
      if (r.parent_name !== null) {
        const [schema, name] = JSON.parse(r.parent_name) as [string, string];
        row.parent = { schema, name };
      }
      if (r.bound !== null) row.bound = r.bound;
      if (r.partkey !== null) row.partitionKey = r.partkey;
    }
    return row;
  });
}

/** The partitions (at any depth) and inheritance children of the given relations, each with its parent and the root it descends from; sorted by oid and root. */
export async function readInheritance(client: Queryable, rootOids: string[]): Promise<InheritanceRow[]> {
  const { rows } = await client.query<InheritanceRow>(
    `WITH RECURSIVE tree(oid, parent, root) AS (
       SELECT i.inhrelid, i.inhparent, i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhparent = ANY ($1::pg_catalog.oid[])
       UNION
       SELECT i.inhrelid, i.inhparent, t.root FROM pg_catalog.pg_inherits i JOIN tree t ON i.inhparent = t.oid
     )
     SELECT oid::pg_catalog.text AS oid, parent::pg_catalog.text AS parent, root::pg_catalog.text AS root FROM tree ORDER BY tree.oid, tree.root`,
    [rootOids],
  );
  return rows;
}

/**
 * What verify needs to make up a value for a column (readColumns, detail 2):
 * joined only when asked, so that the audit's read of 100,000 tenant columns
 * does not pay for it row by row.
 */
const VALUES_SQL = `
       LEFT JOIN LATERAL (
         SELECT a.atthasdef AS hasdef, a.attidentity::pg_catalog.text AS identity, a.attgenerated::pg_catalog.text AS generated,
                a.attidentity <> '' OR EXISTS (
                  SELECT 1 FROM pg_catalog.pg_attrdef ad
                    JOIN pg_catalog.pg_depend dep ON dep.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND dep.objid = ad.oid
                    JOIN pg_catalog.pg_class sq ON dep.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND sq.oid = dep.refobjid AND sq.relkind = 'S'
                   WHERE ad.adrelid = a.attrelid AND ad.adnum = a.attnum) AS seqdef,
                (SELECT pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) FROM pg_catalog.pg_attrdef ad WHERE ad.adrelid = a.attrelid AND ad.adnum = a.attnum) AS defexpr,
                bt.typname AS basetype, bt.typcategory::pg_catalog.text AS category,
                (SELECT e.enumlabel::pg_catalog.text FROM pg_catalog.pg_enum e WHERE e.enumtypid = bt.oid ORDER BY e.enumsortorder LIMIT 1) AS enumfirst,
                CASE WHEN bt.typname IN ('varchar', 'bpchar') AND COALESCE(NULLIF(t.typtypmod, -1), a.atttypmod) > 4
                     THEN COALESCE(NULLIF(t.typtypmod, -1), a.atttypmod) - 4 END AS maxlen,
                CASE WHEN bt.typname = 'numeric' AND COALESCE(NULLIF(t.typtypmod, -1), a.atttypmod) > 4
                     THEN (((COALESCE(NULLIF(t.typtypmod, -1), a.atttypmod) - 4) >> 16) & 65535) - ((COALESCE(NULLIF(t.typtypmod, -1), a.atttypmod) - 4) & 65535) END AS intdigits
           FROM pg_catalog.pg_type bt
          WHERE bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
       ) v ON true
`;

export interface ColumnQuery {
  /** Only columns of these names. */
  names?: string[];
  /** 0: names and typname; 1: with format_type and collation; 2: with what a synthetic value needs (verify). */
  detail?: 0 | 1 | 2;
}

/** Columns (attnum > 0, not dropped), sorted by schema, relation and number. */
export async function readColumns(client: Queryable, selection: Selection, query: ColumnQuery = {}): Promise<ColumnRow[]> {
  const detail = query.detail ?? 0;
  const { rows } = await client.query<{
    rel: string;
    name: string;
    num: number;
    not_null: boolean;
    type: string;
    format_type: string | null;
    collation: string | null;
    hasdef: boolean | null;
    identity: string;
    generated: string;
    seqdef: boolean;
    defexpr: string | null;
    basetype: string;
    category: string;
    enumfirst: string | null;
    maxlen: number | null;
    intdigits: number | null;
  }>(
    `SELECT a.attrelid::pg_catalog.text AS rel, a.attname AS name, a.attnum AS num, a.attnotnull AS not_null, t.typname AS type,
            CASE WHEN $8 >= 1 THEN pg_catalog.format_type(a.atttypid, a.atttypmod) END AS format_type,
            CASE WHEN $8 >= 1 AND a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN (
              SELECT pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname)
                FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) END AS collation,
            ${detail >= 2 ? 'v.*' : 'NULL AS hasdef'}
       FROM pg_catalog.pg_attribute a
       JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
${detail >= 2 ? VALUES_SQL : ''}      WHERE a.attnum > 0 AND NOT a.attisdropped
        AND ($7::pg_catalog.text[] IS NULL OR a.attname = ANY ($7::pg_catalog.text[]))
        AND ${selectionSql(selection, 'a.attrelid', RELKINDS)}
      ORDER BY n.nspname, c.relname, a.attnum`,
    [...selectionParams(selection), query.names ?? null, detail],
  );
  return rows.map((r) => {
    const column: ColumnRow = { relOid: r.rel, name: r.name, num: r.num, notNull: r.not_null, type: r.type };
    if (detail >= 1) {
      column.formatType = r.format_type ?? undefined;
      if (r.collation !== null) column.collation = r.collation;
    }
    if (detail >= 2) {
      column.values = {
        hasDefault: r.hasdef ?? false,
        sequenceDefault: r.seqdef,
        defaultExpression: r.defexpr,
        identity: r.identity,
        generated: r.generated,
        baseType: r.basetype,
        category: r.category,
        enumFirst: r.enumfirst,
        maxLength: r.maxlen,
        integerDigits: r.intdigits,
      };
    }
    return column;
  });
}

/**
 * Policies, sorted by relation oid and name.
 *
 * pg_get_expr costs: it opens the relation it is given (to name the
 * columns), and it reads and prints the stored tree. On a database of
 * 100,000 partitions, one call per policy is one relcache entry built per
 * partition and seconds of deparsing the same few trees again and again. So:
 * - `ctx`: a partition whose columns have the same names at the same
 *   numbers as its parent's prints the same text in its parent's context,
 *   which the server opens once; except an expression with a reference to
 *   the row inside a sub-query (a Var with varlevelsup > 0 in the stored
 *   tree: a via policy), which pg_get_expr qualifies with the relation's
 *   own name, so it is printed in the partition's own context;
 * - `texts`: each distinct stored tree is printed once per context
 *   relation (the partitions' copies of a policy store the same tree), and
 *   the same tree in the same context always prints the same text. Trees
 *   are kilobytes each and stored compressed: each is decompressed once
 *   (`|| ''` makes a plain copy that the hashes read), and grouped by its
 *   length and two 64-bit hashes (seeds 0 and 1), never sorted nor compared
 *   again: trees that agree in all three are taken to be the same tree.
 *   Only the hashes travel on through the joins (not the texts, which made
 *   the join spill to disk at 100,000 partitions), and the varlevelsup test
 *   runs once per distinct tree (`trees`), not once per policy. `rel`
 *   decides the context once per relation;
 * - `rs`: each distinct list of roles is named once (oid 0 is PUBLIC).
 * Each text and list travels once, on its example's row; the other rows carry its id.
 */
export async function readPolicies(client: Queryable, selection: Selection): Promise<PolicyRow[]> {
  const { rows } = await client.query<{
    rel: string;
    name: string;
    cmd: string;
    permissive: boolean;
    roles_id: number;
    roles: string[] | null;
    using_id: number | null;
    using_text: string | null;
    check_id: number | null;
    check_text: string | null;
  }>(
    `WITH rel AS MATERIALIZED (
       SELECT c.oid,
              CASE WHEN i.inhparent IS NOT NULL AND NOT EXISTS (
                     SELECT 1 FROM pg_catalog.pg_attribute ca
                       LEFT JOIN pg_catalog.pg_attribute pa ON pa.attrelid = i.inhparent AND pa.attnum = ca.attnum
                      WHERE ca.attrelid = c.oid AND ca.attnum > 0 AND pa.attname IS DISTINCT FROM ca.attname)
                   THEN i.inhparent ELSE c.oid END AS ctx
         FROM pg_catalog.pg_class c
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_catalog.pg_inherits i ON c.relispartition AND i.inhrelid = c.oid
        WHERE c.oid IN (SELECT polrelid FROM pg_catalog.pg_policy) AND ${selectionSql(selection, 'c.oid', RELKINDS)}
     ), pol AS MATERIALIZED (
       SELECT p.oid, p.polrelid, p.polname, p.polcmd, p.polpermissive, p.polroles, t.q0, t.q1, t.ql, t.w0, t.w1, t.wl, rel.ctx AS relctx
         FROM pg_catalog.pg_policy p
        CROSS JOIN LATERAL (
          SELECT pg_catalog.hashtextextended(x.q, 0) AS q0, pg_catalog.hashtextextended(x.q, 1) AS q1, pg_catalog.octet_length(x.q) AS ql,
                 pg_catalog.hashtextextended(x.w, 0) AS w0, pg_catalog.hashtextextended(x.w, 1) AS w1, pg_catalog.octet_length(x.w) AS wl
            FROM (SELECT p.polqual::pg_catalog.text || '' AS q,
                         p.polwithcheck::pg_catalog.text || '' AS w OFFSET 0) x OFFSET 0) t
         JOIN rel ON rel.oid = p.polrelid
     ), trees AS MATERIALIZED (
       SELECT k.clause, k.h0, k.h1, k.len,
              (CASE k.clause WHEN 'q' THEN e.polqual ELSE e.polwithcheck END)::pg_catalog.text ~ ':varlevelsup [1-9]' AS up
         FROM (SELECT 'q' AS clause, q0 AS h0, q1 AS h1, ql AS len, pg_catalog.min(oid) AS example FROM pol WHERE ql IS NOT NULL GROUP BY 2, 3, 4
               UNION ALL
               SELECT 'w', w0, w1, wl, pg_catalog.min(oid) FROM pol WHERE wl IS NOT NULL GROUP BY 2, 3, 4) k
         JOIN pg_catalog.pg_policy e ON e.oid = k.example
     ), polctx AS MATERIALIZED (
       SELECT pol.*, CASE WHEN COALESCE(tq.up, false) OR COALESCE(tw.up, false) THEN pol.polrelid ELSE pol.relctx END AS ctx
         FROM pol
         LEFT JOIN trees tq ON tq.clause = 'q' AND tq.h0 = pol.q0 AND tq.h1 = pol.q1 AND tq.len = pol.ql
         LEFT JOIN trees tw ON tw.clause = 'w' AND tw.h0 = pol.w0 AND tw.h1 = pol.w1 AND tw.len = pol.wl
     ), texts AS MATERIALIZED (
       SELECT k.clause, k.h0, k.h1, k.len, k.ctx, k.example, (pg_catalog.row_number() OVER ())::pg_catalog.int4 AS id,
              pg_catalog.pg_get_expr(CASE k.clause WHEN 'q' THEN p.polqual ELSE p.polwithcheck END, k.ctx) AS text
         FROM (SELECT 'q' AS clause, q0 AS h0, q1 AS h1, ql AS len, ctx, pg_catalog.min(oid) AS example FROM polctx WHERE ql IS NOT NULL GROUP BY 2, 3, 4, 5
               UNION ALL
               SELECT 'w', w0, w1, wl, ctx, pg_catalog.min(oid) FROM polctx WHERE wl IS NOT NULL GROUP BY 2, 3, 4, 5) k
         JOIN pg_catalog.pg_policy p ON p.oid = k.example
     ), rs AS MATERIALIZED (
       SELECT pol.polroles, pg_catalog.min(pol.oid) AS example, (pg_catalog.row_number() OVER ())::pg_catalog.int4 AS id,
              ARRAY(SELECT x.name FROM (
                      SELECT CASE WHEN r.oid = 0 THEN 'public' ELSE COALESCE(o.rolname::pg_catalog.text, '(role ' || r.oid::pg_catalog.text || ' dropped)') END AS name
                        FROM pg_catalog.unnest(pol.polroles) AS r(oid)
                        LEFT JOIN pg_catalog.pg_roles o ON o.oid = r.oid) AS x
                     ORDER BY x.name COLLATE "C") AS names
         FROM pol GROUP BY pol.polroles
     )
     SELECT pol.polrelid::pg_catalog.text AS rel, pol.polname AS name, pol.polcmd::pg_catalog.text AS cmd, pol.polpermissive AS permissive,
            rs.id AS roles_id, CASE WHEN rs.example = pol.oid THEN rs.names END AS roles,
            q.id AS using_id, CASE WHEN q.example = pol.oid THEN q.text END AS using_text,
            w.id AS check_id, CASE WHEN w.example = pol.oid THEN w.text END AS check_text
       FROM polctx pol
       JOIN rs ON rs.polroles = pol.polroles
       LEFT JOIN texts q ON q.clause = 'q' AND q.h0 = pol.q0 AND q.h1 = pol.q1 AND q.len = pol.ql AND q.ctx = pol.ctx
       LEFT JOIN texts w ON w.clause = 'w' AND w.h0 = pol.w0 AND w.h1 = pol.w1 AND w.len = pol.wl AND w.ctx = pol.ctx
      ORDER BY pol.polrelid, pol.polname`,
    selectionParams(selection),
  );
  // One string instance per distinct text: the rules look texts up in maps many
  // times, and a string caches its hash; ten thousand copies would each hash anew.
  const texts = new Map<string, string>();
  const intern = (t: string) => {
    const known = texts.get(t);
    if (known !== undefined) return known;
    texts.set(t, t);
    return t;
  };
  const byId = new Map<number, string>();
  const rolesById = new Map<number, string[]>();
  for (const r of rows) {
    if (r.using_id !== null && r.using_text !== null) byId.set(r.using_id, intern(r.using_text));
    if (r.check_id !== null && r.check_text !== null) byId.set(r.check_id, intern(r.check_text));
    if (r.roles !== null) rolesById.set(r.roles_id, r.roles);
  }
  const textOf = (id: number | null) => (id === null ? undefined : byId.get(id));
  return rows.map((r) => ({
    relOid: r.rel,
    name: r.name,
    command: decodePolcmd(r.cmd),
    permissive: r.permissive,
    roles: rolesById.get(r.roles_id)!,
    using: textOf(r.using_id),
    check: textOf(r.check_id),
  }));
}

/** Indexes of tables, partitioned tables and materialized views, sorted by schema, relation and index name. `detail` adds IndexRow.detail. */
export async function readIndexes(client: Queryable, selection: Selection, detail = false): Promise<IndexRow[]> {
  const { rows } = await client.query<{
    rel: string;
    oid: string;
    schema: string;
    name: string;
    valid: boolean;
    ready: boolean;
    unique: boolean;
    primary: boolean;
    keys: string;
    nkeys: number;
    partial: boolean;
    deferrable: boolean;
    key_names: string[];
    key_defaults: string[] | null;
    constraint: string | null;
    all_keys: string[] | null;
    method: string | null;
    loose_collation: boolean | null;
    predicate: string | null;
    attached_to: string | null;
    definition: string | null;
  }>(
    // indkey is an int2vector (subscripts from 0); a 0 in it marks an expression,
    // whose text pg_get_indexdef(index, column number, true) gives.
    `SELECT x.indrelid::pg_catalog.text AS rel, x.indexrelid::pg_catalog.text AS oid, xn.nspname AS schema, ic.relname AS name,
            x.indisvalid AS valid, x.indisready AS ready, x.indisunique AS unique, x.indisprimary AS primary,
            x.indkey::pg_catalog.text AS keys, x.indnkeyatts AS nkeys, x.indpred IS NOT NULL AS partial,
            NOT x.indimmediate AS deferrable, con.conname AS constraint,
            ARRAY(SELECT COALESCE(a.attname::pg_catalog.text, '') FROM pg_catalog.generate_series(0, x.indnkeyatts - 1) AS k
                    LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[k] AND x.indkey[k] <> 0
                   ORDER BY k) AS key_names,
            CASE WHEN x.indisunique THEN
              ARRAY(SELECT CASE WHEN a.attidentity <> '' THEN 'identity' ELSE COALESCE(pg_catalog.pg_get_expr(d.adbin, d.adrelid), '') END
                      FROM pg_catalog.generate_series(0, x.indnkeyatts - 1) AS k
                      LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[k] AND x.indkey[k] <> 0
                      LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = x.indrelid AND d.adnum = a.attnum
                     ORDER BY k) END AS key_defaults,
            CASE WHEN $7 THEN ARRAY(
              SELECT pg_catalog.json_build_array(a.attname, CASE WHEN x.indkey[k] = 0 THEN pg_catalog.pg_get_indexdef(x.indexrelid, k + 1, true) END)::pg_catalog.text
                FROM pg_catalog.generate_series(0, x.indnatts - 1) AS k
                LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[k] AND x.indkey[k] <> 0
               ORDER BY k) END AS all_keys,
            CASE WHEN $7 THEN (SELECT am.amname::pg_catalog.text FROM pg_catalog.pg_am am WHERE am.oid = ic.relam) END AS method,
            CASE WHEN $7 THEN EXISTS (
              SELECT 1 FROM pg_catalog.generate_series(0, x.indnkeyatts - 1) AS k
                JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[k]
                JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
               WHERE x.indcollation[k] <> a.attcollation AND NOT co.collisdeterministic) END AS loose_collation,
            CASE WHEN $7 THEN pg_catalog.pg_get_expr(x.indpred, x.indrelid) END AS predicate,
            CASE WHEN $7 THEN (
              SELECT pg_catalog.json_build_array(pn.nspname, pc.relname)::pg_catalog.text
                FROM pg_catalog.pg_inherits inh
                JOIN pg_catalog.pg_class pc ON pc.oid = inh.inhparent
                JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
               WHERE inh.inhrelid = x.indexrelid) END AS attached_to,
            CASE WHEN $7 THEN pg_catalog.pg_get_indexdef(x.indexrelid) END AS definition
       FROM pg_catalog.pg_index x
       JOIN pg_catalog.pg_class ic ON ic.oid = x.indexrelid
       JOIN pg_catalog.pg_namespace xn ON xn.oid = ic.relnamespace
       JOIN pg_catalog.pg_class c ON c.oid = x.indrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_catalog.pg_constraint con ON con.conindid = x.indexrelid AND con.conrelid = x.indrelid AND con.contype IN ('p', 'u')
      WHERE ${selectionSql(selection, 'x.indrelid', `'r', 'p', 'm'`)}
      ORDER BY n.nspname, c.relname, ic.relname`,
    [...selectionParams(selection), detail],
  );
  return rows.map((r) => {
    const index: IndexRow = {
      relOid: r.rel,
      oid: r.oid,
      schema: r.schema,
      name: r.name,
      valid: r.valid,
      ready: r.ready,
      unique: r.unique,
      primary: r.primary,
      keys: r.keys.split(' ').slice(0, r.nkeys).map(Number),
      partial: r.partial,
      deferrable: r.deferrable,
      keyNames: r.key_names,
      ...(r.key_defaults ? { keyDefaults: r.key_defaults } : {}),
      constraint: r.constraint ?? undefined,
    };
    if (detail) {
      const all = (r.all_keys ?? []).map((k) => JSON.parse(k) as [string | null, string | null]);
      const attached = r.attached_to === null ? undefined : (JSON.parse(r.attached_to) as [string, string]);
      index.detail = {
        keys: all.slice(0, r.nkeys).map(([column, expression]) => ({ column, expression })),
        include: all.slice(r.nkeys).flatMap(([column]) => (column === null ? [] : [column])),
        method: r.method ?? '',
        ...(r.predicate !== null ? { predicate: r.predicate } : {}),
        looseCollation: r.loose_collation ?? false,
        ...(attached ? { attachedTo: { schema: attached[0], name: attached[1] } } : {}),
        definition: r.definition ?? '',
      };
    }
    return index;
  });
}

export interface ForeignKeyQuery {
  /**
   * Also the copies a partition holds of its partitioned table's foreign key
   * (verify probes each partition); never the copies PostgreSQL stores once
   * per referenced partition (a child of the same table's constraint).
   */
  partitionCopies?: boolean;
  /** Read ForeignKeyRow.ref. */
  detail?: boolean;
}

/** Foreign keys, sorted by schema, relation and name. */
export async function readForeignKeys(client: Queryable, selection: Selection, query: ForeignKeyQuery = {}): Promise<ForeignKeyRow[]> {
  const { rows } = await client.query<{
    rel: string;
    ref: string;
    name: string;
    cols: number[];
    refcols: number[];
    colnames: string[];
    refcolnames: string[];
    upd: string;
    del: string;
    match: string;
    deferrable: boolean;
    deferred: boolean;
    delsetcols: string[];
    ref_name: string | null;
  }>(
    `SELECT con.conrelid::pg_catalog.text AS rel, con.confrelid::pg_catalog.text AS ref, con.conname AS name,
            con.conkey::pg_catalog.int4[] AS cols, con.confkey::pg_catalog.int4[] AS refcols,
            ARRAY(SELECT a.attname FROM pg_catalog.unnest(con.conkey) WITH ORDINALITY AS k(num, ord)
                    JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.ord)::pg_catalog.text[] AS colnames,
            ARRAY(SELECT a.attname FROM pg_catalog.unnest(con.confkey) WITH ORDINALITY AS k(num, ord)
                    JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord)::pg_catalog.text[] AS refcolnames,
            con.confupdtype::pg_catalog.text AS upd, con.confdeltype::pg_catalog.text AS del, con.confmatchtype::pg_catalog.text AS match,
            con.condeferrable AS deferrable, con.condeferred AS deferred,
            -- confdelsetcols exists from PostgreSQL 15: read through to_jsonb so that one query serves 14 too.
            ARRAY(SELECT a.attname
                    FROM pg_catalog.jsonb_array_elements_text(CASE WHEN pg_catalog.jsonb_typeof(pg_catalog.to_jsonb(con) -> 'confdelsetcols') = 'array'
                                                                 THEN pg_catalog.to_jsonb(con) -> 'confdelsetcols' END) WITH ORDINALITY AS k(num, ord)
                    JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num::pg_catalog.int2 ORDER BY k.ord)::pg_catalog.text[] AS delsetcols,
            CASE WHEN $8 THEN (
              SELECT pg_catalog.json_build_array(rn.nspname, rc.relname)::pg_catalog.text
                FROM pg_catalog.pg_class rc JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace WHERE rc.oid = con.confrelid) END AS ref_name
       FROM pg_catalog.pg_constraint con
       JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE con.contype = 'f'
        AND CASE WHEN $7 THEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint pk WHERE pk.oid = con.conparentid AND pk.conrelid = con.conrelid)
                 ELSE con.conparentid = 0 END
        AND ${selectionSql(selection, 'con.conrelid', RELKINDS)}
      ORDER BY n.nspname, c.relname, con.conname`,
    [...selectionParams(selection), query.partitionCopies ?? false, query.detail ?? false],
  );
  return rows.map((r) => {
    const fk: ForeignKeyRow = {
      relOid: r.rel,
      refOid: r.ref,
      name: r.name,
      columns: r.cols,
      refColumns: r.refcols,
      columnNames: r.colnames,
      refColumnNames: r.refcolnames,
      onUpdate: r.upd,
      onDelete: r.del,
      match: r.match,
      deferrable: r.deferrable,
      deferred: r.deferred,
      deleteSetColumns: r.delsetcols,
    };
    if (r.ref_name !== null) {
      const [schema, name] = JSON.parse(r.ref_name) as [string, string];
      fk.ref = { schema, name };
    }
    return fk;
  });
}

/** CHECK constraints (inherited ones included) of the given relations, by relation. */
export async function readChecks(client: Queryable, oids: string[]): Promise<CheckRow[]> {
  const { rows } = await client.query<{ rel: string; defs: string[] }>(
    `SELECT k.conrelid::pg_catalog.text AS rel, pg_catalog.array_agg(pg_catalog.pg_get_constraintdef(k.oid) ORDER BY k.conname) AS defs
       FROM pg_catalog.pg_constraint k
      WHERE k.contype = 'c' AND k.conrelid = ANY ($1::pg_catalog.oid[])
      GROUP BY k.conrelid`,
    [oids],
  );
  return rows.map((r) => ({ relOid: r.rel, definitions: r.defs }));
}

/** Every role of the cluster, sorted by name. pg_auth_members holds one row per grantor since PostgreSQL 16: DISTINCT. */
export async function readRoles(client: Queryable): Promise<RoleRow[]> {
  const { rows } = await client.query<{ name: string; superuser: boolean; bypass: boolean; login: boolean; inherit: boolean; member_of: string[] }>(
    `SELECT r.rolname::pg_catalog.text AS name, r.rolsuper AS superuser, r.rolbypassrls AS bypass, r.rolcanlogin AS login, r.rolinherit AS inherit,
            ARRAY(SELECT DISTINCT b.rolname::pg_catalog.text
                    FROM pg_catalog.pg_auth_members m
                    JOIN pg_catalog.pg_roles b ON b.oid = m.roleid
                   WHERE m.member = r.oid
                   ORDER BY 1) AS member_of
       FROM pg_catalog.pg_roles r
      ORDER BY r.rolname COLLATE "C"`,
  );
  return rows.map((r) => ({ name: r.name, superuser: r.superuser, bypassRls: r.bypass, login: r.login, inherit: r.inherit, memberOf: r.member_of }));
}

/**
 * Who can reach which role that matters, exactly as PostgreSQL decides it
 * (pg_has_role follows every chain of grants, and knows each version's
 * rules): for the given roles, every role; for any other role, the roles
 * that bypass RLS (superuser, BYPASSRLS) and the owners of relations.
 * Superuser members are left out: a superuser is a member of every role.
 *
 * Becoming a role (SET ROLE) is what grants its BYPASSRLS or superuser
 * attribute, which are never inherited; PostgreSQL 16 split membership into
 * INHERIT and SET options, so there `pg_has_role(..., 'SET')` is the exact
 * test, and before 16 every member could SET ROLE ('MEMBER'). Ownership is
 * inherited (USAGE): the owner check of RLS is has_privs_of_role.
 */
export async function readMemberships(client: Queryable, roles: string[], versionNum: number): Promise<MembershipRow[]> {
  const setPrivilege = versionNum >= 160000 ? 'SET' : 'MEMBER';
  const { rows } = await client.query<{ member: string; role: string; inherits: boolean; can_set: boolean }>(
    `WITH owners AS (
       SELECT DISTINCT c.relowner AS oid
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN (${RELKINDS}) AND ${userSchemaSql('n')}
     )
     SELECT m.rolname AS member, r.rolname AS role,
            pg_catalog.pg_has_role(m.oid, r.oid, 'USAGE') AS inherits,
            pg_catalog.pg_has_role(m.oid, r.oid, '${setPrivilege}') AS can_set
       FROM pg_catalog.pg_roles m
       JOIN pg_catalog.pg_roles r ON r.oid <> m.oid
      WHERE NOT m.rolsuper
        AND (m.rolname = ANY ($1::pg_catalog.text[]) OR r.rolsuper OR r.rolbypassrls OR r.oid IN (SELECT oid FROM owners))
        AND pg_catalog.pg_has_role(m.oid, r.oid, 'MEMBER')
      ORDER BY 1, 2`,
    [roles],
  );
  return rows.map((r) => ({ member: r.member, role: r.role, inherits: r.inherits, canSet: r.can_set }));
}

/**
 * Table privileges granted explicitly (the entries of relacl; a NULL relacl
 * is the owner's default privileges only: no grant), sorted by schema,
 * relation, grantee and privilege. `risky`: only what the audit's rules ask
 * about, anything granted to PUBLIC and TRUNCATE and REFERENCES to anyone,
 * never the owner's own entry.
 */
export async function readGrants(client: Queryable, selection: Selection, risky = false): Promise<GrantRow[]> {
  const { rows } = await client.query<{ rel: string; grantee: string; privilege: string; grantable: boolean }>(
    `SELECT c.oid::pg_catalog.text AS rel, ${aclGranteeSql('a')} AS grantee, a.privilege_type AS privilege, a.is_grantable AS grantable
       FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      CROSS JOIN LATERAL ${aclEntriesSql('c.relacl', 'a')}
      WHERE c.relacl IS NOT NULL
        AND (NOT $7 OR (a.grantee <> c.relowner AND (a.grantee = 0 OR a.privilege_type IN ('TRUNCATE', 'REFERENCES'))))
        AND ${selectionSql(selection, 'c.oid', RELKINDS)}
      ORDER BY n.nspname, c.relname, (${aclGranteeSql('a')}) COLLATE "C", a.privilege_type COLLATE "C"`,
    [...selectionParams(selection), risky],
  );
  return rows.map((r) => ({ relOid: r.rel, grantee: r.grantee, privilege: r.privilege, grantable: r.grantable }));
}

/**
 * What each of `roles` (those that exist) may do on each of the relations,
 * as has_*_privilege answers, sorted by relation and role. `updatable`: the
 * columns each may UPDATE.
 */
export async function readPrivileges(client: Queryable, oids: string[], roles: string[], updatable = false): Promise<PrivilegeRow[]> {
  const { rows } = await client.query<{
    rel: string;
    role: string;
    usage: boolean;
    ts: boolean;
    ti: boolean;
    tu: boolean;
    td: boolean;
    cs: boolean;
    ci: boolean;
    cu: boolean;
    updatable: string[] | null;
  }>(
    `SELECT c.oid::pg_catalog.text AS rel, r.role, u.usage,
            pg_catalog.has_table_privilege(r.role, c.oid, 'SELECT') AS ts, pg_catalog.has_table_privilege(r.role, c.oid, 'INSERT') AS ti,
            pg_catalog.has_table_privilege(r.role, c.oid, 'UPDATE') AS tu, pg_catalog.has_table_privilege(r.role, c.oid, 'DELETE') AS td,
            pg_catalog.has_any_column_privilege(r.role, c.oid, 'SELECT') AS cs, pg_catalog.has_any_column_privilege(r.role, c.oid, 'INSERT') AS ci,
            pg_catalog.has_any_column_privilege(r.role, c.oid, 'UPDATE') AS cu,
            CASE WHEN $3 THEN ARRAY(SELECT a.attname::pg_catalog.text FROM pg_catalog.pg_attribute a
                   WHERE u.usage AND a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                     AND pg_catalog.has_column_privilege(r.role, c.oid, a.attnum, 'UPDATE') ORDER BY a.attnum) END AS updatable
       FROM pg_catalog.pg_class c
      CROSS JOIN (SELECT x FROM pg_catalog.unnest($2::pg_catalog.text[]) AS x WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles o WHERE o.rolname = x)) AS r(role)
      CROSS JOIN LATERAL (SELECT pg_catalog.has_schema_privilege(r.role, c.relnamespace, 'USAGE') AS usage) u
      WHERE c.oid = ANY ($1::pg_catalog.oid[])
      ORDER BY 1, 2`,
    [oids, roles, updatable],
  );
  return rows.map((r) => ({
    relOid: r.rel,
    role: r.role,
    schemaUsage: r.usage,
    table: { select: r.ts, insert: r.ti, update: r.tu, delete: r.td },
    anyColumn: { select: r.cs, insert: r.ci, update: r.cu },
    ...(r.updatable !== null ? { updatable: r.updatable } : {}),
  }));
}

/** What each view and materialized view of the user schemas reads: its _RETURN rule's pg_depend entries. */
export async function readViewDependencies(client: Queryable): Promise<ViewDependencyRow[]> {
  const { rows } = await client.query<{ view: string; ref: string }>(
    `SELECT DISTINCT rw.ev_class::pg_catalog.text AS view, d.refobjid::pg_catalog.text AS ref
       FROM pg_catalog.pg_rewrite rw
       JOIN pg_catalog.pg_class c ON c.oid = rw.ev_class AND c.relkind IN ('v', 'm')
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = rw.oid
                                  AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> rw.ev_class
      WHERE ${userSchemaSql('n')} AND ${notExtensionMemberSql('c', 'pg_catalog.pg_class')}
      ORDER BY 1, 2`,
  );
  return rows.map((r) => ({ viewOid: r.view, refOid: r.ref }));
}

/**
 * The bodies of the SQL-language functions of the user schemas (not an
 * extension's), for the audit's tenant sources (src/audit/tenant-sources.ts):
 * `auth.uid()` and the helpers a policy calls are read through what they
 * return. pg_get_function_sqlbody deparses a BEGIN ATOMIC or RETURN body
 * (PostgreSQL 14 and later), whose prosrc is empty.
 */
export async function readSqlFunctions(client: Queryable): Promise<SqlFunctionRow[]> {
  const { rows } = await client.query<{ schema: string; name: string; body: string | null; definer: boolean }>(
    `SELECT n.nspname AS schema, p.proname AS name, p.prosecdef AS definer,
            CASE WHEN p.prosqlbody IS NOT NULL THEN pg_catalog.pg_get_function_sqlbody(p.oid) ELSE p.prosrc END AS body
       FROM pg_catalog.pg_proc p
       JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
       JOIN pg_catalog.pg_language l ON l.oid = p.prolang
      WHERE l.lanname = 'sql' AND ${userSchemaSql('n')} AND ${notExtensionMemberSql('p', 'pg_catalog.pg_proc')}
      ORDER BY 1, 2, p.oid`,
  );
  return rows.flatMap((r) => (r.body === null ? [] : [{ schema: r.schema, name: r.name, body: r.body, securityDefiner: r.definer }]));
}

/** SECURITY DEFINER functions of the user schemas (not an extension's), sorted by schema, name and arguments; `roles`: whom to ask about. */
export async function readFunctions(client: Queryable, roles: string[]): Promise<FunctionRow[]> {
  const { rows } = await client.query<{
    oid: string;
    schema: string;
    name: string;
    args: string;
    signature: string;
    owner: string;
    no_args: boolean;
    src: string;
    deps: string[];
    executable_by: string[];
    callable_by: string[];
  }>(
    `SELECT p.oid::pg_catalog.text AS oid, n.nspname AS schema, p.proname AS name, pg_catalog.pg_get_function_identity_arguments(p.oid) AS args,
            p.oid::pg_catalog.regprocedure::pg_catalog.text AS signature, pg_catalog.pg_get_userbyid(p.proowner) AS owner,
            p.prokind = 'f' AND p.pronargs = 0
              AND p.prorettype <> ALL (ARRAY['pg_catalog.void'::pg_catalog.regtype, 'pg_catalog.trigger'::pg_catalog.regtype,
                                             'pg_catalog.event_trigger'::pg_catalog.regtype, 'pg_catalog.internal'::pg_catalog.regtype]::pg_catalog.oid[]) AS no_args,
            COALESCE(p.prosrc, '') AS src,
            ARRAY(SELECT d.refobjid::pg_catalog.text FROM pg_catalog.pg_depend d
                   WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = p.oid
                     AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass) AS deps,
            ARRAY(SELECT a FROM pg_catalog.unnest($1::pg_catalog.text[]) AS a
                   WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles o WHERE o.rolname = a)
                     AND pg_catalog.has_function_privilege(a, p.oid, 'EXECUTE') ORDER BY 1)::pg_catalog.text[] AS executable_by,
            ARRAY(SELECT a FROM pg_catalog.unnest($1::pg_catalog.text[]) AS a
                   WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles o WHERE o.rolname = a)
                     AND pg_catalog.has_function_privilege(a, p.oid, 'EXECUTE')
                     AND pg_catalog.has_schema_privilege(a, n.oid, 'USAGE') ORDER BY 1)::pg_catalog.text[] AS callable_by
       FROM pg_catalog.pg_proc p
       JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
      WHERE p.prosecdef AND ${userSchemaSql('n')} AND ${notExtensionMemberSql('p', 'pg_catalog.pg_proc')}
      ORDER BY n.nspname, p.proname, 4, p.oid`,
    [roles],
  );
  return rows.map((r) => ({
    oid: r.oid,
    schema: r.schema,
    name: r.name,
    args: r.args,
    signature: r.signature,
    owner: r.owner,
    callableWithoutArguments: r.no_args,
    source: r.src,
    reads: r.deps,
    executableBy: r.executable_by,
    callableBy: r.callable_by,
  }));
}

/** Of the function names given, those of a VOLATILE function (any schema). */
export async function readVolatileFunctionNames(client: Queryable, names: string[]): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT DISTINCT p.proname::pg_catalog.text AS name FROM pg_catalog.pg_proc p WHERE p.provolatile = 'v' AND p.proname = ANY ($1::pg_catalog.text[])`,
    [names],
  );
  return rows.map((r) => r.name);
}

/**
 * Per-role and per-database defaults (ALTER DATABASE / ROLE ... SET): for
 * this database, for every database (setdatabase 0), per role and per role
 * in this database.
 */
export async function readSettings(client: Queryable): Promise<SettingRow[]> {
  const { rows } = await client.query<{ database: string | null; role: string | null; config: string[] }>(
    `SELECT d.datname AS database, r.rolname AS role, s.setconfig::pg_catalog.text[] AS config
       FROM pg_catalog.pg_db_role_setting s
       LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
       LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
      WHERE s.setdatabase = 0 OR d.datname = pg_catalog.current_database()
      ORDER BY 1 NULLS FIRST, 2 NULLS FIRST`,
  );
  const settings: SettingRow[] = [];
  for (const row of rows) {
    for (const entry of row.config ?? []) {
      const eq = entry.indexOf('=');
      if (eq < 0) continue;
      settings.push({ database: row.database ?? undefined, role: row.role ?? undefined, name: entry.slice(0, eq).toLowerCase(), value: entry.slice(eq + 1) });
    }
  }
  return settings;
}

/** Schemas: those listed that exist, or (none listed) every user schema; sorted. */
export async function readSchemas(client: Queryable, schemas?: string[]): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT n.nspname::pg_catalog.text AS name FROM pg_catalog.pg_namespace n
      WHERE ${userSchemaSql('n')} AND ($1::pg_catalog.text[] IS NULL OR n.nspname = ANY ($1::pg_catalog.text[]))
      ORDER BY n.nspname`,
    [schemas ?? null],
  );
  return rows.map((r) => r.name);
}

/** Installed extensions and their schemas, sorted by name. */
export async function readExtensions(client: Queryable): Promise<ExtensionRow[]> {
  const { rows } = await client.query<ExtensionRow>(
    `SELECT e.extname::pg_catalog.text AS name, n.nspname::pg_catalog.text AS schema, e.extversion::pg_catalog.text AS version
       FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
      ORDER BY e.extname COLLATE "C"`,
  );
  return rows;
}

/** Of the extension names given, those the server could install (pg_available_extensions). */
export async function readAvailableExtensions(client: Queryable, names: string[]): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT x.name::pg_catalog.text AS name FROM pg_catalog.pg_available_extensions x WHERE x.name = ANY ($1::pg_catalog.text[]) ORDER BY 1`,
    [names],
  );
  return rows.map((r) => r.name);
}

/** Tables and partitioned tables (not partitions) of the schemas in scope that belong to an extension. */
export async function readExtensionTables(client: Queryable, schemas?: string[]): Promise<ExtensionTableRow[]> {
  const { rows } = await client.query<ExtensionTableRow>(
    `SELECT n.nspname::pg_catalog.text AS schema, c.relname::pg_catalog.text AS name, e.extname::pg_catalog.text AS extension,
            c.oid = ANY (e.extconfig) AS config
       FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'e'
                                  AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
       JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
      WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
        AND ${relationScopeSql({ rel: 'c', nsp: 'n', schemas: '$1', extensions: true })}
      ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C"`,
    [schemas ?? null],
  );
  return rows;
}

/**
 * Login roles with BYPASSRLS (not superusers) that matter to this database:
 * they (or a role they are a member of) own objects here or hold privileges
 * here (pg_shdepend), own the database, or are granted CONNECT on it by
 * name (CONNECT through PUBLIC, the default, does not count: every role has it).
 */
export async function readDatabaseBypassRoles(client: Queryable): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `WITH here AS (SELECT d.oid, d.datdba, d.datacl FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()),
     holders AS (
       SELECT DISTINCT s.refobjid AS role FROM pg_catalog.pg_shdepend s, here
        WHERE s.dbid = here.oid AND s.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
       UNION SELECT here.datdba FROM here
       UNION SELECT a.grantee FROM here, ${aclEntriesSql('here.datacl', 'a')} WHERE a.privilege_type = 'CONNECT' AND a.grantee <> 0
     )
     SELECT r.rolname::pg_catalog.text AS name
       FROM pg_catalog.pg_roles r
      WHERE r.rolbypassrls AND NOT r.rolsuper AND r.rolcanlogin
        AND EXISTS (SELECT 1 FROM holders h WHERE pg_catalog.pg_has_role(r.oid, h.role, 'MEMBER'))
      ORDER BY r.rolname COLLATE "C"`,
  );
  return rows.map((r) => r.name);
}

/** The partition event trigger of `partitions.protect_new`, its function and its schema (src/compile/partition-trigger.ts). */
export async function readPartitionTrigger(client: Queryable): Promise<PartitionTriggerState> {
  const { rows } = await client.query<{
    superuser: boolean;
    has_schema: boolean;
    schema_owner_super: boolean | null;
    other_objects: string;
    has_function: boolean;
    source: string;
    config: string[] | null;
    security_definer: boolean;
    function_owner_super: boolean | null;
    has_trigger: boolean;
    event: string;
    enabled: string;
    tags: string[] | null;
    calls_function: boolean;
  }>(
    `SELECT r.rolsuper AS superuser,
            n.oid IS NOT NULL AS has_schema,
            (SELECT o.rolsuper FROM pg_catalog.pg_roles o WHERE o.oid = n.nspowner) AS schema_owner_super,
            (SELECT pg_catalog.count(*) FROM pg_catalog.pg_class c WHERE c.relnamespace = n.oid)
              + (SELECT pg_catalog.count(*) FROM pg_catalog.pg_proc f WHERE f.pronamespace = n.oid AND f.proname <> $2)
              + (SELECT pg_catalog.count(*) FROM pg_catalog.pg_type y WHERE y.typnamespace = n.oid) AS other_objects,
            p.oid IS NOT NULL AS has_function, p.prosrc AS source, p.proconfig AS config, p.prosecdef AS security_definer,
            (SELECT o.rolsuper FROM pg_catalog.pg_roles o WHERE o.oid = p.proowner) AS function_owner_super,
            e.oid IS NOT NULL AS has_trigger, e.evtevent AS event, e.evtenabled AS enabled, e.evttags AS tags,
            e.evtfoid IS NOT DISTINCT FROM p.oid AS calls_function
       FROM pg_catalog.pg_roles r
       LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = $1
       LEFT JOIN pg_catalog.pg_proc p ON p.pronamespace = n.oid AND p.proname = $2 AND p.pronargs = 0
       LEFT JOIN pg_catalog.pg_event_trigger e ON e.evtname = $3
      WHERE r.rolname = current_user`,
    [TRIGGER_SCHEMA, TRIGGER_FUNCTION, EVENT_TRIGGER],
  );
  const r = rows[0];
  return {
    superuser: r.superuser === true,
    schema: r.has_schema ? { ownerSuper: r.schema_owner_super === true, otherObjects: Number(r.other_objects) } : undefined,
    fn: r.has_function
      ? { source: r.source, config: r.config ?? [], securityDefiner: r.security_definer, ownerSuper: r.function_owner_super === true }
      : undefined,
    trigger: r.has_trigger ? { event: r.event, enabled: r.enabled, tags: [...(r.tags ?? [])].sort(), callsFunction: r.calls_function === true } : undefined,
  };
}

/**
 * Of the tables given, those the current role may not change: ALTER TABLE,
 * CREATE POLICY and CREATE INDEX need the owner's rights (being the owner, a
 * member that inherits them, or a superuser). Sorted by schema and name.
 */
export async function readTablesNotOwned(
  client: Queryable,
  tables: Array<{ schema: string; name: string }>,
): Promise<Array<{ schema: string; name: string; owner: string; me: string }>> {
  const { rows } = await client.query<{ schema: string; name: string; owner: string; me: string }>(
    `SELECT n.nspname AS schema, c.relname AS name, pg_catalog.pg_get_userbyid(c.relowner)::pg_catalog.text AS owner,
            current_user::pg_catalog.text AS me
       FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($2::pg_catalog.text[])) AS t(schema, name)
       JOIN pg_catalog.pg_namespace n ON n.nspname = t.schema
       JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.name
      WHERE NOT pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE')
      ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C"`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
  );
  return rows;
}

/**
 * For each role given (in order): whether it exists, and for each of
 * `targets` (in order) whether it inherits the target's privileges (USAGE)
 * and whether it may SET ROLE to it (PostgreSQL 16+: the SET option; before,
 * any membership). `app` is null when the role does not exist or no target is given.
 */
export async function readRoleReach(
  client: Queryable,
  roles: string[],
  targets: string[],
  versionNum: number,
): Promise<Array<{ given: string; found: boolean; app: string | null; inherit: boolean | null; set: boolean | null }>> {
  const set = versionNum >= 160000 ? `pg_catalog.pg_has_role(g.rolname, d.rolname, 'SET')` : `pg_catalog.pg_has_role(g.rolname, d.rolname, 'MEMBER')`;
  const { rows } = await client.query<{ given: string; found: boolean; app: string | null; inherit: boolean | null; set: boolean | null }>(
    `SELECT x.given, g.rolname IS NOT NULL AS found, d.rolname AS app,
            pg_catalog.pg_has_role(g.rolname, d.rolname, 'USAGE') AS inherit, ${set} AS set
       FROM pg_catalog.unnest($1::pg_catalog.text[]) WITH ORDINALITY AS x(given, n)
       LEFT JOIN pg_catalog.pg_roles g ON g.rolname = x.given
       LEFT JOIN LATERAL pg_catalog.unnest($2::pg_catalog.text[]) WITH ORDINALITY AS dd(name, m) ON g.rolname IS NOT NULL
       LEFT JOIN pg_catalog.pg_roles d ON d.rolname = dd.name
      ORDER BY x.n, dd.m`,
    [roles, targets],
  );
  return rows;
}

/**
 * The zero-argument function `schema.name` (the membership helper of src/compile/membership.ts): its body,
 * settings, security, volatility and result type, whether the owner of `table` owns it, and who may execute it.
 */
export async function readMemberFunctionState(
  client: Queryable,
  fn: { schema: string; name: string; roles: string[]; table: string },
): Promise<MemberFunctionState | undefined> {
  const { rows } = await client.query<{
    source: string;
    config: string[] | null;
    security_definer: boolean;
    volatility: string;
    returns: string;
    owned_by_owner: boolean | null;
    public_execute: boolean | null;
    executors: string[];
  }>(
    `SELECT p.prosrc AS source, p.proconfig AS config, p.prosecdef AS security_definer, p.provolatile::pg_catalog.text AS volatility,
            pg_catalog.format_type(p.prorettype, NULL) AS returns,
            p.proowner IS NOT DISTINCT FROM (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($4)) AS owned_by_owner,
            (p.proacl IS NULL OR EXISTS (SELECT FROM pg_catalog.aclexplode(p.proacl) a WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')) AS public_execute,
            ARRAY(SELECT r.rolname::pg_catalog.text FROM pg_catalog.pg_roles r
                   WHERE r.rolname = ANY ($3::pg_catalog.text[]) AND pg_catalog.has_function_privilege(r.oid, p.oid, 'EXECUTE')) AS executors
       FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = $1 AND p.proname = $2 AND p.pronargs = 0`,
    [fn.schema, fn.name, fn.roles, fn.table],
  );
  const r = rows[0];
  if (!r) return undefined;
  return {
    source: r.source,
    config: r.config ?? [],
    securityDefiner: r.security_definer,
    volatility: r.volatility,
    returns: r.returns,
    ownedByTableOwner: r.owned_by_owner === true,
    publicExecute: r.public_execute === true,
    executors: r.executors,
  };
}

/** The USING texts of the policies on the session's own temporary tables (plan/canonicalize-expressions.ts). */
export async function readTemporaryPolicies(client: Queryable): Promise<Array<{ table: string; policy: string; expr: string }>> {
  const { rows } = await client.query<{ table: string; policy: string; expr: string }>(
    `SELECT c.relname AS table, p.polname AS policy, pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS expr
       FROM pg_catalog.pg_policy p
       JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
      WHERE c.relnamespace = pg_catalog.pg_my_temp_schema()`,
  );
  return rows;
}

/**
 * One consistent view of the catalog for one command: each fact read lazily,
 * when a command first asks for it, and at most once (per distinct
 * arguments). Run it inside one transaction for one snapshot of the
 * catalog (the audit does).
 */
export class CatalogSnapshot {
  private readonly cache = new Map<string, Promise<unknown>>();

  constructor(readonly client: Queryable) {}

  private once<T>(fact: string, args: unknown[], read: () => Promise<T>): Promise<T> {
    const key = `${fact}:${JSON.stringify(args)}`;
    let known = this.cache.get(key) as Promise<T> | undefined;
    if (!known) this.cache.set(key, (known = read()));
    return known;
  }

  server(): Promise<ServerRow> {
    return this.once('server', [], () => readServer(this.client));
  }
  schemas(schemas?: string[]): Promise<string[]> {
    return this.once('schemas', [schemas ?? null], () => readSchemas(this.client, schemas));
  }
  relations(selection: Selection, detail: 0 | 1 | 2 = 0): Promise<RelationRow[]> {
    return this.once('relations', [selection, detail], () => readRelations(this.client, selection, detail));
  }
  inheritance(rootOids: string[]): Promise<InheritanceRow[]> {
    return this.once('inheritance', [rootOids], () => readInheritance(this.client, rootOids));
  }
  columns(selection: Selection, query: ColumnQuery = {}): Promise<ColumnRow[]> {
    return this.once('columns', [selection, query], () => readColumns(this.client, selection, query));
  }
  policies(selection: Selection): Promise<PolicyRow[]> {
    return this.once('policies', [selection], () => readPolicies(this.client, selection));
  }
  indexes(selection: Selection, detail = false): Promise<IndexRow[]> {
    return this.once('indexes', [selection, detail], () => readIndexes(this.client, selection, detail));
  }
  foreignKeys(selection: Selection, query: ForeignKeyQuery = {}): Promise<ForeignKeyRow[]> {
    return this.once('foreignKeys', [selection, query], () => readForeignKeys(this.client, selection, query));
  }
  checks(oids: string[]): Promise<CheckRow[]> {
    return this.once('checks', [oids], () => readChecks(this.client, oids));
  }
  roles(): Promise<RoleRow[]> {
    return this.once('roles', [], () => readRoles(this.client));
  }
  memberships(roles: string[], versionNum: number): Promise<MembershipRow[]> {
    return this.once('memberships', [roles, versionNum], () => readMemberships(this.client, roles, versionNum));
  }
  grants(selection: Selection, risky = false): Promise<GrantRow[]> {
    return this.once('grants', [selection, risky], () => readGrants(this.client, selection, risky));
  }
  privileges(oids: string[], roles: string[], updatable = false): Promise<PrivilegeRow[]> {
    return this.once('privileges', [oids, roles, updatable], () => readPrivileges(this.client, oids, roles, updatable));
  }
  viewDependencies(): Promise<ViewDependencyRow[]> {
    return this.once('viewDependencies', [], () => readViewDependencies(this.client));
  }
  sqlFunctions(): Promise<SqlFunctionRow[]> {
    return this.once('sqlFunctions', [], () => readSqlFunctions(this.client));
  }
  functions(roles: string[]): Promise<FunctionRow[]> {
    return this.once('functions', [roles], () => readFunctions(this.client, roles));
  }
  volatileFunctionNames(names: string[]): Promise<string[]> {
    return this.once('volatile', [names], () => readVolatileFunctionNames(this.client, names));
  }
  settings(): Promise<SettingRow[]> {
    return this.once('settings', [], () => readSettings(this.client));
  }
  extensions(): Promise<ExtensionRow[]> {
    return this.once('extensions', [], () => readExtensions(this.client));
  }
  availableExtensions(names: string[]): Promise<string[]> {
    return this.once('availableExtensions', [names], () => readAvailableExtensions(this.client, names));
  }
  extensionTables(schemas?: string[]): Promise<ExtensionTableRow[]> {
    return this.once('extensionTables', [schemas ?? null], () => readExtensionTables(this.client, schemas));
  }
  databaseBypassRoles(): Promise<string[]> {
    return this.once('databaseBypassRoles', [], () => readDatabaseBypassRoles(this.client));
  }
}

/** Rows by a key (a relation oid, say), each list in the rows' order. */
export function groupBy<T, K>(rows: T[], key: (row: T) => K): Map<K, T[]> {
  const map = new Map<K, T[]>();
  for (const row of rows) {
    const k = key(row);
    const list = map.get(k);
    if (list) list.push(row);
    else map.set(k, [row]);
  }
  return map;
}
