import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseSync, scanSync } from 'libpg-query';
import { beforeAll, describe, expect, it } from 'vitest';
import { identBytes, qualify, quoteIdent, quoteLiteral } from '../../../src/compile/quote.js';
import { quoteRole } from '../../../src/compile/render-sql.js';
import { loadParser } from '../../../src/policy/expression.js';

/**
 * Quoting is checked against PostgreSQL itself: its scanner says which words
 * are keywords of which category, and its parser reads the quoted text back.
 */

beforeAll(async () => {
  await loadParser();
});

/**
 * Every keyword of the PostgreSQL release libpg-query is built from, read
 * from the parser's own keyword table (ScanKeywords, a NUL-separated sorted
 * list in the WebAssembly binary from `abort` to `zone`).
 */
function postgresKeywords(): string[] {
  const wasm = path.join(path.dirname(createRequire(import.meta.url).resolve('libpg-query')), 'libpg-query.wasm');
  const bytes = readFileSync(wasm).toString('latin1');
  const start = bytes.indexOf('abort\0absent\0');
  const end = bytes.indexOf('\0zone\0', start);
  return bytes.slice(start, end + '\0zone'.length).split('\0');
}

/** The category PostgreSQL's scanner gives a word: 0 not a keyword, 1 unreserved, 2 column name, 3 type/function name, 4 reserved. */
function keywordKind(word: string): number {
  return scanSync(word).tokens[0].keywordKind;
}

/** What PostgreSQL's parser reads `schema.name` as, in a FROM clause. */
function readBack(sqlName: string): { schemaname?: string; relname: string } {
  const tree = parseSync(`SELECT 1 FROM ${sqlName}`) as unknown as {
    stmts: Array<{ stmt: { SelectStmt: { fromClause: Array<{ RangeVar: { schemaname?: string; relname: string } }> } } }>;
  };
  const { schemaname, relname } = tree.stmts[0].stmt.SelectStmt.fromClause[0].RangeVar;
  return { schemaname, relname };
}

describe('quoteIdent', () => {
  it.each([
    ['tenant_id', 'tenant_id'],
    ['_private', '_private'],
    ['t2', 't2'],
    ['Tenant', '"Tenant"'],
    ['tenant id', '"tenant id"'],
    ['2fa', '"2fa"'],
    ['a$b', '"a$b"'],
    ['é', '"é"'],
    ['say "hi"', '"say ""hi"""'],
    ['"', '""""'],
    ['back\\slash', '"back\\slash"'],
    ['select', '"select"'],
    ['user', '"user"'],
    ['order', '"order"'],
    ['current_user', '"current_user"'],
    ['int', '"int"'],
    ['left', '"left"'],
    ['name', 'name'],
    ['type', 'type'],
    ['data', 'data'],
  ])('%j -> %s', (name, quoted) => {
    expect(quoteIdent(name)).toBe(quoted);
  });

  it('quotes exactly the keywords PostgreSQL does not take as a bare name (every category but unreserved)', () => {
    const keywords = postgresKeywords();
    expect(keywords.length).toBeGreaterThan(400);
    expect(keywords).toContain('select');
    const wrong = keywords.filter((word) => {
      const kind = keywordKind(word);
      expect(kind, word).toBeGreaterThan(0);
      return (quoteIdent(word) !== word) !== kind >= 2;
    });
    expect(wrong).toEqual([]);
  });

  it('reads back as the very same name, for every keyword and for awkward names', () => {
    const names = [...postgresKeywords(), 'Tenant', 'tenant id', 'say "hi"', '"', 'a.b', 'x;y', "it's", 'back\\slash', 'é', '😀', ' lead', 'trail '];
    for (const name of names) {
      expect(readBack(qualify(name, name)), name).toEqual({ schemaname: name, relname: name });
    }
  });

  it('counts bytes as PostgreSQL does for its 63-byte limit', () => {
    expect(identBytes('a'.repeat(63))).toBe(63);
    expect(identBytes('é')).toBe(2);
    expect(identBytes('😀')).toBe(4);
  });
});

describe('quoteLiteral', () => {
  it.each([
    ['app.tenant_id', "'app.tenant_id'"],
    ['', "''"],
    ["it's", "'it''s'"],
    ["''", "''''''"],
    ['back\\slash', "E'back\\\\slash'"],
    ["\\'", "E'\\\\'''"],
    ['line\nbreak', "'line\nbreak'"],
  ])('%j -> %s', (value, literal) => {
    expect(quoteLiteral(value)).toBe(literal);
  });

  it.each(['plain', "it's", 'back\\slash', "\\'; DROP TABLE x; --", 'é 😀', 'tab\tand\nnewline', '%1$s %%'])('reads back as %j', (value) => {
    const tree = parseSync(`SELECT ${quoteLiteral(value)}`) as unknown as {
      stmts: Array<{ stmt: { SelectStmt: { targetList: Array<{ ResTarget: { val: { A_Const: { sval: { sval?: string } } } } }> } } }>;
    };
    expect(tree.stmts).toHaveLength(1);
    expect(tree.stmts[0].stmt.SelectStmt.targetList[0].ResTarget.val.A_Const.sval.sval ?? '').toBe(value);
  });
});

describe('quoteRole', () => {
  it('writes the PUBLIC pseudo-role as the keyword and every other name as an identifier', () => {
    expect(quoteRole('public')).toBe('PUBLIC');
    expect(quoteRole('Public')).toBe('"Public"');
    expect(quoteRole('app_user')).toBe('app_user');
    expect(quoteRole('current_user')).toBe('"current_user"');
  });
});
