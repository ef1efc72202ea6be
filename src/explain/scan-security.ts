import { qualify, quoteIdent } from '../compile/quote.js';
import { appliesToCommand } from '../rls/policy-semantics.js';
import { policyNamesRole, rowSecurityFor, type RowSecurityVerdict, type SubjectRole } from '../rls/row-security-subjects.js';
import type { PlannableKind } from './inspect-query.js';
import { COMMANDS_OF } from './policy-fix.js';
import { relationKey, type ExplainCatalog, type PolicyInfo, type RelationSecurity, type TenantRelation } from './read-explain-catalog.js';
import type { ExplainView } from './read-view-facts.js';
import type { ScanNode } from './walk-plan.js';

/**
 * Whose row security a scan of a plan meets, as the row-security model
 * (src/rls/row-security-subjects.ts) decides it: explain asks it and nothing
 * else whether the policies of a scanned relation apply, through a view, on
 * a partition, or to a role that bypasses them.
 */

/**
 * The role the queries are planned as (`subject`, for the row-security model), the name findings give it
 * (the policy role), and the views of the database, which may run as another role.
 */
export interface PlanRole {
  subject: SubjectRole;
  label: string;
  views: Map<string, ExplainView>;
  major: number;
}

/**
 * The role the queries are planned as, for the row-security model: its attributes and the roles whose
 * privileges it has, the policy role (the declared app role a login role is a member of) counted among them.
 */
export function planRole(catalog: ExplainCatalog, role: string, policyRole: string): PlanRole {
  const found = catalog.subjects.get(role) ?? { name: role, superuser: false, bypassRls: false };
  return {
    subject: { ...found, hasPrivilegesOf: (other) => other === policyRole || (found.hasPrivilegesOf?.(other) ?? false) },
    label: policyRole,
    views: catalog.views,
    major: catalog.major,
  };
}

/** Whose row security a scan meets: the relation's own, and the views the query reads it through (outermost first). */
export interface ScanSecurity {
  security?: RelationSecurity;
  views: ExplainView[];
}

/**
 * Whose row security a scan meets: the relation the query names. A partition the query names is checked
 * with its own flags and policies, one read through its parent with the tenant table's; a table read
 * through a view the query names is checked as the role that view runs as. A relation reached another
 * way (a function) counts as the tenant table read directly.
 */
export function rowSecurityOf(
  catalog: ExplainCatalog,
  who: PlanRole,
  relation: TenantRelation,
  scan: ScanNode,
  named: (qualified: string) => boolean,
): ScanSecurity {
  const own = relationKey(scan.schema, scan.relation);
  const root = relationKey(relation.table.schema, relation.table.name);
  if (own !== root && named(own)) return { security: catalog.security.get(own), views: [] };
  if (!named(root)) {
    const through = (key: string, seen: Set<string>): { views: ExplainView[]; target: string } | undefined => {
      const view = who.views.get(key);
      if (!view || seen.has(key)) return undefined;
      seen.add(key);
      const target = view.reads.includes(own) ? own : view.reads.includes(root) ? root : undefined;
      if (target) return { views: [view], target };
      for (const read of view.reads) {
        const inner = through(read, seen);
        if (inner) return { views: [view, ...inner.views], target: inner.target };
      }
      return undefined;
    };
    for (const key of who.views.keys()) {
      const path = named(key) ? through(key, new Set()) : undefined;
      if (path) return { security: catalog.security.get(path.target), views: path.views };
    }
  }
  return { security: catalog.security.get(root), views: [] };
}

/** What row security does to the role on the scan's relation, and the policies that apply (none when it does not apply). */
export function rowSecurityAt(at: ScanSecurity, who: PlanRole, kind: PlannableKind): { verdict?: RowSecurityVerdict; policies: PolicyInfo[] } {
  const security = at.security;
  if (!security) return { policies: [] };
  const verdict = rowSecurityFor({
    relation: security.relation,
    role: who.subject,
    via: at.views.length > 0 ? { views: at.views.map((v) => v.view), serverMajor: who.major } : undefined,
    policies: { list: security.policies, command: COMMANDS_OF[kind][0] },
  });
  // Through a view that runs as its owner, the owner's policies apply.
  const policies =
    verdict.outcome === 'policies' || verdict.outcome === 'no-rows'
      ? security.policies.filter((p) => policyNamesRole(p, verdict.role) && COMMANDS_OF[kind].some((c) => appliesToCommand(p.command, c)))
      : [];
  return { verdict, policies };
}

