import { compareExpressions as compareByParseTree, type ExpressionComparison } from './compare-expressions.js';
import {
  commandsOf,
  checkFollowsUsing,
  effectiveCheck,
  effectiveUsing,
  rolesCover,
  sameRoleList,
  usesCheck,
  usesUsing,
  type PolicyShape,
} from './policy-semantics.js';

/**
 * Whether a change to one policy lets someone read or write more rows
 * (widening), fewer (narrowing), or neither (neutral). `plan`'s hazards and
 * `diff`'s classes both come from here, so the two always agree.
 *
 * The rules (docs/diff.md has the table):
 * - a permissive policy grants, a restrictive one limits: adding a permissive
 *   policy widens, adding a restrictive one narrows, and dropping reverses it;
 * - permissive → restrictive narrows whatever else changed (it stops granting
 *   and starts limiting); restrictive → permissive widens;
 * - for the same kind, more commands or roles grant more (permissive) or limit
 *   more (restrictive); an expression that admits more rows widens either way
 *   (a restrictive policy that admits more limits less);
 * - anything rlsctl cannot prove (an expression change it cannot order, some
 *   commands or roles gained while others were lost) counts as widening, and
 *   the reason says so.
 */

export type AccessVerdict = 'widening' | 'narrowing' | 'neutral';

/** Which part of the policy a judgement is about. */
export type PolicyAspect = 'added' | 'removed' | 'as' | 'for' | 'to' | 'using' | 'check';

export interface AspectJudgement {
  aspect: PolicyAspect;
  verdict: Exclude<AccessVerdict, 'neutral'>;
  /** For people: why, in one sentence without the policy's name. */
  reason: string;
  /** For `using` / `check`: how the expression moved, and what that does to access. */
  expression?: {
    before: string;
    after: string;
    comparison: Exclude<ExpressionComparison, 'same'>;
    /** `USING` or `WITH CHECK`. */
    clause: string;
    /** A USING change that WITH CHECK follows on both sides (FOR ALL / FOR UPDATE without WITH CHECK). */
    checkFollows: boolean;
    effect: string;
  };
  /** For `for` / `to`: both gained and lost, counted as widening. */
  mixed?: boolean;
}

export interface PolicyChangeJudgement {
  verdict: AccessVerdict;
  aspects: AspectJudgement[];
}

/** Compares two expressions; plan passes one that compares the server's canonical forms. */
export type ExpressionComparer = (before: string, after: string) => ExpressionComparison;

/** A widening anywhere makes the whole change widening; otherwise a narrowing makes it narrowing. */
export function foldVerdicts(verdicts: Iterable<AccessVerdict>): AccessVerdict {
  let out: AccessVerdict = 'neutral';
  for (const v of verdicts) {
    if (v === 'widening') return 'widening';
    if (v === 'narrowing') out = 'narrowing';
  }
  return out;
}

function judgement(aspects: AspectJudgement[]): PolicyChangeJudgement {
  return { verdict: foldVerdicts(aspects.map((a) => a.verdict)), aspects };
}

const words = (command: PolicyShape['command']) => (command === 'all' ? 'every command' : command);
const kind = (p: PolicyShape) => (p.permissive ? 'permissive' : 'restrictive');

