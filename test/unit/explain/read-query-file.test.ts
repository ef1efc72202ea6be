import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/errors.js';
import { loadParser } from '../../../src/policy/expression.js';
import { readCsv, CsvSyntaxError } from '../../../src/explain/read-csv.js';
import { readQueryFile, readSqlQueries, readStatStatementsCsv, readStatStatementsJson } from '../../../src/explain/read-query-file.js';
import { ROOT } from '../../helpers/cli.js';

const fixture = (name: string) => path.join(ROOT, 'fixtures/explain', name);

beforeAll(async () => {
  await loadParser();
});

describe('readCsv (RFC 4180)', () => {
  it('reads quoted fields with commas, doubled quotes and line breaks, CRLF records and a byte-order mark', () => {
    const records = readCsv('\uFEFFa,b\r\n"x, y","say ""hi""\nthere"\r\nplain,\n');
    expect(records).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['x, y', 'say "hi"\nthere'] },
      { line: 4, fields: ['plain', ''] },
    ]);
  });

  it('refuses an unclosed quote and a stray quote, with the line', () => {
    expect(() => readCsv('a\n"open\n')).toThrow(CsvSyntaxError);
    try {
      readCsv('a,b\nx"y,1\n');
    } catch (error) {
      expect((error as CsvSyntaxError).line).toBe(2);
    }
    expect(() => readCsv('a,b\nx"y,1\n')).toThrow(/double quote inside an unquoted field/);
  });
});

describe('SQL query files', () => {
  it('names queries after `-- name:` lines (sqlc annotations ignored) and places them at their first token', () => {
    const { queries, problems } = readSqlQueries('q.sql', '-- name: GetA :one\n-- a comment\nSELECT 1;\n\n-- name: ListB :many\n  SELECT 2\n  FROM t;\n');
    expect(problems).toEqual([]);
    expect(queries).toEqual([
      { name: 'GetA', file: 'q.sql', line: 3, column: 1, text: 'SELECT 1' },
      { name: 'ListB', file: 'q.sql', line: 6, column: 3, text: 'SELECT 2\n  FROM t' },
    ]);
  });

  it('splits a file without names at semicolons the lexer sees, and names each FILE:LINE', async () => {
    const { queries, problems } = await readQueryFile(fixture('unnamed.sql'));
    const file = fixture('unnamed.sql');
    expect(problems).toEqual([]);
    expect(queries.map((q) => [q.name, q.line, q.column])).toEqual([
      [`${file}:2`, 2, 1],
      [`${file}:4`, 4, 1],
      [`${file}:5`, 5, 34],
    ]);
    expect(queries[1].text).toBe('SELECT $$ a dollar-quoted ; body $$ AS body');
    expect(queries[2].text).toBe("SELECT 'é' AS accent,\n       2 AS two");
  });

  it('reports a syntax error as a problem at its file:line:column and keeps the other queries', async () => {
    const file = fixture('syntax-error.sql');
    const { queries, problems } = await readQueryFile(file);
    expect(queries.map((q) => q.name)).toEqual(['ok_before', 'ok_after']);
    expect(queries[1].text).toBe("SELECT 'a;b' AS semicolon_in_a_string");
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ name: 'broken', file, line: 7, column: 7 });
    expect(problems[0].message).toMatch(/syntax error at or near "id"/);
  });

  it('places a syntax error after non-ASCII text at the right column', () => {
    const { problems } = readSqlQueries('q.sql', "SELECT 'ééé';\nSELECT 'ü', FROM x;\n");
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ line: 2, column: 13 });
  });

  it('an unterminated string is one problem, not a crash', () => {
    const { queries, problems } = readSqlQueries('q.sql', "SELECT 1;\nSELECT 'open\n");
    expect(queries.map((q) => q.text)).toEqual(['SELECT 1']);
    expect(problems[0]).toMatchObject({ line: 2 });
    expect(problems[0].message).toMatch(/unterminated quoted string/);
  });

  it('a named block with two statements or none is a problem; a nameless `-- name:` too', () => {
    const { queries, problems } = readSqlQueries('q.sql', '-- name: Two\nSELECT 1;\nSELECT 2;\n-- name: None\n-- nothing here\n-- name:\nSELECT 3;\n');
    expect(queries.map((q) => q.name)).toEqual(['Two', 'q.sql:7']);
    expect(problems.find((p) => p.name === 'q.sql:6')?.message).toBe('`-- name:` without a name: write `-- name: NAME`');
    expect(problems.find((p) => p.name === 'Two#2')?.message).toMatch(/holds more than one statement/);
    expect(problems.find((p) => p.name === 'None')?.message).toBe('the named query None holds no statement');
    expect(problems.map((p) => p.name).sort()).toEqual(['None', 'Two#2', 'q.sql:6']);
    expect(problems.find((p) => p.name === 'Two#2')).toMatchObject({ line: 3 });
    expect(problems.find((p) => p.name === 'None')).toMatchObject({ line: 4 });
  });

  it('a file with no query at all is an input error (exit 2)', async () => {
    const error = await readQueryFile(fixture('empty.sql')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).exitCode).toBe(2);
    expect((error as UsageError).message).toMatch(/holds no query/);
  });

  it('a missing file is an input error (exit 2)', async () => {
    const error = await readQueryFile(fixture('no-such-file.sql')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).message).toMatch(/no such file/);
  });
});

describe('pg_stat_statements exports', () => {
  it('reads the query column of a CSV export, names rows by queryid, skips statements that are not queries', async () => {
    const { queries, problems, skipped } = await readQueryFile(fixture('pg_stat_statements.csv'));
    expect(problems).toEqual([]);
    expect(skipped).toBe(2);
    expect(queries.map((q) => [q.name, q.line])).toEqual([
      ['queryid:-1234567890123', 2],
      ['queryid:43', 4],
      ['queryid:45', 8],
    ]);
    expect(queries[1].text).toBe('SELECT name AS "Item name"\n  FROM app.items\n WHERE name = $1');
  });

  it('reads a JSON array export with the line of each row; a cut-off query text is a problem', async () => {
    const file = fixture('pg_stat_statements.json');
    const { queries, problems, skipped } = await readQueryFile(file);
    expect(skipped).toBe(1);
    expect(queries.map((q) => [q.name, q.line])).toEqual([
      ['queryid:-1234567890123', 2],
      ['queryid:43', 4],
    ]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ name: 'queryid:46', line: 9 });
  });

  it('reads one JSON object per line', async () => {
    const { queries } = await readQueryFile(fixture('pg_stat_statements.ndjson'));
    expect(queries.map((q) => [q.name, q.line, q.text])).toEqual([
      ['queryid:7', 1, 'SELECT id FROM app.items WHERE id = $1'],
      ['queryid:8', 3, 'UPDATE app.items SET name = $2 WHERE id = $1'],
    ]);
  });

  it('names rows FILE:LINE without a queryid column, and drops repeated texts', () => {
    const { queries } = readStatStatementsCsv('x.csv', 'query\nSELECT 1\n"SELECT 1"\nSELECT 2\n');
    expect(queries.map((q) => q.name)).toEqual(['x.csv:2', 'x.csv:4']);
  });

  it('refuses a CSV without a query column and JSON rows without a query key (exit 2)', () => {
    expect(() => readStatStatementsCsv('x.csv', 'queryid,calls\n1,2\n')).toThrow(/no `query` column/);
    expect(() => readStatStatementsJson('x.json', '[{"sql": "SELECT 1"}]')).toThrow(UsageError);
    expect(() => readStatStatementsJson('x.json', '[{"query": "SELECT 1"')).toThrow(/not valid JSON/);
  });
});
