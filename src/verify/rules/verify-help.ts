import { quoteIdent } from '../../compile/quote.js';
import { currentTenantSql as tenantLookupSql } from '../../compile/tenant-lookup.js';
import { tenantLookupOfFacts } from '../../facts/resolve-facts.js';
import type { HelpInput } from '../rule.js';
import type { VerifyRelation } from '../verify-catalog.js';

/** What the help of several verify rules shares: the current tenant as the policies should read it, and the fixes of readers. */

/** The current tenant, NULL when the setting is unset or empty: as rlsctl compiles it. */
export function currentTenantSql({ facts }: HelpInput): string {
  return tenantLookupSql(tenantLookupOfFacts(facts));
}

/**
 * VER001 and VER002 on what reads past row level security rather than being
 * protected by it: a SECURITY DEFINER function, a view, a materialized view.
 * Undefined for a table or partition.
 */
export function readerHelp(input: HelpInput): string | undefined {
  const { target, role } = input;
  const current = currentTenantSql(input);
  const grantee = role ? quoteIdent(role) : 'PUBLIC';
  if (target.kind === 'function') {
    const fn = target.fn;
    return `ALTER FUNCTION ${fn.sql} SECURITY INVOKER;  -- or filter by ${current} inside it\nREVOKE EXECUTE ON FUNCTION ${fn.sql} FROM ${grantee};  -- if the app does not need it`;
  }
  const rel = target.rel;
  if (rel.kind === 'view') {
    return `ALTER VIEW ${rel.sql} SET (security_invoker = on);  -- PostgreSQL 15+: the view then reads as the app role, under its policies\n-- PostgreSQL 14: REVOKE SELECT ON ${rel.sql} FROM ${grantee}, or filter by ${current} in the view`;
  }
  if (rel.kind === 'materialized_view') {
    return `REVOKE SELECT ON ${rel.sql} FROM ${grantee};  -- a materialized view cannot have row level security; serve it through a security_invoker view that filters by ${current}`;
  }
  return undefined;
}

/** The condition a relation's policies must hold: its tenant column is the current tenant, or its parent row is visible (via). */
function tenantPredicate(rel: VerifyRelation, input: HelpInput): string {
  const current = currentTenantSql(input);
  const column = rel.tenantColumn ?? rel.viewTenantColumn;
  const parent = rel.via ? input.catalog.byOid.get(rel.via.parentOid) : undefined;
  return rel.via && parent
    ? `EXISTS (SELECT 1 FROM ${parent.sql} AS p WHERE ${rel.via.columns.map((c, i) => `p.${quoteIdent(rel.via!.references[i])} = ${quoteIdent(rel.name)}.${quoteIdent(c)}`).join(' AND ')})`
    : column
      ? `${quoteIdent(column)} = ${current}`
      : `the tenant column = ${current}`;
}

/** VER001, VER004, VER005, VER006 on a relation: the policies of `command` must hold the tenant predicate. */
export function crossTenantHelp(input: HelpInput, command: string): string | undefined {
  if (input.target.kind === 'function') return undefined;
  const rel = input.target.rel;
  const partition =
    rel.kind === 'partition'
      ? " A partition read directly is protected by its own policies, not its parent's: rlsctl apply gives every partition the parent's."
      : '';
  return `the ${command} policies of ${rel.sql} for ${input.role} must hold ${tenantPredicate(rel, input)}; run rlsctl audit for the hole and rlsctl apply to fix it.${partition}`;
}