/** One policy before and after (undefined: absent on that side). */
export function judgePolicyChange(
  before: PolicyShape | undefined,
  after: PolicyShape | undefined,
  compare: ExpressionComparer = compareByParseTree,
): PolicyChangeJudgement {
  if (!before && !after) return judgement([]);
  if (!before) {
    const p = after!;
    return judgement([
      p.permissive
        ? { aspect: 'added', verdict: 'widening', reason: `a new permissive policy grants ${p.roles.join(', ')} ${words(p.command)} on the rows it admits` }
        : {
            aspect: 'added',
            verdict: 'narrowing',
            reason: `a new restrictive policy limits ${p.roles.join(', ')} to the rows it admits, for ${words(p.command)}`,
          },
    ]);
  }
  if (!after) {
    const p = before;
    return judgement([
      p.permissive
        ? { aspect: 'removed', verdict: 'narrowing', reason: `a permissive policy that granted ${p.roles.join(', ')} ${words(p.command)} is gone` }
        : { aspect: 'removed', verdict: 'widening', reason: `a restrictive policy that limited ${p.roles.join(', ')} for ${words(p.command)} is gone` },
    ]);
  }
  if (before.permissive !== after.permissive) {
    return judgement([
      after.permissive
        ? { aspect: 'as', verdict: 'widening', reason: `it turned ${kind(before)} -> ${kind(after)}: it no longer limits, it now grants` }
        : { aspect: 'as', verdict: 'narrowing', reason: `it turned ${kind(before)} -> ${kind(after)}: it no longer grants, it now limits` },
    ]);
  }
  const permissive = after.permissive;
  // More commands or roles: a permissive policy grants more, a restrictive one limits more.
  const more = (grew: boolean): Exclude<AccessVerdict, 'neutral'> => (grew === permissive ? 'widening' : 'narrowing');
  const aspects: AspectJudgement[] = [];
  if (before.command !== after.command) {
    const b = commandsOf(before.command);
    const a = commandsOf(after.command);
    const grew = a.some((c) => !b.includes(c));
    const shrank = b.some((c) => !a.includes(c));
    const mixed = grew && shrank;
    aspects.push({
      aspect: 'for',
      verdict: mixed ? 'widening' : more(grew),
      mixed,
      reason: `it now applies to ${words(after.command)} instead of ${words(before.command)}${mixed ? ' (some commands gained, others lost: counted as widening)' : ''}`,
    });
  }
  if (!sameRoleList(before.roles, after.roles)) {
    const grew = !rolesCover(before.roles, after.roles);
    const shrank = !rolesCover(after.roles, before.roles);
    const mixed = grew && shrank;
    aspects.push({
      aspect: 'to',
      verdict: mixed ? 'widening' : more(grew),
      mixed,
      reason: `it now applies to ${after.roles.join(', ')} instead of ${before.roles.join(', ')}${mixed ? ' (some roles gained, others lost: counted as widening)' : ''}`,
    });
  }
  // USING is compared where both versions read rows with it; WITH CHECK where
  // both check new rows and it does not merely follow USING on both sides.
  const bothFollow = checkFollowsUsing(before) && checkFollowsUsing(after);
  if (usesUsing(before.command) && usesUsing(after.command)) {
    const a = expressionAspect('using', effectiveUsing(before), effectiveUsing(after), permissive, compare, bothFollow);
    if (a) aspects.push(a);
  }
  if (usesCheck(before.command) && usesCheck(after.command) && !bothFollow) {
    const a = expressionAspect('check', effectiveCheck(before), effectiveCheck(after), permissive, compare, false);
    if (a) aspects.push(a);
  }
  return judgement(aspects);
}

function expressionAspect(
  which: 'using' | 'check',
  before: string,
  after: string,
  permissive: boolean,
  compare: ExpressionComparer,
  checkFollows: boolean,
): AspectJudgement | undefined {
  const comparison = compare(before, after);
  if (comparison === 'same') return undefined;
  const clause = which === 'using' ? 'USING' : 'WITH CHECK';
  const effect =
    comparison === 'unknown'
      ? 'rlsctl cannot tell whether it admits more rows than before, so this counts as widening'
      : comparison === 'wider'
        ? permissive
          ? 'it admits more rows than before'
          : 'it limits less than before'
        : permissive
          ? 'it admits fewer rows than before'
          : 'it limits more than before';
  return {
    aspect: which,
    verdict: comparison === 'narrower' ? 'narrowing' : 'widening',
    reason: `its ${clause} changed${checkFollows ? ' (and WITH CHECK, which follows USING)' : ''}: ${effect}`,
    expression: { before, after, comparison, clause, checkFollows, effect },
  };
}
