import type { CatalogPolicy, CatalogTable } from '../catalog/catalog-model.js';
import { isStaleGeneratedPolicy, type PolicySpec } from '../compile/desired-state.js';
import { qualify, quoteIdent } from '../compile/quote.js';
import { createPolicySql, dropPolicySql, quoteRole } from '../compile/render-sql.js';
import type { Hazard, Statement } from '../compile/statement.js';
import { embedExpression } from '../policy/expression.js';
import type { Canonicalizer, CanonicalRequest } from './canonicalize-expressions.js';
import type { PlanDrift } from './plan.js';
import { hazardList } from './hazard-list.js';
import { judgePolicyChange, type PolicyChangeJudgement } from '../rls/judge-policy-change.js';
import { sameRoleList, type PolicyShape } from '../rls/policy-semantics.js';
import { comparePolicySets, type SetComparison } from '../rls/compare-policy-sets.js';
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

/**
 * The expressions of the file to put in the server's form: those of existing policies are compared
 * with the catalog, and new ones with the policies they may replace (a rename, a FOR ALL policy split
 * into per-command ones), to judge what the plan does to access.
 */
export function canonicalRequests(item: RelationPolicies): CanonicalRequest[] {
  const out: CanonicalRequest[] = [];
  for (const w of item.wanted) {
    if (item.relation.policies.length === 0) continue;
    for (const expression of [w.using, w.check]) {
      if (expression !== undefined) out.push({ expression, relation: item.relation.name, columns: item.relation.columns });
    }
  }
  return out;
}

function request(item: RelationPolicies, expression: string | undefined): CanonicalRequest | undefined {
  return expression === undefined ? undefined : { expression, relation: item.relation.name, columns: item.relation.columns };
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
  // The relation's policies once the plan has run, in the server's form where it knows it: what
  // the relation-wide access judgement compares with the catalog.
  const after: PolicyShape[] = [];

  for (const w of item.wanted) {
    const { spec } = w;
    const actual = relation.policies.find((p) => p.name === spec.name);
    const describe = `${spec.permissive ? 'permissive' : 'restrictive'}, for ${spec.command}, to ${spec.roles.join(', ')}`;
    if (!actual) {
      after.push(canonicalShape(item, canon, w));
      push('policy', {
        sql: createPolicySql(tableSql, spec, w),
        target: target(spec.name),
        ...withAccess(live, judgePolicyChange(undefined, wantedShape(w)), 'TABLE_LOCK'),
        phase: 'transaction',
        summary: `create policy ${spec.name} on ${label} (${describe})`,
      });
      continue;
    }
    const usingSame = canon.same(actual.using, request(item, w.using));
    const checkSame = canon.same(actual.check, request(item, w.check));
    const rolesSame = sameRoleList(spec.roles, actual.roles);
    if (actual.permissive === spec.permissive && actual.command === spec.command && usingSame && checkSame && rolesSame) {
      after.push(catalogShape(actual));
      continue;
    }
    // What the change does to access, from the row-security model (src/rls/), which diff asks too. The
    // wanted expressions in the server's form (what the catalog will hold), or the catalog's own text
    // where the server found them the same, so that the two sides compare like with like.
    const wantedNow = canonicalShape(item, canon, w, { using: usingSame ? actual.using : undefined, check: checkSame ? actual.check : undefined });
    after.push(wantedNow);
    const access = judgePolicyChange(catalogShape(actual), wantedNow);

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
        ...withAccess(live, access, 'TABLE_LOCK'),
        phase: 'transaction',
        summary: `alter policy ${spec.name} on ${label}: it ${differences.join(', ')}`,
      });
    } else {
      push('policy', {
        sql: `${dropPolicySql(tableSql, spec.name)}\n${createPolicySql(tableSql, spec, w)}`,
        target: target(spec.name),
        ...withAccess(live, access, 'DROP', 'TABLE_LOCK'),
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
      reasons: {
        AUTHZ_NARROWS: relation.rls.enabled
          ? `the owner of ${label} becomes subject to its policies: it sees and writes only the rows they admit`
          : // The statement forces RLS too (when it was not forced): afterwards the owner is subject to the policies either way.
            `the policies of ${label} start to apply: every role except superusers and BYPASSRLS roles, the owner included, sees and writes only the rows they admit`,
      },
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
        ...withAccess(live, judgePolicyChange(catalogShape(actual), undefined), 'DROP', 'TABLE_LOCK'),
        phase: 'transaction',
        summary: `drop policy ${actual.name} on ${label}: ${why}`,
      });
    // rlsctl_ names belong to rlsctl (the validator refuses them for
    // hand-written policies): one the file no longer produces (the table's
    // commands changed, say) is removed without --prune, or the old policy
    // would keep granting what the file took away.
    if (isStaleGeneratedPolicy(actual.name, wantedNames)) {
      drop('rlsctl made it and the policy file no longer asks for it');
      continue;
    }
    if (!options.prune) after.push(catalogShape(actual));
    drift.push({
      schema: relation.schema,
      table: relation.name,
      policy: actual.name,
      message: `policy ${actual.name} on ${label} (${actual.permissive ? 'permissive' : 'restrictive'}, for ${actual.command}, to ${actual.roles.join(', ')}) is not declared in the policy file${options.prune ? '; dropped (--prune)' : '; kept (apply --prune drops it)'}`,
    });
    if (options.prune) drop('not declared in the policy file (--prune)');
  }
  if (live && statements.some((s) => s.statement.target.kind === 'policy'))
    settleAccessHazards(statements, comparePolicySets(relation.policies.map(catalogShape), after));
  return { statements, drift };
}

