import { parseSync, loadModule, scanSync } from 'libpg-query';

/**
 * Hand-written SQL expressions (`using`, `check`) are checked with the real
 * PostgreSQL parser before they go anywhere near a database. The text is
 * wrapped as `SELECT (\n<expr>\n)`: the newlines keep a trailing `--` comment
 * from swallowing the closing parenthesis, and anything smuggled past the
 * expression (`true); DROP TABLE a; --`) shows up as a second statement or as
 * a clause that is not a single target, and is refused.
 */

let loaded: Promise<void> | undefined;
/** libpg-query is WebAssembly: load it once before the synchronous parser is used. */
export function loadParser(): Promise<void> {
  loaded ??= loadModule();
  return loaded;
}

export type ExpressionCheck = { ok: true; tree: unknown } | { ok: false; message: string };

export function checkExpression(text: string): ExpressionCheck {
  if (text.trim() === '') return { ok: false, message: 'the expression is empty' };
  if (text.includes('\0')) return { ok: false, message: 'the expression contains a NUL byte' };
  // Tabs and line breaks are layout; any other control character has no
  // business in SQL text and could hide what the expression does.
  if (/[\u0001-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text)) {
    return { ok: false, message: 'the expression contains a control character' };
  }
  const escape = escapesParentheses(text);
  if (escape) return { ok: false, message: escape };
  let result: { stmts?: Array<{ stmt: Record<string, unknown> }> };
  try {
    result = parseSync(`SELECT (\n${text}\n)`) as typeof result;
  } catch (error) {
    return { ok: false, message: `PostgreSQL's parser rejects it: ${(error as Error).message}` };
  }
  const stmts = result.stmts ?? [];
  if (stmts.length !== 1) {
    return { ok: false, message: `it holds ${stmts.length} statements; a policy expression is exactly one expression` };
  }
  const select = stmts[0].stmt.SelectStmt as Record<string, unknown> | undefined;
  const allowed = new Set(['targetList', 'limitOption', 'op']);
  const extra = select ? Object.keys(select).filter((k) => !allowed.has(k)) : [];
  const targets = select?.targetList as Array<{ ResTarget: { val: unknown; name?: string } }> | undefined;
  if (!select || extra.length > 0 || !targets || targets.length !== 1 || targets[0].ResTarget.name !== undefined) {
    return { ok: false, message: 'it is not a single expression (something follows or precedes it)' };
  }
  return { ok: true, tree: targets[0].ResTarget.val };
}

/**
 * The clear message for the usual ways out of the expression: a `;` that
 * ends it, or a `)` that closes the parenthesis rlsctl wraps it in. Uses
 * PostgreSQL's own scanner, so a `;` or `)` inside a string, a quoted name or
 * a comment is not counted. The parse below is what decides; this only names
 * the problem when the scanner can read the text at all.
 */
function escapesParentheses(text: string): string | undefined {
  let tokens: Array<{ text: string }>;
  try {
    tokens = scanSync(text).tokens;
  } catch {
    return undefined;
  }
  if (tokens.some((token) => token.text === ';')) return 'it holds a `;`: a policy expression is one expression, never a statement or several';
  let depth = 0;
  for (const token of tokens) {
    if (token.text === '(') depth++;
    if (token.text === ')' && --depth < 0) return 'it closes a parenthesis it did not open, so what follows would sit outside the expression';
  }
  return undefined;
}

/**
 * Keys of a parse tree that hold source positions. Beside `location`, the
 * PostgreSQL 18 grammar (libpg-query 18) records where the list of an
 * `x IN (...)` starts and ends (`rexpr_list_start`, `rexpr_list_end`).
 */
export function isPositionKey(key: string): boolean {
  return (
    key === 'location' || key === 'stmt_location' || key === 'stmt_len' || key === 'rexpr_list_start' || key === 'rexpr_list_end' || key.endsWith('_location')
  );
}

/** The parse tree without source positions: equal trees mean the same expression, however formatted. */
export function normalizeExpression(text: string): string | undefined {
  const checked = checkExpression(text);
  if (!checked.ok) return undefined;
  return JSON.stringify(checked.tree, (key, value) => (isPositionKey(key) ? undefined : value));
}

/** The expression as it is written into SQL: parenthesised, on its own lines if it holds a comment. */
export function embedExpression(text: string): string {
  const trimmed = text.trim();
  return trimmed.includes('--') || trimmed.includes('\n') ? `(\n    ${trimmed}\n  )` : `(${trimmed})`;
}

/** Whether a parsed expression (checkExpression's tree) holds a sub-query: EXISTS, IN (SELECT ...), a scalar (SELECT ...). */
export function hasSubLink(tree: unknown): boolean {
  if (!tree || typeof tree !== 'object') return false;
  if (Array.isArray(tree)) return tree.some(hasSubLink);
  return Object.entries(tree as Record<string, unknown>).some(([key, value]) => key === 'SubLink' || hasSubLink(value));
}
