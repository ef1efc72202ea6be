import { defineVerifyRule, detailsMessage } from '../rule.js';
import { crossTenantHelp, readerHelp } from './verify-help.js';
import { quoteIdent, quoteLiteral } from '../../compile/quote.js';
import { ownerSql, tenantLiteral } from '../owner-sql.js';
import type { Prober, Result } from '../prober.js';
import { functionSql, labelOf, resultKey, ROW_LIMIT, viewResultSql, type Target } from '../target.js';

/** docs/rules/VER001.md */
export const ver001 = defineVerifyRule({
  code: 'VER001',
  name: 'cross-tenant-read',
  severity: 'error',
  title: "A tenant can read another tenant's rows",
  description:
    'Acting as an app role with one tenant set, a query returned rows that belong to another tenant: directly from a tenant table or partition, or through a view, a materialized view or a SECURITY DEFINER function.',
  remediation:
    "Protect the relation with row level security (rlsctl apply), make views security_invoker, revoke app roles' access to materialized views, and make SECURITY DEFINER functions filter by the current tenant or run as SECURITY INVOKER.",
  leak: true,
  message: detailsMessage,
  help: (input) => readerHelp(input) ?? crossTenantHelp(input, 'SELECT (USING)'),
});

/**
 * A table or partition as tenant `a`: any row whose owner is not `a` is a
 * leak. For a `via` table, the connecting role says who really owns the rows
 * found (as the app role a hidden parent reads as NULL).
 */
export async function probeRead(
  p: Prober,
  target: Target & { kind: 'relation' },
  role: string,
  a: string,
  owner: { sql: string; type: string },
): Promise<'leak' | 'clean' | 'failed'> {
  const rel = target.rel;
  const sql = `SELECT (${owner.sql})::text AS rlsctl_owner, r.tableoid::pg_catalog.regclass::text AS rlsctl_rel, r.ctid::text AS rlsctl_ctid FROM ${rel.sql} AS r WHERE (${owner.sql}) IS DISTINCT FROM ${tenantLiteral(a, owner.type)} LIMIT 5`;
  const outcome = await p.session.as(role, a, sql);
  if (!outcome.ok) {
    p.skipped(target, role, 'read', a, `the read probe as tenant ${a} failed: ${p.errorText(outcome.error)}`, sql);
    return 'failed';
  }
  const found = outcome.result.rows as Array<{ rlsctl_owner: string | null; rlsctl_rel: string; rlsctl_ctid: string }>;
  if (found.length === 0) return 'clean';
  let owners = found.map((r) => r.rlsctl_owner);
  if (rel.via) {
    // As the app role a hidden parent reads as NULL: ask the connecting role who really owns these rows.
    const truth = ownerSql(p.catalog, rel, 'r')!;
    const tids = `ARRAY[${found.map((r) => quoteLiteral(r.rlsctl_ctid)).join(', ')}]::pg_catalog.tid[]`;
    const { rows: real } = await p.session.connecting(
      `SELECT (${truth.sql})::text AS owner, r.tableoid::pg_catalog.regclass::text AS rel, r.ctid::text AS ctid FROM ${rel.sql} AS r WHERE r.ctid = ANY (${tids})`,
    );
    const wanted = new Set(found.map((r) => `${r.rlsctl_rel}@${r.rlsctl_ctid}`));
    owners = real
      .filter((r) => wanted.has(`${r.rel}@${r.ctid}`))
      .map((r) => r.owner as string | null)
      .filter((o) => o !== a);
    if (owners.length === 0) return 'clean';
  }
  const whose = owners[0] === null ? 'a row that belongs to no tenant' : `a row of ${p.tenantName(owners[0])}`;
  leak(p, target, role, 'read', `${role} acting as tenant ${a} reads ${whose} in ${labelOf(target, p.catalog)}`, sql);
  return 'leak';
}

/** A view with a tenant column, as each tenant: a row of another tenant through it is a leak. */
export async function probeViewWithTenantColumn(p: Prober, target: Target & { kind: 'relation' }): Promise<void> {
  const rel = target.rel;
  const c = quoteIdent(rel.viewTenantColumn!);
  const type = rel.columns.find((col) => col.name === rel.viewTenantColumn)!.type;
  for (const role of p.rolesFor(target, 'select')) {
    for (const [a] of p.pairs) {
      const sql = `SELECT v.${c}::text AS rlsctl_owner FROM ${rel.sql} AS v WHERE v.${c} IS NOT NULL AND v.${c} <> ${tenantLiteral(a, type)} LIMIT 1`;
      const outcome = await p.session.as(role, a, sql);
      if (!outcome.ok) {
        p.skipped(target, role, 'read', a, `the read probe as tenant ${a} failed: ${p.errorText(outcome.error)}`, sql);
        continue;
      }
      const found = outcome.result.rows[0] as { rlsctl_owner: string } | undefined;
      if (found)
        leak(
          p,
          target,
          role,
          'read',
          `${role} acting as tenant ${a} reads a row of ${p.tenantName(found.rlsctl_owner)} through ${labelOf(target, p.catalog)}`,
          sql,
        );
    }
  }
}

/**
 * A view without a tenant column, or a function: what it returns is
 * compared per tenant. A leak is (a) a row carrying another tenant's value
 * in a tenant column (a column named like a tenant column), or (b) the same
 * non-empty result for every tenant and for a session with no tenant at
 * all: it returns the same whoever asks, so it does not filter by tenant
 * (the tenants own different rows, and with no tenant set a filtered
 * result is empty or differs).
 */
export async function probeResults(p: Prober, target: Target, noTenant: Map<string, Result>): Promise<void> {
  const sql = target.kind === 'function' ? functionSql(target.fn) : viewResultSql(target.rel);
  for (const role of p.rolesFor(target, 'select')) {
    const results = new Map<string, Result>();
    for (const tenant of p.tenants) {
      const outcome = await p.session.as(role, tenant, sql);
      if (!outcome.ok) {
        p.skipped(target, role, 'read', tenant, `the probe as tenant ${tenant} failed: ${p.errorText(outcome.error)}`, sql);
        continue;
      }
      const rows = (outcome.result.rows as Array<{ j: string | null }>).map((r) => r.j ?? 'null');
      results.set(tenant, { rows });
      const other = rows.flatMap((r) => p.tenantValuesIn(r)).find((v): v is string => v !== null && v !== tenant);
      if (other !== undefined) {
        leak(p, target, role, 'read', `${role} acting as tenant ${tenant} gets a row of ${p.tenantName(other)} from ${labelOf(target, p.catalog)}`, sql);
      }
    }
    const none = noTenant.get(resultKey(target, role));
    const all = p.tenants.map((t) => results.get(t));
    if (none && all.every((r) => r !== undefined) && none.rows.length > 0 && all.every((r) => sameRows(r!.rows, none.rows))) {
      const n = none.rows.length;
      leak(
        p,
        target,
        role,
        'same-for-all',
        `${role} gets the same ${n >= ROW_LIMIT + 1 ? `${ROW_LIMIT}+` : n} row${n === 1 ? '' : 's'} from ${labelOf(target, p.catalog)} as tenant ${p.tenants.join(', as tenant ')} and with no tenant set: it does not filter by tenant`,
        sql,
      );
    }
  }
}

function sameRows(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Record a VER001 finding; `way` tells a read across from a result that is the same for everyone. */
function leak(p: Prober, target: Target, role: string, way: 'read' | 'same-for-all', detail: string, sql: string): void {
  p.book.add('VER001', target, role, undefined, way, detail, sql);
}