/**
 * Each policy statement is judged alone first (which statement widens); then
 * the relation's policies are compared as a whole, as PostgreSQL applies them
 * (src/rls/compare-policy-sets.ts). When the whole does not widen (a FOR ALL
 * policy split into per-command ones with the same expression, a rename, a
 * command dropped), no statement is marked as widening: the statements run in
 * one transaction, and what a reviewer must know is the net effect.
 */
function settleAccessHazards(statements: PolicyPlanOutput['statements'], whole: SetComparison): void {
  const policyStatements = statements.filter((s) => s.statement.target.kind === 'policy');
  const why = `taken with the relation's other policies: ${whole.reasons.join('; ')}`;
  if (whole.verdict === 'widening') {
    if (!policyStatements.some((s) => s.statement.hazards.includes('AUTHZ_WIDENS'))) {
      for (const s of policyStatements) {
        s.statement.hazards = hazardList(
          ['AUTHZ_WIDENS'],
          s.statement.hazards.filter((h) => h !== 'AUTHZ_NARROWS'),
        );
        s.statement.reasons = { ...s.statement.reasons, AUTHZ_WIDENS: why };
      }
    }
    return;
  }
  for (const s of policyStatements) {
    const had = s.statement.hazards.some((h) => h === 'AUTHZ_WIDENS' || h === 'AUTHZ_NARROWS');
    const rest = s.statement.hazards.filter((h) => h !== 'AUTHZ_WIDENS' && h !== 'AUTHZ_NARROWS');
    const narrows = had && whole.verdict === 'narrowing';
    if (s.statement.hazards.includes('AUTHZ_WIDENS') || (had && !narrows)) {
      s.statement.reasons = narrows ? { AUTHZ_NARROWS: why } : undefined;
    }
    s.statement.hazards = hazardList(narrows ? ['AUTHZ_NARROWS'] : [], rest);
  }
}

/**
 * A statement's hazards: the access hazard of a judged change (none when it is neutral; none
 * either while RLS is off, when policies change no one's access until it is enabled) with its
 * reasons, then the others.
 */
function withAccess(live: boolean, access: PolicyChangeJudgement, ...rest: Hazard[]): Pick<Statement, 'hazards' | 'reasons'> {
  if (!live || access.verdict === 'neutral') return { hazards: hazardList(rest) };
  const code: Hazard = access.verdict === 'widening' ? 'AUTHZ_WIDENS' : 'AUTHZ_NARROWS';
  const why = access.aspects.filter((a) => a.verdict === access.verdict).map((a) => a.reason);
  return { hazards: hazardList([code], rest), reasons: { [code]: why.join('; ') } };
}

function catalogShape(p: CatalogPolicy): PolicyShape {
  return { permissive: p.permissive, command: p.command, roles: p.roles, using: p.using, check: p.check };
}

function wantedShape(w: WantedPolicy): PolicyShape {
  return { permissive: w.spec.permissive, command: w.spec.command, roles: w.spec.roles, using: w.using, check: w.check };
}

/**
 * A wanted policy with its expressions in the server's form (what the catalog will hold), or the
 * catalog's own text where the server found them the same, so that both sides compare like with like.
 */
function canonicalShape(item: RelationPolicies, canon: Canonicalizer, w: WantedPolicy, same: { using?: string; check?: string } = {}): PolicyShape {
  const form = (expression: string | undefined, catalogText: string | undefined) =>
    catalogText !== undefined ? catalogText : expression === undefined ? undefined : (canon.canonical(request(item, expression)!) ?? expression);
  return { ...wantedShape(w), using: form(w.using, same.using), check: form(w.check, same.check) };
}
