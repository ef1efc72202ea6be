import type { CatalogPolicy, CatalogTable } from '../catalog/catalog-model.js';
import { GENERATED_PREFIX, type PolicySpec } from '../compile/desired-state.js';
import { qualify, quoteIdent } from '../compile/quote.js';
import { createPolicySql, dropPolicySql, quoteRole } from '../compile/render-sql.js';
import type { Hazard, Statement } from '../compile/statement.js';
import { embedExpression } from '../policy/expression.js';
import type { Canonicalizer, CanonicalRequest } from './canonicalize-expressions.js';
import type { PlanDrift } from './plan.js';
import { hazardList } from './hazard-list.js';
import type { Step } from './order-statements.js';

/**
 * One relation's policies and RLS flags: what the file wants against what the
 * catalog holds, as the fewest statements that close the gap.
 */

/** A policy of the file as it applies to one relation (the declared table or one of its partitions). */
export interface WantedPolicy {
  spec: PolicySpec;
  using?: string;
  check?: string;
}

export interface RelationPolicies {
  relation: CatalogTable;
  wanted: WantedPolicy[];
}

/** The expressions of existing policies that must be compared through the server. */
export function canonicalRequests(item: RelationPolicies): CanonicalRequest[] {
  const out: CanonicalRequest[] = [];
  for (const w of item.wanted) {
    if (!item.relation.policies.some((p) => p.name === w.spec.name)) continue;
    for (const expression of [w.using, w.check]) {
      if (expression !== undefined) out.push({ expression, relation: item.relation.name, columns: item.relation.columns });
    }
  }
  return out;
}

function request(item: RelationPolicies, expression: string | undefined): CanonicalRequest | undefined {
  return expression === undefined ? undefined : { expression, relation: item.relation.name, columns: item.relation.columns };
}

/**
 * Role lists compared as sets. Names are exact: `public` is the PUBLIC
 * pseudo-role (oid 0 in polroles, read as `public`; PostgreSQL reserves that
 * name), `Public` or `PUBLIC` a real role of that name.
 */
export function normalizeRoles(roles: string[]): string[] {
  return [...new Set(roles)].sort();
}

export interface PolicyPlanOutput {
  statements: Array<{ statement: Statement; step: Step }>;
  drift: PlanDrift[];
}

