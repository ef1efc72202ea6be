import type { CatalogSnapshot } from '../catalog/read-catalog.js';
import { subjectRolesOf } from '../catalog/read-subject-roles.js';
import type { SubjectRole, SubjectView } from '../rls/row-security-subjects.js';
import { isSecurityInvoker } from '../rls/row-security-subjects.js';

/**
 * The views explain needs to judge what a plan reads through them, from the
 * catalog layer's facts (src/catalog/read-catalog.ts: what each view reads,
 * the relations, the roles and their memberships; a query each whatever the
 * number of views or tables), read once with the rest of explain's catalog
 * (read-explain-catalog.ts): each view of the user schemas as the
 * row-security model sees it (src/rls/row-security-subjects.ts: its owner's
 * attributes and memberships, whether it is security_invoker) and the
 * relations its rule reads. Whether the policies of a table apply through a
 * view is the model's to say (scan-security.ts), not this file's.
 */
export interface ExplainView {
  schema: string;
  name: string;
  view: SubjectView;
  /** `schema.name` of the relations the view's query names: tables, partitions, other views. */
  reads: string[];
}

/**
 * The views (relkind v) of the user schemas by `schema.name`, and the roles
 * `roles` and the views' owners as the model sees them (one read of the roles
 * and their memberships for all of them).
 */
export async function readViewFacts(
  catalog: CatalogSnapshot,
  roles: readonly string[],
): Promise<{ views: Map<string, ExplainView>; subjects: Map<string, SubjectRole> }> {
  const deps = await catalog.viewDependencies();
  const oids = [...new Set(deps.flatMap((d) => [d.viewOid, d.refOid]))];
  const relations = new Map((oids.length > 0 ? await catalog.relations({ oids }) : []).map((r) => [r.oid, r]));
  const viewRows = [...new Set(deps.map((d) => d.viewOid))].flatMap((oid) => {
    const r = relations.get(oid);
    return r && r.kind === 'v' ? [r] : [];
  });
  const subjects = await subjectRolesOf(catalog, [...roles, ...viewRows.map((v) => v.owner)]);
  const views = new Map<string, ExplainView>();
  for (const v of viewRows) {
    const key = `${v.schema}.${v.name}`;
    const owner = subjects.get(v.owner) ?? { name: v.owner, superuser: false, bypassRls: false };
    views.set(key, { schema: v.schema, name: v.name, view: { owner, securityInvoker: isSecurityInvoker(v.options), label: key }, reads: [] });
  }
  for (const d of deps) {
    const view = relations.get(d.viewOid);
    const read = relations.get(d.refOid);
    if (view && read) views.get(`${view.schema}.${view.name}`)?.reads.push(`${read.schema}.${read.name}`);
  }
  return { views, subjects };
}
