import type pg from 'pg';
import type { FindingObject } from '../report/finding.js';
import type { VerifyCatalog, VerifyFunction, VerifyRelation } from './verify-catalog.js';

/** The most rows of a view's or function's result that verify reads (one more tells that there are more). */
export const ROW_LIMIT = 200;

/** What verify probes: the relations an app role can reach and the SECURITY DEFINER functions, and how findings name them. */

export type Target = { kind: 'relation'; rel: VerifyRelation } | { kind: 'function'; fn: VerifyFunction };

export function targetsOf(catalog: VerifyCatalog, roles: string[]): Target[] {
  const reaches = (rel: VerifyRelation) =>
    roles.some((r) => {
      const p = rel.privileges.get(r);
      return p && (p.select || p.insert || p.update || p.delete);
    });
  const rels = catalog.relations.filter(reaches).map((rel) => ({ kind: 'relation' as const, rel }));
  const fns = catalog.functions.map((fn) => ({ kind: 'function' as const, fn }));
  return [...rels, ...fns];
}

/**
 * User triggers that fire in an ordinary session (tgenabled O or A; not the
 * internal ones of foreign keys) on the probed tables and partitions: the
 * rows verify writes for the tenants run them as the connecting role.
 */
export async function triggersOf(client: pg.Client, targets: Target[]): Promise<Array<{ schema: string; name: string; triggers: string[] }>> {
  const rels = targets.flatMap((t) => (t.kind === 'relation' && (t.rel.kind === 'table' || t.rel.kind === 'partition') ? [t.rel] : []));
  if (rels.length === 0) return [];
  const { rows } = await client.query<{ oid: string; names: string[] }>(
    `SELECT t.tgrelid::text AS oid, array_agg(t.tgname::text ORDER BY t.tgname) AS names
       FROM pg_catalog.pg_trigger t
      WHERE t.tgrelid = ANY ($1::pg_catalog.oid[]) AND NOT t.tgisinternal AND t.tgenabled IN ('O', 'A')
      GROUP BY t.tgrelid`,
    [rels.map((r) => r.oid)],
  );
  const byOid = new Map(rows.map((r) => [Number(r.oid), r.names]));
  return rels
    .filter((r) => byOid.has(r.oid))
    .map((r) => ({ schema: r.schema, name: r.name, triggers: byOid.get(r.oid)! }))
    .sort((a, b) => `${a.schema}.${a.name}`.localeCompare(`${b.schema}.${b.name}`));
}

export function objectOf(target: Target): FindingObject {
  if (target.kind === 'function') return { kind: 'function', schema: target.fn.schema, name: target.fn.name };
  return { kind: target.rel.kind, schema: target.rel.schema, name: target.rel.name };
}

export function labelOf(target: Target, catalog?: VerifyCatalog): string {
  if (target.kind === 'function') return `function ${target.fn.schema}.${target.fn.name}()`;
  const rel = target.rel;
  const name = `${rel.schema}.${rel.name}`;
  switch (rel.kind) {
    case 'partition': {
      const parent = rel.parentOid !== undefined ? catalog?.byOid.get(rel.parentOid) : undefined;
      return `partition ${name}${parent ? ` of ${parent.schema}.${parent.name}` : ''} (read directly)`;
    }
    case 'view':
      return `view ${name}`;
    case 'materialized_view':
      return `materialized view ${name}`;
    case 'foreign_table':
      return `foreign table ${name}`;
    case 'table':
      return name;
  }
}

export function resultKey(target: Target, role: string): string {
  return `${target.kind === 'function' ? `f${target.fn.oid}` : `r${target.rel.oid}`}:${role}`;
}

/** A view's result, one JSON row each, in a stable order. */
export function viewResultSql(rel: VerifyRelation): string {
  return `SELECT pg_catalog.to_jsonb(v)::text AS j FROM ${rel.sql} AS v ORDER BY 1 LIMIT ${ROW_LIMIT + 1}`;
}

/** A function's result, one JSON row each, in a stable order. */
export function functionSql(fn: VerifyFunction): string {
  return `SELECT pg_catalog.to_jsonb(x.v)::text AS j FROM (SELECT ${fn.sql} AS v) AS x ORDER BY 1 LIMIT ${ROW_LIMIT + 1}`;
}
