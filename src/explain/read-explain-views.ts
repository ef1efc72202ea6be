import type pg from 'pg';
import { readSubjectRoles } from '../catalog/read-subject-roles.js';
import { isSecurityInvoker, type SubjectView } from '../rls/row-security-subjects.js';
import { relationKey, type ExplainCatalog } from './read-explain-catalog.js';

/**
 * The views that read the tenant tables (directly or through other views),
 * read once before the first query, in two queries whatever their number: each
 * view as the row-security model sees it (its owner's attributes, whether it
 * is security_invoker) and the relations it reads itself (`schema.name`). A
 * query that reads a tenant table through a view meets row security as the
 * role that view runs as (src/rls/row-security-subjects.ts).
 */
export interface ExplainView {
  schema: string;
  name: string;
  view: SubjectView;
  /** `schema.name` of the relations the view's query names: tenant tables, partitions, other views. */
  reads: string[];
}

export async function readExplainViews(client: pg.ClientBase, catalog: ExplainCatalog): Promise<Map<string, ExplainView>> {
  const members = [...catalog.security.values()];
  const { rows } = await client.query<{ schema: string; name: string; owner: string; options: string[] | null; reads: string[][] }>(
    `WITH RECURSIVE base AS (
       SELECT c.oid FROM unnest($1::text[], $2::text[]) AS t(schema, name)
         JOIN pg_catalog.pg_namespace n ON n.nspname = t.schema
         JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.name
     ), reads(view, rel) AS (
       SELECT r.ev_class, d.refobjid
         FROM pg_catalog.pg_depend d
         JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid
        WHERE d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid IN (SELECT oid FROM base) AND r.ev_class <> d.refobjid
       UNION
       SELECT r.ev_class, d.refobjid
         FROM reads
         JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = reads.view
         JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid AND r.ev_class <> reads.view
     )
     SELECT n.nspname AS schema, c.relname AS name, pg_catalog.pg_get_userbyid(c.relowner) AS owner, c.reloptions::text[] AS options,
            array_agg(DISTINCT ARRAY[rn.nspname::text, rc.relname::text]) AS reads
       FROM reads
       JOIN pg_catalog.pg_class c ON c.oid = reads.view AND c.relkind = 'v'
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_class rc ON rc.oid = reads.rel
       JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
      GROUP BY 1, 2, 3, 4`,
    [members.map((m) => m.schema), members.map((m) => m.name)],
  );
  const owners = await readSubjectRoles(
    client,
    rows.map((r) => r.owner),
  );
  return new Map(
    rows.map((r) => {
      const key = relationKey(r.schema, r.name);
      const owner = owners.get(r.owner) ?? { name: r.owner, superuser: false, bypassRls: false };
      return [
        key,
        {
          schema: r.schema,
          name: r.name,
          view: { owner, securityInvoker: isSecurityInvoker(r.options), label: key },
          reads: r.reads.map(([s, n]) => relationKey(s, n)),
        },
      ];
    }),
  );
}
