import { decodePolcmd } from '../catalog/decode-catalog.js';
import { EVENT_TRIGGER } from '../compile/partition-trigger.js';
import type pg from 'pg';
import { performance } from 'node:perf_hooks';
import type { TenantFacts } from '../facts/resolve-facts.js';
import type {
  AuditCatalog,
  CatalogColumn,
  CatalogForeignKey,
  CatalogFunction,
  CatalogGrant,
  CatalogIndex,
  CatalogMembership,
  CatalogPolicy,
  CatalogRelation,
  CatalogRole,
  CatalogRoleSetting,
  CatalogServer,
  CatalogViewDependency,
  RelKind,
} from './catalog.js';

/**
 * The audit's catalog queries. House rules (style.md, "Catalog SQL"): every
 * catalog name `pg_catalog.`-qualified, a deterministic ORDER BY, objects
 * that belong to an extension skipped, and one query per fact for the whole
 * database, never one per table: the cost grows with the number of rows the
 * catalog holds, not with round trips.
 *
 * Everything here only reads; run-audit.ts runs it inside one READ ONLY
 * transaction. The role needs no privilege beyond what every role has
 * (docs/audit.md): pg_class, pg_policy, pg_index, pg_constraint, pg_roles,
 * pg_auth_members, pg_proc, pg_db_role_setting and pg_settings are readable
 * by PUBLIC, and pg_has_role / has_*_privilege answer for any role.
 */

/** Schemas that are the system's, never the application's. */
const USER_SCHEMA = `n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'`;
const NOT_EXTENSION_CLASS = `c.oid NOT IN (SELECT d.objid FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype = 'e')`;

export type Progress = (step: string) => void;

export async function collectCatalog(client: pg.ClientBase, facts: TenantFacts, progress: Progress = () => undefined): Promise<AuditCatalog> {
  const timings: Record<string, number> = {};
  const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await fn();
    } finally {
      timings[name] = Math.round(performance.now() - started);
    }
  };
  progress('reading the server version and roles');
  const server = await timed('server', () => readServer(client));
  const { roles, names: roleByOid } = await timed('roles', () => readRoles(client));
  const roleNames = new Set(roles.map((r) => r.name));
  const appRoles = facts.appRoles.filter((r) => roleNames.has(r));

  progress('reading relations');
  const relations = await timed('relations', () => readRelations(client));

  progress('reading tenant columns');
  const columnNames = new Set<string>([facts.tenantColumn]);
  for (const t of facts.tenantTables) {
    if (t.column) columnNames.add(t.column);
    for (const c of t.via?.columns ?? []) columnNames.add(c);
  }
  // The membership lookup's columns (RLS044).
  const membership = facts.model?.tenant.membership;
  if (membership) for (const c of [membership.userColumn, membership.tenantColumn]) columnNames.add(c);
  const columns = await timed('columns', () => readColumns(client, [...columnNames].sort()));

  progress('reading policies');
  const policies = await timed('policies', () => readPolicies(client, roleByOid));
  progress('reading indexes and constraints');
  const indexes = await timed('indexes', () => readIndexes(client));
  const foreignKeys = await timed('foreignkeys', () => readForeignKeys(client));

  progress('reading role memberships');
  const memberships = await timed('memberships', () => readMemberships(client, appRoles, server.versionNum));
  progress('reading views, functions, settings and grants');
  const viewDependencies = await timed('viewdependencies', () => readViewDependencies(client));
  const functions = await timed('functions', () => readFunctions(client, appRoles));
  const settings = await timed('settings', () => readSettings(client));

  // Grants and reachability only for the relations that hold tenant rows, or
  // might: asked by oid, so the queries stay proportional to that set.
  const targets = grantTargets(relations, facts);
  const grants = await timed('grants', () => readGrants(client, targets.grants));
  const appReach = await timed('appreach', () => readAppReach(client, targets.reach, appRoles));
  return { server, relations, columns, policies, indexes, foreignKeys, roles, memberships, viewDependencies, functions, settings, grants, appReach, timings };
}

