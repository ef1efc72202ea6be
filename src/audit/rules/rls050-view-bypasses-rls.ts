import { quoteIdent } from '../../compile/quote.js';
import type { Finding } from '../../report/finding.js';
import type { AuditContext, ProtectedTable } from '../audit-context.js';
import { findingOf } from '../audit-context.js';
import type { RelationRow } from '../../catalog/catalog-rows.js';
import { defineRule } from '../rule.js';
import { manualFix, sqlFix } from '../fix.js';

const TRUE_OPTION = /^security_invoker=(true|on|yes|1|t|y)$/i;

export function isSecurityInvoker(rel: RelationRow): boolean {
  return rel.options.some((o) => TRUE_OPTION.test(o));
}

/**
 * Why `role`, reading `table`, is not subject to its policies; undefined when it is.
 * Superuser and BYPASSRLS are the role's own attributes; the owner test is
 * has_privs_of_role, which FORCE ROW LEVEL SECURITY switches off.
 */
export function bypassReason(ctx: AuditContext, role: string, table: RelationRow): string | undefined {
  const attr = ctx.bypassesByAttribute(role);
  if (attr) return attr === 'superuser' ? `${role} is a superuser` : `${role} has BYPASSRLS`;
  if (!table.force && ctx.hasPrivsOf(role, table.owner)) {
    return role === table.owner
      ? `${role} owns ${ctx.label(table)}, which does not force RLS`
      : `${role} has the privileges of ${table.owner}, the owner of ${ctx.label(table)}, which does not force RLS`;
  }
  return undefined;
}

/** The protected relation behind `oid`: a tenant or shared table, or a partition of one. */
export function protectedOf(ctx: AuditContext, oid: string): ProtectedTable | undefined {
  return ctx.protectedTables.get(oid) ?? ctx.protectedPartitions.get(oid);
}

/**
 * The protected tables a view reads with its owner's rights: those it reads
 * directly, and those read through security-invoker views it reads (they run
 * as the outer view's owner). A view read through a view without
 * security_invoker checks its tables as its own owner, and is reported itself.
 */
export function tablesReadAsOwner(ctx: AuditContext, deps: Map<string, string[]>, viewOid: string): RelationRow[] {
  const out = new Map<string, RelationRow>();
  const seen = new Set<string>();
  const visit = (oid: string) => {
    if (seen.has(oid)) return;
    seen.add(oid);
    for (const ref of deps.get(oid) ?? []) {
      const rel = ctx.relations.get(ref);
      if (!rel) continue;
      if (protectedOf(ctx, ref) && rel.rls) out.set(ref, rel);
      else if (rel.kind === 'v' && isSecurityInvoker(rel)) visit(ref);
    }
  };
  visit(viewOid);
  return [...out.values()];
}

export function dependencyMap(ctx: AuditContext): Map<string, string[]> {
  const deps = new Map<string, string[]>();
  for (const d of ctx.catalog.viewDependencies) {
    const list = deps.get(d.viewOid);
    if (list) list.push(d.refOid);
    else deps.set(d.viewOid, [d.refOid]);
  }
  return deps;
}

export const rls050 = defineRule({
  code: 'RLS050',
  name: 'view-bypasses-rls',
  severity: 'error',
  title: 'A view over a tenant table runs as an owner that bypasses its policies',
  description:
    "A view reads its tables with its owner's rights and the policies that apply to its owner, unless it is created WITH (security_invoker = true) (PostgreSQL 15 and later). When that owner is a superuser, has BYPASSRLS, or owns the tenant table without FORCE ROW LEVEL SECURITY, everyone who can select from the view reads every tenant's rows.",
  remediation:
    "On PostgreSQL 15 and later: ALTER VIEW ... SET (security_invoker = true). Before 15 (no security_invoker): give the view to an owner that is subject to the policies (no BYPASSRLS, not the table owner unless the table forces RLS, and named by the policies), or revoke the app roles' access to it.",
  check(ctx) {
    const findings: Finding[] = [];
    const deps = dependencyMap(ctx);
    const invokerSupported = ctx.serverVersionNum >= 150000;
    for (const view of ctx.catalog.relations) {
      if (view.kind !== 'v' || isSecurityInvoker(view)) continue;
      const reasons: string[] = [];
      for (const table of tablesReadAsOwner(ctx, deps, view.oid)) {
        const why = bypassReason(ctx, view.owner, table);
        if (why) reasons.push(`${ctx.label(table)} (${why})`);
      }
      if (reasons.length === 0) continue;
      const sql = ctx.sql(view);
      findings.push(
        findingOf(
          rls050,
          ctx.objectOf(view),
          `view ${ctx.label(view)} reads ${reasons.join(', ')} as its owner ${view.owner}, without security_invoker: whoever can select from it reads every tenant's rows`,
          invokerSupported
            ? sqlFix([`ALTER VIEW ${sql} SET (security_invoker = true);`])
            : manualFix(
                `PostgreSQL ${Math.floor(ctx.serverVersionNum / 10000)} has no security_invoker (it came in 15): decide which role owns the view (NOBYPASSRLS, not the table owner, named in the policies) and ALTER VIEW ${sql} OWNER TO it; or revoke the app roles' access: REVOKE ALL ON ${sql} FROM ${ctx.appRoles.length > 0 ? ctx.appRoles.map(quoteIdent).join(', ') : 'PUBLIC'};`,
              ),
        ),
      );
    }
    return findings;
  },
});
