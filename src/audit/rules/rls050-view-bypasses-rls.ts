import { quoteIdent } from '../../compile/quote.js';
import type { Finding } from '../../report/finding.js';
import type { AuditContext, ProtectedTable } from '../audit-context.js';
import { findingOf } from '../audit-context.js';
import type { RelationRow } from '../../catalog/catalog-rows.js';
import { defineRule } from '../rule.js';
import { manualFix, sqlFix } from '../fix.js';
import { effectiveRole } from '../../rls/row-security-subjects.js';

/**
 * Why `role`, reading `table`, is not subject to its policies; undefined when
 * it is: a superuser, BYPASSRLS, or the owner (or a role with its privileges)
 * of a table that does not force RLS, as src/rls/row-security-subjects.ts says.
 */
export function bypassReason(ctx: AuditContext, role: string, table: RelationRow): string | undefined {
  const verdict = ctx.rowSecurity(role, table);
  return verdict.bypass ? verdict.reason.message : undefined;
}

/** The protected relation behind `oid`: a tenant or shared table, or a partition of one. */
export function protectedOf(ctx: AuditContext, oid: string): ProtectedTable | undefined {
  return ctx.protectedTables.get(oid) ?? ctx.protectedPartitions.get(oid);
}

/**
 * The protected tables a view reads itself. A view it reads
 * checks its own tables: as its owner, and is reported itself; or, when it is
 * security_invoker, as the current user, also inside a view that runs as its
 * owner (src/rls/row-security-subjects.ts, effectiveRole): neither runs them
 * as this view's owner.
 */
export function tablesReadAsOwner(ctx: AuditContext, deps: Map<string, string[]>, viewOid: string): RelationRow[] {
  const out = new Map<string, RelationRow>();
  for (const ref of deps.get(viewOid) ?? []) {
    const rel = ctx.relations.get(ref);
    if (rel && protectedOf(ctx, ref)) out.set(ref, rel);
  }
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
    // Whoever selects from the view: it reads as its owner unless the model says it reads as the caller.
    const caller = { name: '', superuser: false, bypassRls: false };
    for (const view of ctx.catalog.relations) {
      if (view.kind !== 'v') continue;
      const via = { views: [ctx.subjectView(view)], serverMajor: ctx.serverMajor };
      if (effectiveRole(caller, via) === caller) continue;
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
