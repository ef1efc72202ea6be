import { qualify, quoteIdent } from '../../compile/quote.js';
import type { FindingFix } from '../../report/finding.js';
import type { RelationRow } from '../../catalog/catalog-rows.js';
import { findingOf, type AuditContext } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { sqlFix } from '../fix.js';
import { viaJoins, type ViaJoin } from '../via-joins.js';
import { policiesInScope } from './policy-rule-helpers.js';

export const rls033 = defineRule({
  code: 'RLS033',
  name: 'via-parent-key-not-unique',
  severity: 'error',
  title: 'A policy takes the tenant from a parent row joined on columns that are not a unique key of the parent',
  description:
    'A policy of the `via` style, EXISTS (SELECT 1 FROM parent p WHERE p.id = child.parent_id), admits a row when any visible parent row matches it. When the join columns are not a unique key of the parent (its key is (tenant_id, id) and ids repeat across tenants), one row matches the parent rows of several tenants, and each of those tenants sees it, and can change or delete it.',
  remediation:
    'Add a unique key on the joined parent columns (ALTER TABLE parent ADD UNIQUE (id)), or join on a whole unique key of the parent, tenant column included (p.tenant_id = child.parent_tenant AND p.id = child.parent_id).',
  check(ctx) {
    // One finding per relation, parent and join columns, naming every policy that joins so.
    const holes = new Map<string, { rel: RelationRow; parent: RelationRow; columns: string[]; policies: string[] }>();
    for (const { rel, policy } of policiesInScope(ctx)) {
      // A partition of a protected table carries copies of its root's policies: judged there once.
      if (rel.isPartition && ctx.protectedPartitions.has(rel.oid)) continue;
      const parentHas = (p: ViaJoin['parent'], column: string) => {
        const parent = resolveParent(ctx, p, rel);
        return parent !== undefined && ctx.column(parent.oid, column) !== undefined;
      };
      for (const text of [policy.using, policy.check]) {
        if (text === undefined) continue;
        for (const join of viaJoins(text, rel, parentHas)) {
          const parent = resolveParent(ctx, join.parent, rel);
          if (!parent || !isTenantTable(ctx, parent)) continue; // a lookup in a shared or unknown table
          const columns = [...new Set(join.parentColumns)].sort();
          if (coversUniqueKey(ctx, parent, columns)) continue;
          const key = JSON.stringify([rel.oid, parent.oid, columns]);
          const hole = holes.get(key) ?? { rel, parent, columns, policies: [] };
          if (!hole.policies.includes(policy.name)) hole.policies.push(policy.name);
          holes.set(key, hole);
        }
      }
    }
    // A `via` of the policy file whose policies are not (yet) in the database:
    // plan and apply refuse it, and the audit says why.
    for (const table of ctx.tenantTables()) {
      if (!table.via) continue;
      const parent = ctx.relationsByKey.get(`${table.via.parentSchema}.${table.via.parentName}`);
      const columns = [...new Set(table.via.references)].sort();
      if (!parent || coversUniqueKey(ctx, parent, columns)) continue;
      const key = JSON.stringify([table.rel.oid, parent.oid, columns]);
      if (!holes.has(key)) holes.set(key, { rel: table.rel, parent, columns, policies: [] });
    }
    return [...holes.values()].map(({ rel, parent, columns, policies }) =>
      findingOf(
        rls033,
        ctx.objectOf(rel),
        `${
          policies.length === 0
            ? `the policy file takes the tenant of ${ctx.label(rel)} via ${ctx.label(parent)}, joined on`
            : `${policies.length === 1 ? 'policy' : 'policies'} ${policies.join(', ')} on ${ctx.label(rel)} ${policies.length === 1 ? 'joins' : 'join'} ${ctx.label(parent)} on`
        } (${columns.join(', ')}), which is not a unique key of ${ctx.label(parent)}: a row of ${ctx.label(rel)} is visible to every tenant that has a row of ${ctx.label(parent)} with that key`,
        fixSql(ctx, parent, columns),
        `${parent.schema}.${parent.name}(${columns.join(',')})`,
      ),
    );
  },
});

/**
 * The parent as the expression names it. pg_get_expr leaves the schema out
 * when the table is visible on the audit session's search_path (by default
 * "$user", public): then public, the policy's own schema, or the only relation
 * of that name.
 */
function resolveParent(ctx: AuditContext, parent: ViaJoin['parent'], rel: RelationRow): RelationRow | undefined {
  if (parent.schema) return ctx.relationsByKey.get(`${parent.schema}.${parent.name}`);
  for (const schema of ['public', rel.schema]) {
    const found = ctx.relationsByKey.get(`${schema}.${parent.name}`);
    if (found) return found;
  }
  const named = ctx.catalog.relations.filter((r) => r.name === parent.name);
  return named.length === 1 ? named[0] : undefined;
}

/** A tenant table by the facts, or (not declared at all) one with the tenant column. */
function isTenantTable(ctx: AuditContext, rel: RelationRow): boolean {
  const declared = ctx.protectedTables.get(rel.oid) ?? ctx.protectedPartitions.get(rel.oid);
  if (declared) return declared.mode === 'tenant';
  return !ctx.exempt.has(rel.oid) && ctx.column(rel.oid, ctx.facts.tenantColumn) !== undefined;
}

/**
 * Unique keys that make the join match one parent row: unique, valid, not
 * partial, plain columns, not DEFERRABLE (a deferred check admits a duplicate
 * parent row until commit). NULLS DISTINCT or not does not matter: `=` never
 * matches a NULL.
 */
function uniqueKeys(ctx: AuditContext, parent: RelationRow): string[][] {
  return ctx
    .indexesOf(parent.oid)
    .filter((i) => i.unique && i.valid && !i.partial && !i.deferrable && i.keys.length > 0 && !i.keys.includes(0))
    .sort((a, b) => Number(b.primary) - Number(a.primary))
    .flatMap((i) => (i.keyNames && i.keyNames.length === i.keys.length ? [i.keyNames] : []));
}

function coversUniqueKey(ctx: AuditContext, parent: RelationRow, columns: string[]): boolean {
  return uniqueKeys(ctx, parent).some((key) => key.every((c) => columns.includes(c)));
}

function fixSql(ctx: AuditContext, parent: RelationRow, columns: string[]): FindingFix {
  const add = `ALTER TABLE ${qualify(parent.schema, parent.name)} ADD UNIQUE (${columns.map(quoteIdent).join(', ')});`;
  const key = uniqueKeys(ctx, parent)[0];
  // A name may hold a line break: sqlFix comments out every line of an alternative.
  return sqlFix([add], {
    alternatives: key ? [`join on the whole key (${key.map(quoteIdent).join(', ')}) of ${qualify(parent.schema, parent.name)}, tenant column included`] : [],
    note: 'it fails, changing nothing, while the joined columns repeat across tenants',
  });
}