async function readServer(client: pg.ClientBase): Promise<CatalogServer> {
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

async function readRoles(client: pg.ClientBase): Promise<{ roles: CatalogRole[]; names: Map<string, string> }> {
  const { rows } = await client.query<{ oid: string; name: string; superuser: boolean; bypass: boolean; login: boolean }>(
    `SELECT r.oid::text AS oid, r.rolname AS name, r.rolsuper AS superuser, r.rolbypassrls AS bypass, r.rolcanlogin AS login
       FROM pg_catalog.pg_roles r
      ORDER BY r.rolname`,
  );
  return {
    roles: rows.map((r) => ({ name: r.name, superuser: r.superuser, bypassRls: r.bypass, login: r.login })),
    names: new Map(rows.map((r) => [r.oid, r.name])),
  };
}

async function readRelations(client: pg.ClientBase): Promise<CatalogRelation[]> {
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
  }>(
    `SELECT c.oid::text AS oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
            pg_catalog.pg_get_userbyid(c.relowner) AS owner,
            c.relrowsecurity AS rls, c.relforcerowsecurity AS force,
            c.reloptions::text[] AS options, c.relispartition AS is_partition, i.inhparent::text AS parent
       FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_catalog.pg_inherits i ON c.relispartition AND i.inhrelid = c.oid
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND ${USER_SCHEMA} AND ${NOT_EXTENSION_CLASS}
      ORDER BY n.nspname, c.relname`,
  );
  return rows.map((r) => ({
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
  }));
}

async function readColumns(client: pg.ClientBase, names: string[]): Promise<CatalogColumn[]> {
  const { rows } = await client.query<{ rel: string; name: string; num: number; not_null: boolean; type: string }>(
    `SELECT a.attrelid::text AS rel, a.attname AS name, a.attnum AS num, a.attnotnull AS not_null, t.typname AS type
       FROM pg_catalog.pg_attribute a
       JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
      WHERE a.attname = ANY ($1::text[]) AND a.attnum > 0 AND NOT a.attisdropped
        AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND ${USER_SCHEMA}
      ORDER BY n.nspname, c.relname, a.attnum`,
    [names],
  );
  return rows.map((r) => ({ relOid: r.rel, name: r.name, num: r.num, notNull: r.not_null, type: r.type }));
}

