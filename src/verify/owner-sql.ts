import { quoteIdent, quoteLiteral } from '../compile/quote.js';
import type { VerifyCatalog, VerifyRelation } from './verify-catalog.js';

/**
 * The tenant that owns a row, as SQL over `alias`: the tenant column, or for
 * a `via` table the owner of its parent row, looked up through the parent
 * (recursively for a chain of `via` tables). Run as the connecting role,
 * which bypasses row level security, it is the truth; run as an app role it
 * is NULL wherever the parent row is hidden from that role.
 */
export interface OwnerSql {
  sql: string;
  /** The type of the owning tenant column, as format_type() prints it. */
  type: string;
}

export function ownerSql(catalog: VerifyCatalog, rel: VerifyRelation, alias: string, depth = 0): OwnerSql | undefined {
  if (rel.tenantColumn) {
    const column = rel.columns.find((c) => c.name === rel.tenantColumn);
    if (!column) return undefined;
    return { sql: `${alias}.${quoteIdent(rel.tenantColumn)}`, type: column.type };
  }
  if (!rel.via || depth > 8) return undefined;
  const parent = catalog.byOid.get(rel.via.parentOid);
  if (!parent) return undefined;
  const p = `rlsctl_p${depth}`;
  const inner = ownerSql(catalog, parent, p, depth + 1);
  if (!inner) return undefined;
  const join = rel.via.columns.map((c, i) => `${p}.${quoteIdent(rel.via!.references[i])} = ${alias}.${quoteIdent(c)}`).join(' AND ');
  return { sql: `(SELECT ${inner.sql} FROM ${parent.sql} AS ${p} WHERE ${join} LIMIT 1)`, type: inner.type };
}

/** A tenant value as a typed literal: `'…'::uuid`. */
export function tenantLiteral(value: string, type: string): string {
  return `${quoteLiteral(value)}::${type}`;
}
