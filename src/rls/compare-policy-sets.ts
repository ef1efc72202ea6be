import { COMMANDS, type Command } from '../policy/model.js';
import { compareExpressions as compareByParseTree, type ExpressionComparison } from './compare-expressions.js';
import { foldVerdicts, type AccessVerdict, type ExpressionComparer } from './judge-policy-change.js';
import {
  appliesToCommand,
  effectiveCheck,
  effectiveUsing,
  isPublicRole,
  normalizeRoleList,
  usesCheck,
  usesUsing,
  type PolicyShape,
} from './policy-semantics.js';

/**
 * Two sets of policies on one relation, compared the way PostgreSQL applies
 * them: for each role and command, and each clause the command uses (USING
 * for the rows it reads, WITH CHECK for the rows it writes), the rows admitted
 * are OR(permissive policies) AND AND(restrictive policies)
 * (src/backend/rewrite/rowsecurity.c). A set admits fewer rows for a role and
 * command when:
 *
 * - every permissive expression after implies one before (the OR can only
 *   shrink), and
 * - every restrictive expression before is implied by one after (the AND can
 *   only shrink);
 *
 * and more rows in the mirror case. "Implies" is what the parse trees prove
 * (same, or narrower: `a AND b` implies `a`); anything else is unknown and
 * counts as widening, with the reason.
 *
 * This is what lets plan see that replacing one FOR ALL policy by per-command
 * policies with the same expression, or renaming a policy, changes nobody's
 * access, while dropping the DELETE part narrows it.
 */

export interface SetComparison {
  verdict: AccessVerdict;
  /** One line per (role, command, clause) whose rows changed, for people. */
  reasons: string[];
}

interface Clause {
  command: Command;
  which: 'USING' | 'WITH CHECK';
}

function clauses(): Clause[] {
  const out: Clause[] = [];
  for (const command of COMMANDS) {
    if (usesUsing(command)) out.push({ command, which: 'USING' });
    if (usesCheck(command)) out.push({ command, which: 'WITH CHECK' });
  }
  return out;
}

/**
 * The roles a query may run with, as far as these policies can tell them apart: a role that is
 * a member of several of the roles named (policies TO a group apply to its members) gets the
 * permissive policies of each OR-ed and the restrictive ones of each AND-ed. So every
 * combination of the named roles is one case, and policies TO PUBLIC belong to every case (the
 * empty combination is a role none of them names). Past MAX_ROLES named roles the combinations
 * are too many: the comparison then says it cannot tell.
 */
const MAX_ROLES = 8;

function roleCombinations(policies: readonly PolicyShape[]): string[][] | undefined {
  const names = new Set<string>();
  for (const p of policies) for (const r of normalizeRoleList(p.roles)) if (!isPublicRole(r)) names.add(r);
  const list = [...names].sort();
  if (list.length > MAX_ROLES) return undefined;
  const out: string[][] = [];
  for (let mask = 0; mask < 1 << list.length; mask++) out.push(list.filter((_, i) => mask & (1 << i)));
  return out;
}

function appliesToRoles(p: PolicyShape, roles: string[]): boolean {
  const named = normalizeRoleList(p.roles);
  return named.some(isPublicRole) || named.some((r) => roles.includes(r));
}

function expressionsFor(policies: readonly PolicyShape[], roles: string[], clause: Clause, permissive: boolean): string[] {
  return policies
    .filter((p) => p.permissive === permissive && appliesToCommand(p.command, clause.command) && appliesToRoles(p, roles))
    .map((p) => (clause.which === 'USING' ? effectiveUsing(p) : effectiveCheck(p)));
}

/** Whether `small` admits no row that `big` does not (proved from the trees). */
function implies(small: string, big: string, compare: ExpressionComparer): boolean {
  const c: ExpressionComparison = compare(big, small);
  return c === 'same' || c === 'narrower';
}

/** OR of `after` within OR of `before`: every disjunct after implies one before. */
function orWithin(after: string[], before: string[], compare: ExpressionComparer): boolean {
  return after.every((a) => a === 'false' || before.some((b) => implies(a, b, compare)));
}

/** AND of `after` within AND of `before`: every conjunct before is implied by one after. */
function andWithin(after: string[], before: string[], compare: ExpressionComparer): boolean {
  return before.every((b) => b === 'true' || after.some((a) => implies(a, b, compare)));
}

export function comparePolicySets(
  before: readonly PolicyShape[],
  after: readonly PolicyShape[],
  compare: ExpressionComparer = compareByParseTree,
): SetComparison {
  const verdicts: AccessVerdict[] = [];
  const reasons: string[] = [];
  const combinations = roleCombinations([...before, ...after]);
  if (!combinations) {
    return {
      verdict: 'widening',
      reasons: [`more than ${MAX_ROLES} roles are named: rlsctl cannot tell whether more rows than before, so this counts as widening`],
    };
  }
  for (const roles of combinations) {
    for (const clause of clauses()) {
      const pb = expressionsFor(before, roles, clause, true);
      const pa = expressionsFor(after, roles, clause, true);
      const rb = expressionsFor(before, roles, clause, false);
      const ra = expressionsFor(after, roles, clause, false);
      // No permissive policy: no row at all, whatever the restrictive ones say.
      if (pb.length === 0 && pa.length === 0) continue;
      const narrower = orWithin(pa, pb, compare) && andWithin(ra, rb, compare);
      const wider = orWithin(pb, pa, compare) && andWithin(rb, ra, compare);
      if (narrower && wider) continue;
      const who = roles.length === 0 ? 'a role no policy names' : roles.length === 1 ? roles[0] : `a member of ${roles.join(' and ')}`;
      const what = `${who}, ${clause.command.toUpperCase()} (${clause.which === 'USING' ? 'rows it reads' : 'rows it writes'})`;
      if (narrower) {
        verdicts.push('narrowing');
        reasons.push(`${what}: fewer rows than before`);
      } else if (wider) {
        verdicts.push('widening');
        reasons.push(`${what}: more rows than before`);
      } else {
        verdicts.push('widening');
        reasons.push(`${what}: rlsctl cannot tell whether more rows than before, so this counts as widening`);
      }
    }
  }
  return { verdict: foldVerdicts(verdicts), reasons };
}
