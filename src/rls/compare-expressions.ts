import { normalizeExpression } from '../policy/expression.js';

/**
 * How the set of rows an expression admits changed, told from the parse
 * trees alone (no database, no data):
 *
 * - `same`: equal trees once positions are dropped, so reformatting, case of
 *   keywords and redundant parentheses are no change;
 * - `wider` / `narrower`: provable from the shape: to or from a constant
 *   `true` / `false`, a conjunct added or dropped (`a` -> `a AND b`), a
 *   disjunct added or dropped (`a` -> `a OR b`);
 * - `unknown`: anything else. Deciding whether one predicate implies another
 *   is undecidable in general, so the caller must treat `unknown` as a
 *   possible widening.
 *
 * An absent expression is passed in already replaced by what PostgreSQL makes
 * of it (`effectiveUsing` / `effectiveCheck` in src/rls/policy-semantics.ts).
 */
export type ExpressionComparison = 'same' | 'wider' | 'narrower' | 'unknown';

type Tree = unknown;

export function compareExpressions(before: string, after: string): ExpressionComparison {
  const a = parse(before);
  const b = parse(after);
  // An expression the parser refuses cannot reach a validated model; if one
  // does (a hand-built model, the parser not loaded), say nothing is known.
  if (a === undefined || b === undefined) return 'unknown';
  if (key(a) === key(b)) return 'same';
  if (isConstant(b, true) || isConstant(a, false)) return 'wider';
  if (isConstant(b, false) || isConstant(a, true)) return 'narrower';
  const conjA = keys(flatten(a, 'AND_EXPR'));
  const conjB = keys(flatten(b, 'AND_EXPR'));
  const disjA = keys(flatten(a, 'OR_EXPR'));
  const disjB = keys(flatten(b, 'OR_EXPR'));
  // `a AND b` -> `b AND a`: the same rows (PostgreSQL promises no evaluation order anyway).
  if (equalSets(conjA, conjB) || equalSets(disjA, disjB)) return 'same';
  // after = before AND more: every row admitted now was admitted before.
  if (isSubset(conjA, conjB)) return 'narrower';
  if (isSubset(conjB, conjA)) return 'wider';
  // after = before OR more: every row admitted before is still admitted.
  if (isSubset(disjA, disjB)) return 'wider';
  if (isSubset(disjB, disjA)) return 'narrower';
  return 'unknown';
}

/**
 * The parse tree without source positions (re-wrapping an IN list is no change either). Plans of
 * many tables compare the same few expressions over and over: the trees are kept, a bounded number.
 */
const trees = new Map<string, Tree | undefined>();
const KEEP = 5000;

function parse(text: string): Tree | undefined {
  if (trees.has(text)) return trees.get(text);
  const normalized = normalizeExpression(text);
  const tree = normalized === undefined ? undefined : (JSON.parse(normalized) as Tree);
  // Unparsed (parser not loaded yet) is not remembered: it may parse later.
  if (normalized !== undefined) {
    if (trees.size >= KEEP) trees.clear();
    trees.set(text, tree);
  }
  return tree;
}

function key(tree: Tree): string {
  return JSON.stringify(tree);
}

function keys(trees: Tree[]): Set<string> {
  return new Set(trees.map(key));
}

/** `a AND (b AND c)` -> [a, b, c]: nested operands of the same boolean operator, flattened. */
function flatten(tree: Tree, op: 'AND_EXPR' | 'OR_EXPR'): Tree[] {
  const bool = (tree as { BoolExpr?: { boolop: string; args: Tree[] } }).BoolExpr;
  if (bool && bool.boolop === op) return bool.args.flatMap((arg) => flatten(arg, op));
  return [tree];
}

function equalSets(a: Set<string>, b: Set<string>): boolean {
  return isSubset(a, b) && isSubset(b, a);
}

function isSubset(small: Set<string>, big: Set<string>): boolean {
  if (small.size > big.size) return false;
  for (const k of small) if (!big.has(k)) return false;
  return true;
}

/**
 * The constant `true` or `false`, as libpg-query (PostgreSQL 15+ grammar)
 * writes it: `{A_Const: {boolval: {boolval: true}}}`, and `{boolval: {}}` for
 * false (protobuf drops default values).
 */
function isConstant(tree: Tree, value: boolean): boolean {
  const c = (tree as { A_Const?: { boolval?: { boolval?: boolean } } }).A_Const;
  if (!c || !c.boolval) return false;
  return (c.boolval.boolval ?? false) === value;
}
