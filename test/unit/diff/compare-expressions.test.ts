import { beforeAll, describe, expect, it } from 'vitest';
import { compareExpressions } from '../../../src/rls/compare-expressions.js';
import { loadParser } from '../../../src/policy/expression.js';

beforeAll(async () => {
  await loadParser();
});

describe('compareExpressions', () => {
  it.each([
    ['a = 1', 'a=1'],
    ['a = 1 AND b = 2', '(a = 1)\n  and (b = 2)'],
    ['a = 1 AND b = 2', 'b = 2 AND a = 1'],
    ['a = 1 OR b = 2', 'b = 2 OR a = 1'],
    ['a AND (b AND c)', 'c AND b AND a'],
    ["status in ('open', 'closed')", "STATUS IN ('open',\n            'closed')"],
    ["org_id = (select current_setting('app.t', true))::uuid", "ORG_ID = (SELECT CURRENT_SETTING('app.t', TRUE))::UUID -- a comment"],
    ['true', 'TRUE'],
  ])('%j and %j are the same', (a, b) => {
    expect(compareExpressions(a, b)).toBe('same');
  });

  it.each([
    ['a = 1', 'a = 1 OR b = 2', 'wider'],
    ['a = 1 AND b = 2', 'a = 1', 'wider'],
    ['a = 1', 'true', 'wider'],
    ['false', 'a = 1', 'wider'],
    ['a = 1', 'a = 1 AND b = 2', 'narrower'],
    ['a = 1 OR b = 2', 'a = 1', 'narrower'],
    ['a = 1', 'false', 'narrower'],
    ['true', 'a = 1', 'narrower'],
    ['a = 1 AND (b = 2 AND c = 3)', 'c = 3 AND a = 1', 'wider'],
  ] as const)('%j -> %j is %s', (a, b, expected) => {
    expect(compareExpressions(a, b)).toBe(expected);
  });

  it.each([
    ['a = 1', 'a = 2'],
    ['a = 1', 'a > 0'],
    ['a = 1 AND b = 2', 'a = 1 AND c = 3'],
    ['a = 1 OR b = 2', 'a = 1 OR c = 3'],
    ['"A" = 1', 'a = 1'],
    ["'t'::bool", 'a = 1'],
  ])('%j -> %j cannot be told apart safely: unknown', (a, b) => {
    expect(compareExpressions(a, b)).toBe('unknown');
  });

  it('an expression the parser refuses is unknown, never same', () => {
    expect(compareExpressions('a = ', 'a = ')).toBe('unknown');
  });
});