export function planRelationPolicies(item: RelationPolicies, canon: Canonicalizer, options: { prune: boolean }): PolicyPlanOutput {
  const { relation } = item;
  const tableSql = qualify(relation.schema, relation.name);
  const label = `${relation.schema}.${relation.name}`;
  const statements: PolicyPlanOutput['statements'] = [];
  const drift: PlanDrift[] = [];
  // With RLS off, policies are not applied: creating or changing one changes
  // no one's access until RLS is enabled (which the plan does, and marks).
  const live = relation.rls.enabled;
  const target = (name: string) => ({ kind: 'policy' as const, schema: relation.schema, table: relation.name, name });
  const push = (step: Step, statement: Statement) => statements.push({ step, statement });

  for (const w of item.wanted) {
    const { spec } = w;
    const actual = relation.policies.find((p) => p.name === spec.name);
    const describe = `${spec.permissive ? 'permissive' : 'restrictive'}, for ${spec.command}, to ${spec.roles.join(', ')}`;
    if (!actual) {
      push('policy', {
        sql: createPolicySql(tableSql, spec, w),
        target: target(spec.name),
        hazards: hazards(live ? [spec.permissive ? 'AUTHZ_WIDENS' : 'AUTHZ_NARROWS'] : [], 'TABLE_LOCK'),
        phase: 'transaction',
        summary: `create policy ${spec.name} on ${label} (${describe})`,
      });
      continue;
    }
    const usingSame = canon.same(actual.using, request(item, w.using));
    const checkSame = canon.same(actual.check, request(item, w.check));
    const rolesWanted = normalizeRoles(spec.roles);
    const rolesSame = sameList(rolesWanted, normalizeRoles(actual.roles));
    if (actual.permissive === spec.permissive && actual.command === spec.command && usingSame && checkSame && rolesSame) continue;

    const differences = [
      actual.permissive !== spec.permissive ? `is ${actual.permissive ? 'permissive' : 'restrictive'}` : '',
      actual.command !== spec.command ? `is for ${actual.command}` : '',
      rolesSame ? '' : `is to ${actual.roles.join(', ') || 'no role'}`,
      usingSame ? '' : 'has another USING expression',
      checkSame ? '' : 'has another WITH CHECK expression',
    ].filter(Boolean);
    // ALTER POLICY changes roles and expressions but cannot change the command
    // or permissive/restrictive, nor remove an expression: then drop and create.
    const alterable =
      actual.permissive === spec.permissive &&
      actual.command === spec.command &&
      !(w.using === undefined && actual.using !== undefined) &&
      !(w.check === undefined && actual.check !== undefined);
    if (alterable) {
      const parts = [`ALTER POLICY ${quoteIdent(spec.name)} ON ${tableSql}`];
      if (!rolesSame) parts.push(`  TO ${spec.roles.map(quoteRole).join(', ')}`);
      if (!usingSame && w.using !== undefined) parts.push(`  USING ${embedExpression(w.using)}`);
      if (!checkSame && w.check !== undefined) parts.push(`  WITH CHECK ${embedExpression(w.check)}`);
      push('policy', {
        sql: parts.join('\n') + ';',
        target: target(spec.name),
        hazards: hazards(live ? alterHazards(actual, rolesWanted, expressionChange(actual, w, usingSame, checkSame)) : [], 'TABLE_LOCK'),
        phase: 'transaction',
        summary: `alter policy ${spec.name} on ${label}: it ${differences.join(', ')}`,
      });
    } else {
      push('policy', {
        sql: `${dropPolicySql(tableSql, spec.name)}\n${createPolicySql(tableSql, spec, w)}`,
        target: target(spec.name),
        // A replaced policy may admit rows the old one did not: when in doubt, widening.
        hazards: hazards(live ? ['AUTHZ_WIDENS'] : [], 'DROP', 'TABLE_LOCK'),
        phase: 'transaction',
        summary: `replace policy ${spec.name} on ${label}: it ${differences.join(', ')}`,
      });
    }
  }

  if (!relation.rls.enabled || !relation.rls.forced) {
    const actions = [relation.rls.enabled ? '' : 'ENABLE ROW LEVEL SECURITY', relation.rls.forced ? '' : 'FORCE ROW LEVEL SECURITY'].filter(Boolean);
    push('rls', {
      sql: `ALTER TABLE ${tableSql} ${actions.join(', ')};`,
      target: { kind: 'table', schema: relation.schema, name: relation.name },
      hazards: ['AUTHZ_NARROWS', 'TABLE_LOCK'],
      phase: 'transaction',
      summary: `${[relation.rls.enabled ? '' : 'enable', relation.rls.forced ? '' : 'force'].filter(Boolean).join(' and ')} row level security on ${label}${relation.rls.forced ? '' : ' (its owner too is subject to the policies)'}`,
    });
  }

  const wantedNames = new Set(item.wanted.map((w) => w.spec.name));
  for (const actual of relation.policies) {
    if (wantedNames.has(actual.name)) continue;
    const drop = (why: string) =>
      push('drop-policy', {
        sql: dropPolicySql(tableSql, actual.name),
        target: target(actual.name),
        hazards: hazards(live ? [dropHazard(actual)] : [], 'DROP', 'TABLE_LOCK'),
        phase: 'transaction',
        summary: `drop policy ${actual.name} on ${label}: ${why}`,
      });
    // rlsctl_ names belong to rlsctl (the validator refuses them for
    // hand-written policies): one the file no longer produces (the table's
    // commands changed, say) is removed without --prune, or the old policy
    // would keep granting what the file took away.
    if (actual.name.startsWith(GENERATED_PREFIX)) {
      drop('rlsctl made it and the policy file no longer asks for it');
      continue;
    }
    drift.push({
      schema: relation.schema,
      table: relation.name,
      policy: actual.name,
      message: `policy ${actual.name} on ${label} (${actual.permissive ? 'permissive' : 'restrictive'}, for ${actual.command}, to ${actual.roles.join(', ')}) is not declared in the policy file${options.prune ? '; dropped (--prune)' : '; kept (apply --prune drops it)'}`,
    });
    if (options.prune) drop('not declared in the policy file (--prune)');
  }
  return { statements, drift };
}

/**
 * Dropping a permissive policy can only take access away; dropping a
 * restrictive one can only give it.
 */
function dropHazard(policy: CatalogPolicy): Hazard {
  return policy.permissive ? 'AUTHZ_NARROWS' : 'AUTHZ_WIDENS';
}

/**
 * How a changed expression moves access. An expression that was `true`
 * admitted every row (for a permissive policy, everything; for a restrictive
 * one, no restriction): any replacement can only narrow. One that becomes
 * `true` can only widen. Anything else may do either: when in doubt, widening.
 */
function expressionChange(actual: CatalogPolicy, w: WantedPolicy, usingSame: boolean, checkSame: boolean): 'same' | 'narrows' | 'widens' {
  if (usingSame && checkSame) return 'same';
  const changed: Array<[string | undefined, string | undefined]> = [];
  if (!usingSame) changed.push([actual.using, w.using]);
  if (!checkSame) changed.push([actual.check, w.check]);
  if (changed.every(([before]) => before === 'true')) return 'narrows';
  return 'widens';
}

/**
 * Roles added to a permissive policy, or removed from a restrictive one, widen
 * access; the reverse narrows it.
 */
function alterHazards(actual: CatalogPolicy, wanted: string[], expression: 'same' | 'narrows' | 'widens'): Hazard[] {
  const had = new Set(normalizeRoles(actual.roles));
  const added = wanted.some((r) => !had.has(r));
  const removed = [...had].some((r) => !wanted.includes(r));
  const out: Hazard[] = [];
  if (expression === 'widens') out.push('AUTHZ_WIDENS');
  if (expression === 'narrows') out.push('AUTHZ_NARROWS');
  if (added) out.push(actual.permissive ? 'AUTHZ_WIDENS' : 'AUTHZ_NARROWS');
  if (removed) out.push(actual.permissive ? 'AUTHZ_NARROWS' : 'AUTHZ_WIDENS');
  return out;
}

function hazards(first: Hazard[], ...rest: Hazard[]): Hazard[] {
  return hazardList(first, rest);
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