async function readPolicies(client: pg.ClientBase, roleNames: Map<string, string>): Promise<CatalogPolicy[]> {
  // polroles as oids, named here from pg_roles (read once): a sub-select per
  // policy would run twenty thousand times on a database of ten thousand tables.
  // Oid 0 is PUBLIC. pg_get_expr deparses each expression as the catalog holds it.
  //
  // pg_get_expr costs: it opens the relation it is given (to name the
  // columns), and it reads and prints the stored tree. On a database of
  // 100,000 partitions, one call per policy is one relcache entry built per
  // partition and seconds of deparsing the same few trees again and again. So:
  // - `ctx`: a partition whose columns have the same names at the same
  //   numbers as its parent's prints the same text in its parent's context,
  //   which the server opens once; except an expression with a reference to
  //   the row inside a sub-query (a Var with varlevelsup > 0 in the stored
  //   tree: a via policy), which pg_get_expr qualifies with the relation's
  //   own name, so it is printed in the partition's own context;
  // - `texts`: each distinct stored tree is printed once per context
  //   relation (the partitions' copies of a policy store the same tree), and
  //   the same tree in the same context always prints the same text. Trees
  //   are kilobytes each and, on disk, TOASTed: each is read once, and
  //   grouped by its length and two 64-bit hashes (seeds 0 and 1), never
  //   sorted nor compared again: trees that agree in all three are taken to
  //   be the same tree. `rel` decides the context once per relation.
  // Each text travels once, on its example's row; the other rows carry its id.
  const { rows } = await client.query<{
    rel: string;
    name: string;
    cmd: string;
    permissive: boolean;
    roles: string;
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
        WHERE c.oid IN (SELECT polrelid FROM pg_catalog.pg_policy) AND ${USER_SCHEMA}
     ), pol AS MATERIALIZED (
       SELECT p.oid, p.polrelid, p.polname, p.polcmd, p.polpermissive, p.polroles,
              pg_catalog.hashtextextended(t.q, 0) AS q0, pg_catalog.hashtextextended(t.q, 1) AS q1, pg_catalog.octet_length(t.q) AS ql,
              pg_catalog.hashtextextended(t.w, 0) AS w0, pg_catalog.hashtextextended(t.w, 1) AS w1, pg_catalog.octet_length(t.w) AS wl,
              CASE WHEN t.q ~ ':varlevelsup [1-9]' OR t.w ~ ':varlevelsup [1-9]' THEN p.polrelid ELSE rel.ctx END AS ctx
         FROM pg_catalog.pg_policy p
         JOIN rel ON rel.oid = p.polrelid
        CROSS JOIN LATERAL (SELECT p.polqual::text AS q, p.polwithcheck::text AS w OFFSET 0) t
     ), texts AS MATERIALIZED (
       SELECT k.clause, k.h0, k.h1, k.len, k.ctx, k.example, (pg_catalog.row_number() OVER ())::int AS id,
              pg_catalog.pg_get_expr(CASE k.clause WHEN 'q' THEN p.polqual ELSE p.polwithcheck END, k.ctx) AS text
         FROM (SELECT 'q' AS clause, q0 AS h0, q1 AS h1, ql AS len, ctx, pg_catalog.min(oid) AS example FROM pol WHERE ql IS NOT NULL GROUP BY 2, 3, 4, 5
               UNION ALL
               SELECT 'w', w0, w1, wl, ctx, pg_catalog.min(oid) FROM pol WHERE wl IS NOT NULL GROUP BY 2, 3, 4, 5) k
         JOIN pg_catalog.pg_policy p ON p.oid = k.example
     )
     SELECT pol.polrelid::text AS rel, pol.polname AS name, pol.polcmd::text AS cmd, pol.polpermissive AS permissive, pol.polroles::text AS roles,
            q.id AS using_id, CASE WHEN q.example = pol.oid THEN q.text END AS using_text,
            w.id AS check_id, CASE WHEN w.example = pol.oid THEN w.text END AS check_text
       FROM pol
       LEFT JOIN texts q ON q.clause = 'q' AND q.h0 = pol.q0 AND q.h1 = pol.q1 AND q.len = pol.ql AND q.ctx = pol.ctx
       LEFT JOIN texts w ON w.clause = 'w' AND w.h0 = pol.w0 AND w.h1 = pol.w1 AND w.len = pol.wl AND w.ctx = pol.ctx
      ORDER BY pol.polrelid, pol.polname`,
  );
  const rolesCache = new Map<string, string[]>();
  const rolesOf = (text: string) => {
    let list = rolesCache.get(text);
    if (!list) {
      list = text
        .replace(/[{}]/g, '')
        .split(',')
        .filter(Boolean)
        .map((oid) => (oid === '0' ? 'public' : (roleNames.get(oid) ?? `(role ${oid} dropped)`)))
        .sort();
      rolesCache.set(text, list);
    }
    return list;
  };
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
  for (const r of rows) {
    if (r.using_id !== null && r.using_text !== null) byId.set(r.using_id, intern(r.using_text));
    if (r.check_id !== null && r.check_text !== null) byId.set(r.check_id, intern(r.check_text));
  }
  const textOf = (id: number | null) => (id === null ? undefined : byId.get(id));
  return rows.map((r) => ({
    relOid: r.rel,
    name: r.name,
    command: decodePolcmd(r.cmd),
    permissive: r.permissive,
    roles: rolesOf(r.roles),
    using: textOf(r.using_id),
    check: textOf(r.check_id),
  }));
}

async function readIndexes(client: pg.ClientBase): Promise<CatalogIndex[]> {
  const { rows } = await client.query<{
    rel: string;
    name: string;
    valid: boolean;
    unique: boolean;
    primary: boolean;
    keys: string;
    nkeys: number;
    partial: boolean;
    deferrable: boolean;
    key_names: string[];
    constraint: string | null;
  }>(
    `SELECT x.indrelid::text AS rel, ic.relname AS name, x.indisvalid AS valid, x.indisunique AS unique, x.indisprimary AS primary,
            x.indkey::text AS keys, x.indnkeyatts AS nkeys, x.indpred IS NOT NULL AS partial,
            NOT x.indimmediate AS deferrable, con.conname AS constraint,
            ARRAY(SELECT COALESCE(a.attname::pg_catalog.text, '') FROM pg_catalog.generate_series(0, x.indnkeyatts - 1) AS k
                    LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[k] AND x.indkey[k] <> 0
                   ORDER BY k) AS key_names
       FROM pg_catalog.pg_index x
       JOIN pg_catalog.pg_class ic ON ic.oid = x.indexrelid
       JOIN pg_catalog.pg_class c ON c.oid = x.indrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_catalog.pg_constraint con ON con.conindid = x.indexrelid AND con.conrelid = x.indrelid AND con.contype IN ('p', 'u')
      WHERE c.relkind IN ('r', 'p', 'm') AND ${USER_SCHEMA}
      ORDER BY n.nspname, c.relname, ic.relname`,
  );
  return rows.map((r) => ({
    relOid: r.rel,
    name: r.name,
    valid: r.valid,
    unique: r.unique,
    primary: r.primary,
    keys: r.keys.split(' ').slice(0, r.nkeys).map(Number),
    partial: r.partial,
    deferrable: r.deferrable,
    keyNames: r.key_names,
    constraint: r.constraint ?? undefined,
  }));
}

async function readForeignKeys(client: pg.ClientBase): Promise<CatalogForeignKey[]> {
  // conparentid <> 0: the copy of a partitioned table's foreign key on each partition; the parent's is enough.
  const { rows } = await client.query<{ rel: string; ref: string; name: string; cols: number[]; refcols: number[]; colnames: string[]; refcolnames: string[] }>(
    `SELECT con.conrelid::text AS rel, con.confrelid::text AS ref, con.conname AS name,
            con.conkey::int[] AS cols, con.confkey::int[] AS refcols,
            ARRAY(SELECT a.attname FROM pg_catalog.unnest(con.conkey) WITH ORDINALITY AS k(num, ord)
                    JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.ord)::text[] AS colnames,
            ARRAY(SELECT a.attname FROM pg_catalog.unnest(con.confkey) WITH ORDINALITY AS k(num, ord)
                    JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord)::text[] AS refcolnames
       FROM pg_catalog.pg_constraint con
       JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE con.contype = 'f' AND con.conparentid = 0 AND ${USER_SCHEMA}
      ORDER BY n.nspname, c.relname, con.conname`,
  );
  return rows.map((r) => ({
    relOid: r.rel,
    refOid: r.ref,
    name: r.name,
    columns: r.cols,
    refColumns: r.refcols,
    columnNames: r.colnames,
    refColumnNames: r.refcolnames,
  }));
}

/**
 * Who can reach which role that matters, exactly as PostgreSQL decides it
 * (pg_has_role follows every chain of grants, and knows each version's
 * rules): for app roles, every role; for any other role, the roles that
 * bypass RLS (superuser, BYPASSRLS) and the owners of relations. Superuser
 * members are left out: a superuser is a member of every role and is
 * reported for what it is.
 *
 * Becoming a role (SET ROLE) is what grants its BYPASSRLS or superuser
 * attribute, which are never inherited; PostgreSQL 16 split membership into
 * INHERIT and SET options, so there `pg_has_role(..., 'SET')` is the exact
 * test, and before 16 every member could SET ROLE ('MEMBER'). Ownership is
 * inherited (USAGE): the owner check of RLS is has_privs_of_role.
 */
async function readMemberships(client: pg.ClientBase, appRoles: string[], versionNum: number): Promise<CatalogMembership[]> {
  const setPrivilege = versionNum >= 160000 ? 'SET' : 'MEMBER';
  const { rows } = await client.query<{ member: string; role: string; inherits: boolean; can_set: boolean }>(
    `WITH owners AS (
       SELECT DISTINCT c.relowner AS oid
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND ${USER_SCHEMA}
     )
     SELECT m.rolname AS member, r.rolname AS role,
            pg_catalog.pg_has_role(m.oid, r.oid, 'USAGE') AS inherits,
            pg_catalog.pg_has_role(m.oid, r.oid, '${setPrivilege}') AS can_set
       FROM pg_catalog.pg_roles m
       JOIN pg_catalog.pg_roles r ON r.oid <> m.oid
      WHERE NOT m.rolsuper
        AND (m.rolname = ANY ($1::text[]) OR r.rolsuper OR r.rolbypassrls OR r.oid IN (SELECT oid FROM owners))
        AND pg_catalog.pg_has_role(m.oid, r.oid, 'MEMBER')
      ORDER BY 1, 2`,
    [appRoles],
  );
  return rows.map((r) => ({ member: r.member, role: r.role, inherits: r.inherits, canSet: r.can_set }));
}

async function readViewDependencies(client: pg.ClientBase): Promise<CatalogViewDependency[]> {
  // A view's (or materialized view's) query is its _RETURN rule; pg_depend
  // records every relation that rule reads.
  const { rows } = await client.query<{ view: string; ref: string }>(
    `SELECT DISTINCT rw.ev_class::text AS view, d.refobjid::text AS ref
       FROM pg_catalog.pg_rewrite rw
       JOIN pg_catalog.pg_class c ON c.oid = rw.ev_class AND c.relkind IN ('v', 'm')
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = rw.oid
                                  AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> rw.ev_class
      WHERE ${USER_SCHEMA} AND ${NOT_EXTENSION_CLASS}
      ORDER BY 1, 2`,
  );
  return rows.map((r) => ({ viewOid: r.view, refOid: r.ref }));
}

async function readFunctions(client: pg.ClientBase, appRoles: string[]): Promise<CatalogFunction[]> {
  const { rows } = await client.query<{ schema: string; name: string; args: string; owner: string; executable_by: string[] }>(
    `SELECT n.nspname AS schema, p.proname AS name, pg_catalog.pg_get_function_identity_arguments(p.oid) AS args,
            pg_catalog.pg_get_userbyid(p.proowner) AS owner,
            ARRAY(SELECT a FROM pg_catalog.unnest($1::text[]) AS a
                   WHERE pg_catalog.has_function_privilege(a, p.oid, 'EXECUTE') ORDER BY 1)::text[] AS executable_by
       FROM pg_catalog.pg_proc p
       JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
      WHERE p.prosecdef AND ${USER_SCHEMA}
        AND p.oid NOT IN (SELECT d.objid FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.deptype = 'e')
      ORDER BY 1, 2, 3`,
    [appRoles],
  );
  return rows.map((r) => ({ schema: r.schema, name: r.name, args: r.args, owner: r.owner, executableBy: r.executable_by }));
}

async function readSettings(client: pg.ClientBase): Promise<CatalogRoleSetting[]> {
  // Defaults for this database, for every database (setdatabase 0), per role
  // and per role in this database: ALTER DATABASE / ROLE ... SET.
  const { rows } = await client.query<{ database: string | null; role: string | null; config: string[] }>(
    `SELECT d.datname AS database, r.rolname AS role, s.setconfig::text[] AS config
       FROM pg_catalog.pg_db_role_setting s
       LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
       LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
      WHERE s.setdatabase = 0 OR d.datname = pg_catalog.current_database()
      ORDER BY 1 NULLS FIRST, 2 NULLS FIRST`,
  );
  const settings: CatalogRoleSetting[] = [];
  for (const row of rows) {
    for (const entry of row.config ?? []) {
      const eq = entry.indexOf('=');
      if (eq < 0) continue;
      settings.push({ database: row.database ?? undefined, role: row.role ?? undefined, name: entry.slice(0, eq).toLowerCase(), value: entry.slice(eq + 1) });
    }
  }
  return settings;
}

async function readGrants(client: pg.ClientBase, oids: string[]): Promise<CatalogGrant[]> {
  if (oids.length === 0) return [];
  // Only what the rules ask about: anything granted to PUBLIC, and TRUNCATE
  // and REFERENCES to anyone. The owner's own implicit grant is not a grant.
  const { rows } = await client.query<{ rel: string; grantee: string; privilege: string }>(
    `SELECT c.oid::text AS rel,
            CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee) END AS grantee,
            a.privilege_type AS privilege
       FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) AS a
      WHERE c.oid = ANY ($1::oid[]) AND c.relacl IS NOT NULL AND a.grantee <> c.relowner
        AND (a.grantee = 0 OR a.privilege_type IN ('TRUNCATE', 'REFERENCES'))
      ORDER BY n.nspname, c.relname, 2, 3`,
    [oids],
  );
  return rows.map((r) => ({ relOid: r.rel, grantee: r.grantee, privilege: r.privilege }));
}

async function readAppReach(client: pg.ClientBase, oids: string[], appRoles: string[]): Promise<Map<string, string[]>> {
  const reach = new Map<string, string[]>();
  if (oids.length === 0 || appRoles.length === 0) return reach;
  const { rows } = await client.query<{ rel: string; roles: string[] }>(
    `SELECT c.oid::text AS rel,
            ARRAY(SELECT a FROM pg_catalog.unnest($2::text[]) AS a
                   WHERE pg_catalog.has_table_privilege(a, c.oid, 'SELECT, INSERT, UPDATE, DELETE') ORDER BY 1)::text[] AS roles
       FROM pg_catalog.pg_class c
      WHERE c.oid = ANY ($1::oid[])
      ORDER BY 1`,
    [oids, appRoles],
  );
  for (const r of rows) if (r.roles.length > 0) reach.set(r.rel, r.roles);
  return reach;
}

/**
 * The relations whose grants matter (tenant tables and their partitions) and
 * those whose reachability by the app roles a rule asks about: materialized
 * views and foreign tables (RLS051) and, with a policy file, tables without
 * RLS in a managed schema (RLS001).
 */
function grantTargets(relations: CatalogRelation[], facts: TenantFacts): { grants: string[]; reach: string[] } {
  const byKey = new Map(relations.map((r) => [`${r.schema}.${r.name}`, r]));
  const children = new Map<string, string[]>();
  for (const r of relations) {
    if (!r.parentOid) continue;
    const list = children.get(r.parentOid);
    if (list) list.push(r.oid);
    else children.set(r.parentOid, [r.oid]);
  }
  const grants = new Set<string>();
  const addTree = (oid: string) => {
    if (grants.has(oid)) return;
    grants.add(oid);
    for (const c of children.get(oid) ?? []) addTree(c);
  };
  for (const t of facts.tenantTables) {
    const rel = byKey.get(`${t.schema}.${t.name}`);
    if (rel) addTree(rel.oid);
  }
  const declared = new Set([...facts.tenantTables, ...facts.sharedTables, ...facts.exemptTables].map((t) => `${t.schema}.${t.name}`));
  const managed = new Set(facts.source === 'policy-file' ? facts.schemas : []);
  const reach: string[] = [];
  for (const r of relations) {
    if (r.kind === 'm' || r.kind === 'f') reach.push(r.oid);
    else if ((r.kind === 'r' || r.kind === 'p') && !r.isPartition && !r.rls && managed.has(r.schema) && !declared.has(`${r.schema}.${r.name}`))
      reach.push(r.oid);
  }
  return { grants: [...grants].sort(), reach: reach.sort() };
}
