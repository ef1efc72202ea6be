import { quoteIdent } from '../../compile/quote.js';
import type { Finding } from '../../report/finding.js';
import type { AuditContext } from '../audit-context.js';
import { coversCommand, findingOf } from '../audit-context.js';
import type { PolicyRow, RelationRow } from '../../catalog/catalog-rows.js';
import { defineRule } from '../rule.js';
import { manualFix } from '../fix.js';
import { clauses, policiesInScope, policyObject, rolesToCheck } from './policy-rule-helpers.js';

export const rls035 = defineRule({
  code: 'RLS035',
  name: 'recursive-policy',
  severity: 'error',
  title: 'A policy reads a table whose policies read the first table back',
  description:
    'A policy reads a table in a sub-query (or through a helper function that is not SECURITY DEFINER) whose own policies read the first table again, directly or through other tables; a membership table whose policy reads the membership table is the usual case. PostgreSQL expands the policies of every table a policy reads, so it never ends: every query of the table fails with "infinite recursion detected in policy for relation" (through a helper function that is not SECURITY DEFINER, with "stack depth limit exceeded" once the table has rows).',
  remediation:
    'Read the other table through a SECURITY DEFINER function owned by a role that is not subject to its policies (Supabase: private.user_org_ids(), in a schema the API does not expose): the function reads it without applying its policies, which breaks the cycle.',
  check(ctx) {
    const findings: Finding[] = [];
    const applies = (p: PolicyRow) => ctx.appRoles.length === 0 || rolesToCheck(ctx, p).length > 0;
    /** Tables a policy reads that have row level security (their policies apply, and expand). */
    const reads = (policy: PolicyRow): RelationRow[] => {
      const out = new Map<string, RelationRow>();
      for (const c of clauses(ctx, policy)) {
        for (const r of c.facts.relationsRead) {
          const rel = resolve(ctx, r);
          if (rel && rel.rls && ctx.isTable(rel)) out.set(rel.oid, rel);
        }
      }
      return [...out.values()];
    };
    /** A table's read policies (a sub-query reads): the tables they read. */
    const edges = new Map<string, RelationRow[]>();
    const next = (rel: RelationRow): RelationRow[] => {
      let list = edges.get(rel.oid);
      if (!list) {
        const m = new Map<string, RelationRow>();
        for (const p of ctx.policiesOf(rel.oid)) if (coversCommand(p.command, 'select') && applies(p)) for (const r of reads(p)) m.set(r.oid, r);
        edges.set(rel.oid, (list = [...m.values()]));
      }
      return list;
    };
    for (const { rel, policy } of policiesInScope(ctx)) {
      if (rel.isPartition || !rel.rls || !applies(policy)) continue;
      // Breadth-first from the tables the policy reads, back to its own table.
      const path = new Map<string, RelationRow | undefined>();
      const queue: RelationRow[] = [];
      for (const r of reads(policy)) {
        if (!path.has(r.oid)) path.set(r.oid, undefined);
        queue.push(r);
      }
      let hit = path.has(rel.oid);
      for (let i = 0; i < queue.length && !hit; i++) {
        for (const r of next(queue[i])) {
          if (path.has(r.oid)) continue;
          path.set(r.oid, queue[i]);
          if (r.oid === rel.oid) hit = true;
          queue.push(r);
        }
      }
      if (!hit) continue;
      const chain: string[] = [];
      for (let at: RelationRow | undefined = rel; at; at = path.get(at.oid)) {
        chain.unshift(ctx.label(at));
        if (chain.length > path.size + 1) break;
      }
      const via = chain.length > 1 ? `, whose policies read ${chain.slice(1).join(', then ')}` : '';
      findings.push(
        findingOf(
          rls035,
          policyObject(rel, policy),
          `policy ${policy.name} on ${ctx.label(rel)} reads ${chain[0]}${via} back: queries of ${ctx.label(rel)} fail ("infinite recursion detected in policy", or through a function "stack depth limit exceeded")`,
          manualFix(
            `read ${chain[0]} through a SECURITY DEFINER function whose owner is not subject to its policies (e.g. private.user_org_ids() RETURNS SETOF ..., LANGUAGE sql STABLE SECURITY DEFINER SET search_path = ''), and use it in policy ${quoteIdent(policy.name)} on ${ctx.sql(rel)}: ... IN (SELECT private.user_org_ids()); which rows the function returns is for you to decide`,
          ),
        ),
      );
    }
    return findings;
  },
});

/** A relation a policy names: schema-qualified as pg_get_expr prints it outside the search path; else the one in public, or the only one of that name. */
function resolve(ctx: AuditContext, r: { schema?: string; name: string }): RelationRow | undefined {
  if (r.schema) return ctx.relationsByKey.get(`${r.schema}.${r.name}`);
  const inPublic = ctx.relationsByKey.get(`public.${r.name}`);
  if (inPublic) return inPublic;
  let byName = names.get(ctx);
  if (!byName) {
    byName = new Map();
    for (const x of ctx.catalog.relations) byName.set(x.name, byName.has(x.name) ? null : x);
    names.set(ctx, byName);
  }
  return byName.get(r.name) ?? undefined;
}

/** Relation name → the only relation of that name (null when several), per audit. */
const names = new WeakMap<AuditContext, Map<string, RelationRow | null>>();
