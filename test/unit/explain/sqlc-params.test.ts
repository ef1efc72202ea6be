import { beforeAll, describe, expect, it } from 'vitest';
import { loadParser } from '../../../src/policy/expression.js';
import { readSqlQueries } from '../../../src/explain/read-query-file.js';
import { inspectQuery } from '../../../src/explain/inspect-query.js';

beforeAll(async () => {
  await loadParser();
});

const texts = (sql: string) => readSqlQueries('q.sql', sql).queries.map((q) => q.text.replace(/(\$\d+) +/g, '$1 ').replace(/(\$\d+) \)/g, '$1)'));

describe('sqlc parameters in SQL query files', () => {
  it('translates @name, sqlc.arg, sqlc.narg and sqlc.slice to $n, one number per name in order of first appearance', () => {
    expect(
      texts(
        "-- name: Find :many\nSELECT * FROM app.items WHERE tenant_id = @tenant_id AND name = sqlc.arg(name) AND note = sqlc.narg('note') AND id IN (sqlc.slice(ids)) AND tenant_id = sqlc.arg('tenant_id') AND limit_ = @limit;\n",
      ),
    ).toEqual(['SELECT * FROM app.items WHERE tenant_id = $1 AND name = $2 AND note = $3 AND id IN ($4) AND tenant_id = $1 AND limit_ = $5']);
  });

  it('numbers after the positional parameters the text already holds, and leaves strings, comments, quoted names and operators alone', () => {
    const [text] = texts(
      `-- name: Keep :one\nSELECT '@x sqlc.arg(y)' AS s, "@z" FROM app.items /* @c sqlc.arg(c) */ WHERE doc @> $1 AND n = @n AND abs_ = @ -5 -- @tail\n`,
    );
    expect(text).toBe(`SELECT '@x sqlc.arg(y)' AS s, "@z" FROM app.items /* @c sqlc.arg(c) */ WHERE doc @> $1 AND n = $2 AND abs_ = @ -5 -- @tail`);
  });

  it('keeps the line and column of every statement after a translated name', () => {
    const { queries, problems } = readSqlQueries('q.sql', "SELECT * FROM app.items WHERE id = sqlc.arg('a long name');\nSELECT 2; SELECT nope(;\n");
    expect(queries.map((q) => [q.line, q.column])).toEqual([
      [1, 1],
      [2, 1],
    ]);
    expect(problems.map((p) => [p.line, p.column])).toEqual([[2, 23]]);
  });

  it('cannot smuggle SQL through a name: whatever the name holds, only $n is left of it', () => {
    const hostile = [
      "-- name: A :one\nSELECT * FROM app.items WHERE id = sqlc.arg('x''); DROP TABLE app.items; --');",
      '-- name: B :one\nSELECT * FROM app.items WHERE id = @"x; DROP TABLE app.items; --";',
      "-- name: C :one\nSELECT * FROM app.items WHERE id = sqlc.narg(E'\\'); DROP TABLE app.items; --');",
      '-- name: D :one\nSELECT * FROM app.items WHERE id IN (sqlc.slice("ids) OR true OR (1"));',
    ];
    for (const sql of hostile) {
      const [text] = texts(sql);
      expect(text).not.toMatch(/DROP|OR true/);
      const inspected = inspectQuery(text);
      expect(inspected).toMatchObject({ ok: true, kind: 'SelectStmt', paramCount: 1 });
    }
    // A second statement after a name is a second statement of the block (a problem), never part of a query.
    const { queries, problems } = readSqlQueries('q.sql', '-- name: E :one\nSELECT * FROM app.items WHERE id = sqlc.arg(x); DROP TABLE app.items;\n');
    expect(queries.map((q) => q.text)).toEqual(['SELECT * FROM app.items WHERE id = $1']);
    expect(problems.map((p) => p.message)).toEqual([expect.stringMatching(/holds more than one statement/)]);
  });
});