/** Whether a policy names the planned role (PUBLIC, the role, or a role whose privileges it has). */
export function policyNamesRoleOf(policy: Pick<PolicyInfo, 'roles'>, who: PlanRole): boolean {
  return policyNamesRole(policy, who.subject);
}

/** The view that reads the table as its owner (the role a verdict through `views` is about), if one does. */
export function readingView(views: ExplainView[], major: number): ExplainView | undefined {
  const inner = views[views.length - 1];
  return inner && !(inner.view.securityInvoker && major >= 15) ? inner : undefined;
}

/** The fix for a role that row security does not apply to (src/rls/row-security-subjects.ts says why). */
export function bypassHelp(verdict: RowSecurityVerdict, target: string, views: ExplainView[], major: number): string {
  const code = verdict.reason.code;
  const reader = readingView(views, major);
  if (reader) {
    const view = qualify(reader.schema, reader.name);
    return major >= 15
      ? `ALTER VIEW ${view} SET (security_invoker = true);  -- the view then reads ${target} as the caller, under its policies\n-- ${verdict.reason.message}; see rlsctl audit (RLS050)`
      : `-- ${verdict.reason.message}; PostgreSQL ${major} has no security_invoker (it came in 15)\nALTER VIEW ${view} OWNER TO view_owner;  -- a role the policies of ${target} apply to: NOBYPASSRLS, not its owner\n-- see rlsctl audit (RLS050)`;
  }
  if (code === 'owner' || code === 'owner-privileges') {
    return `-- ${verdict.reason.message}\nALTER TABLE ${target} FORCE ROW LEVEL SECURITY;  -- or plan and run as a role that does not own it`;
  }
  const attribute = code === 'superuser' ? 'NOSUPERUSER' : 'NOBYPASSRLS';
  return `-- ${verdict.reason.message}: no policy applies to it. Plan as the role the application runs as (--app-role), and run the application as one that is not\nALTER ROLE ${quoteIdent(verdict.role.name)} ${attribute};`;
}

/**
 * The relations a statement names anywhere (FROM, the target of a write, sub-queries), `schema.name`
 * or a bare name; a bare name matches the relation of that name in any schema.
 */
export function namedRelations(stmt: unknown): (qualified: string) => boolean {
  const names = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const n of node) visit(n);
      return;
    }
    if (!node || typeof node !== 'object') return;
    const obj = node as Record<string, unknown>;
    // A RangeVar, wrapped as a Node or inline where the field can only hold one (InsertStmt.relation).
    const rv = (obj.RangeVar ?? ('relpersistence' in obj ? obj : undefined)) as { schemaname?: string; relname?: string } | undefined;
    if (typeof rv?.relname === 'string') names.add(rv.schemaname ? `${rv.schemaname}.${rv.relname}` : rv.relname);
    for (const v of Object.values(obj)) visit(v);
  };
  visit(stmt);
  return (qualified) => names.has(qualified) || names.has(qualified.slice(qualified.indexOf('.') + 1));
}

/** Whether a relation (`schema.name`) is read by a view the statement names, or by a view inside one. */
export function readByNamedViews(views: Map<string, ExplainView>, named: (qualified: string) => boolean): (qualified: string) => boolean {
  const names = new Set<string>();
  const visit = (key: string) => {
    for (const read of views.get(key)?.reads ?? []) {
      if (names.has(read)) continue;
      names.add(read);
      visit(read);
    }
  };
  for (const key of views.keys()) if (named(key)) visit(key);
  return (qualified) => names.has(qualified);
}
