import { beforeAll, describe, expect, it } from 'vitest';
import { checkExpression, embedExpression, loadParser, normalizeExpression } from '../../../src/policy/expression.js';

/** Hand-written `using` / `check` expressions: one SQL expression, checked by PostgreSQL's own parser. */

beforeAll(async () => {
  await loadParser();
});

function messageOf(text: string): string | undefined {
  const result = checkExpression(text);
  return result.ok ? undefined : result.message;
}

describe('checkExpression', () => {
  it.each([
    'true',
    "owner_id = (SELECT current_setting('app.user_id', true))::uuid",
    'body <> \'a; DROP TABLE b; --\' AND "odd;name)" IS NOT NULL',
    'EXISTS (SELECT 1 FROM app.projects p WHERE p.id = project_id)',
    'v < 2 -- a trailing comment',
    'a /* a ; ) comment */ = b',
    'a = $x$ ; ) $x$',
    'x IN (1, 2)\n  OR y',
  ])('accepts %j', (text) => {
    expect(messageOf(text)).toBeUndefined();
  });

  it.each([
    ['true); DROP TABLE a; --', 'it holds a `;`: a policy expression is one expression, never a statement or several'],
    ['true; DROP TABLE a', 'it holds a `;`: a policy expression is one expression, never a statement or several'],
    ['true) FROM pg_authid WHERE (true', 'it closes a parenthesis it did not open, so what follows would sit outside the expression'],
    ['true) UNION SELECT (true', 'it closes a parenthesis it did not open, so what follows would sit outside the expression'],
    ['true), (false', 'it closes a parenthesis it did not open, so what follows would sit outside the expression'],
    ['', 'the expression is empty'],
    ['  \n ', 'the expression is empty'],
    ['a\u0000b', 'the expression contains a NUL byte'],
    ['a = \u0001b\u0001', 'the expression contains a control character'],
    ['owner_id = = 1', 'PostgreSQL\'s parser rejects it: syntax error at or near "="'],
    ["name = 'unterminated", 'PostgreSQL\'s parser rejects it: unterminated quoted string at or near "\'unterminated\n)"'],
  ])('rejects %j', (text, message) => {
    expect(messageOf(text)).toBe(message);
  });

  it.each([
    // Ways out that keep the parentheses balanced: the parse tree still shows them.
    'true /* unclosed comment',
    '(SELECT true) AS alias',
  ])('rejects %j, caught by the parse itself', (text) => {
    expect(messageOf(text)).toMatch(/^(PostgreSQL's parser rejects it|it is not a single expression)/);
  });

  it('names a FROM clause smuggled with balanced parentheses as not one expression', () => {
    // `SELECT (\n<text>\n)` closes the wrapper after the text, so a balanced
    // smuggle cannot reach the FROM position; the parse rejects what is left.
    expect(messageOf('x FROM t')).toBe('PostgreSQL\'s parser rejects it: syntax error at or near "FROM"');
  });
});

describe('normalizeExpression', () => {
  it('is equal for the same expression however written, different otherwise', () => {
    expect(normalizeExpression('a=1 AND b')).toBe(normalizeExpression('(a = 1)\n  AND b -- why'));
    expect(normalizeExpression('a = 1')).not.toBe(normalizeExpression('a = 2'));
    expect(normalizeExpression('a = = 1')).toBeUndefined();
  });

  it('ignores where an IN list starts and ends (PostgreSQL 18 records both)', () => {
    expect(normalizeExpression("status IN ('a', 'b')")).toBe(normalizeExpression("status IN (\n  'a',\n  'b'\n)"));
    expect(normalizeExpression("status IN ('a', 'b')")).not.toBe(normalizeExpression("status IN ('a', 'c')"));
  });
});

describe('embedExpression', () => {
  it('puts an expression with a comment or a line break on lines of its own, so the comment ends before the parenthesis', () => {
    expect(embedExpression(' a = 1 ')).toBe('(a = 1)');
    expect(embedExpression('a = 1 -- why')).toBe('(\n    a = 1 -- why\n  )');
    expect(embedExpression('a = 1\nOR b\n')).toBe('(\n    a = 1\nOR b\n  )');
  });
});
