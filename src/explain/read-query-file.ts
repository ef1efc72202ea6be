import path from 'node:path';
import { parseSync, scanSync } from 'libpg-query';
import { UsageError } from '../errors.js';
import { readInputFile } from '../input/read-input-file.js';
import { loadParser } from '../policy/expression.js';
import { inspectQuery } from './inspect-query.js';
import { CsvSyntaxError, readCsv } from './read-csv.js';
import { translateSqlcParams } from './sqlc-params.js';

/**
 * Query files (cli.md, "Roles, tenant and queries for explain and verify"):
 *
 * - SQL. A line `-- name: NAME` starts a named query that runs to the next
 *   such line (the sqlc convention; sqlc's `:one` / `:many` after the name is
 *   allowed and ignored). Statements before the first such line, and every
 *   statement of a file without one, are `;`-separated queries named
 *   `FILE:LINE`.
 * - A pg_stat_statements export: `.csv` with a header row that has a `query`
 *   column, or `.json` / `.jsonl` / `.ndjson` (an array of objects, or one
 *   object per line) with a `query` key. Statements that are not queries
 *   (BEGIN, SET, ...) are skipped there, since production runs plenty of them.
 *
 * Statements are split with the real PostgreSQL parser (its lexer when the
 * file does not parse), so a semicolon in a string or a dollar-quoted body
 * splits nothing, and a syntax error in one query leaves the others plannable.
 */

export interface QuerySource {
  name: string;
  file: string;
  /** 1-based line and column of the query's first token in the file. */
  line: number;
  column: number;
  /** Exactly one statement, without the `;` that ends it. */
  text: string;
}

/** A statement that cannot be a query: reported as EXP004 at file:line:column. */
export interface QueryProblem {
  name: string;
  file: string;
  line: number;
  column: number;
  message: string;
}

export interface QueryFileContents {
  queries: QuerySource[];
  problems: QueryProblem[];
  /** pg_stat_statements rows skipped because they are not queries (BEGIN, SET, ...). */
  skipped: number;
}

export type QueryFileFormat = 'sql' | 'csv' | 'json';

export function queryFileFormat(file: string): QueryFileFormat {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.json' || ext === '.jsonl' || ext === '.ndjson') return 'json';
  return 'sql';
}

/** Read one query file. Throws UsageError when it cannot be read or holds no query at all (exit 2). */
export async function readQueryFile(file: string): Promise<QueryFileContents> {
  const text = await readInputFile(file, { what: 'the query file', missingHint: 'name SQL query files, or pg_stat_statements exports as .csv or .json' });
  await loadParser();
  const format = queryFileFormat(file);
  const contents = format === 'csv' ? readStatStatementsCsv(file, text) : format === 'json' ? readStatStatementsJson(file, text) : readSqlQueries(file, text);
  if (contents.queries.length + contents.problems.length === 0) {
    throw new UsageError(
      `the query file ${file} holds no query${contents.skipped > 0 ? ` (${contents.skipped} statement${contents.skipped === 1 ? '' : 's'} that are not queries skipped)` : ''}`,
      {
        hint:
          format === 'sql'
            ? 'write SELECT, INSERT, UPDATE, DELETE or MERGE statements, separated by `;` or each after a `-- name: NAME` line'
            : "export pg_stat_statements with its query column, e.g. \\copy (SELECT queryid, query FROM pg_stat_statements) TO 'queries.csv' WITH (FORMAT csv, HEADER)",
      },
    );
  }
  return contents;
}

/** Read several files; the queries keep the order of the files and of the statements in them. */
export async function readQueryFiles(files: string[]): Promise<QueryFileContents> {
  const all: QueryFileContents = { queries: [], problems: [], skipped: 0 };
  for (const file of files) {
    const one = await readQueryFile(file);
    all.queries.push(...one.queries);
    all.problems.push(...one.problems);
    all.skipped += one.skipped;
  }
  return all;
}

// ---------------------------------------------------------------------------
// SQL files

const NAME_LINE = /^[ \t]*--[ \t]*name:[ \t]*(\S*)/;

/** Positions in a text: libpg-query reports statement locations in UTF-8 bytes and error cursors in characters. */
class TextPositions {
  private readonly lineStarts: number[] = [0];
  private readonly byteToChar?: Int32Array;
  constructor(readonly text: string) {
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.lineStarts.push(i + 1);
    if (Buffer.byteLength(text, 'utf8') !== text.length) {
      const map = new Int32Array(Buffer.byteLength(text, 'utf8') + 1);
      let byte = 0;
      for (let i = 0; i < text.length; i++) {
        const code = text.codePointAt(i)!;
        const width = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
        for (let k = 0; k < width; k++) map[byte + k] = i;
        byte += width;
        if (code >= 0x10000) i++; // a surrogate pair is one code point
      }
      map[byte] = text.length;
      this.byteToChar = map;
    }
  }
  charOfByte(byte: number): number {
    return this.byteToChar ? this.byteToChar[Math.min(byte, this.byteToChar.length - 1)] : byte;
  }
  /** 1-based line and column of a character offset. */
  lineColumn(offset: number): { line: number; column: number } {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - this.lineStarts[lo] + 1 };
  }
}

interface Piece {
  /** Character offset of the first token in the text. */
  start: number;
  text?: string;
  error?: { message: string; offset: number };
}

const COMMENT_TOKENS = new Set(['SQL_COMMENT', 'C_COMMENT']);

/** Offset of the first token that is not a comment, in `text` from `from`; undefined when there is none. */
function firstToken(text: string, from: number): number | undefined {
  const rest = text.slice(from);
  // Whitespace and comments only: common between statements, skip the lexer for it.
  const m = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*(?:[^*]|\*(?!\/))*\*\/)*/.exec(rest);
  const skipped = m ? m[0].length : 0;
  if (skipped < rest.length && !rest.startsWith('/*', skipped)) return from + skipped;
  try {
    const tokens = scanSync(rest).tokens.filter((t) => !COMMENT_TOKENS.has(t.tokenName));
    if (tokens.length === 0) return undefined;
    return from + new TextPositions(rest).charOfByte(tokens[0].start);
  } catch {
    return skipped < rest.length ? from + skipped : undefined;
  }
}

/** Split a text into statements; a piece that does not parse carries its error instead. */
export function splitQueries(text: string): Piece[] {
  const positions = new TextPositions(text);
  try {
    const parsed = parseSync(text) as { stmts?: Array<{ stmt_location?: number; stmt_len?: number }> };
    const total = Buffer.byteLength(text, 'utf8');
    const pieces: Piece[] = [];
    for (const s of parsed.stmts ?? []) {
      const from = positions.charOfByte(s.stmt_location ?? 0);
      const to = positions.charOfByte(s.stmt_len ? (s.stmt_location ?? 0) + s.stmt_len : total);
      const start = firstToken(text, from);
      if (start === undefined || start >= to) continue;
      pieces.push({ start, text: text.slice(start, to).replace(/\s+$/, '') });
    }
    return pieces;
  } catch {
    return splitByLexer(text, positions);
  }
}

/** The file does not parse: split at the lexer's top-level semicolons and parse piece by piece. */
function splitByLexer(text: string, positions: TextPositions): Piece[] {
  let bounds: number[];
  try {
    bounds = scanSync(text)
      .tokens.filter((t) => t.text === ';' && t.tokenName === 'ASCII_59')
      .map((t) => positions.charOfByte(t.start));
  } catch {
    // The lexer itself fails (an unterminated quote or comment): split the text before that point,
    // and the rest from the last semicolon on is one broken piece.
    const at = inspectSyntax(text);
    bounds = [];
    if (!at.ok && at.position !== undefined) {
      try {
        const head = text.slice(0, at.position);
        bounds = scanSync(head)
          .tokens.filter((t) => t.text === ';' && t.tokenName === 'ASCII_59')
          .map((t) => new TextPositions(head).charOfByte(t.start));
      } catch {
        bounds = [];
      }
    }
  }
  const pieces: Piece[] = [];
  let from = 0;
  for (const end of [...bounds, text.length]) {
    const start = firstToken(text.slice(0, end), from);
    if (start !== undefined) {
      const piece = text.slice(start, end).replace(/\s+$/, '');
      const checked = inspectSyntax(piece);
      pieces.push(checked.ok ? { start, text: piece } : { start, text: piece, error: { message: checked.message, offset: start + (checked.position ?? 0) } });
    }
    from = end + 1;
  }
  return pieces;
}

function inspectSyntax(text: string): { ok: true } | { ok: false; message: string; position?: number } {
  try {
    parseSync(text);
    return { ok: true };
  } catch (error) {
    const details = (error as { sqlDetails?: { cursorPosition?: number } }).sqlDetails;
    return { ok: false, message: (error as Error).message, position: details?.cursorPosition };
  }
}

export function readSqlQueries(file: string, text: string): QueryFileContents {
  const positions = new TextPositions(text);
  const lines = text.split('\n');
  const contents: QueryFileContents = { queries: [], problems: [], skipped: 0 };
  // Blocks: [name | undefined, first character offset, end offset, line of the name]
  const blocks: Array<{ name?: string; from: number; to: number; nameLine?: number }> = [];
  let offset = 0;
  let current: { name?: string; from: number; nameLine?: number } = { from: 0 };
  lines.forEach((line, index) => {
    const m = NAME_LINE.exec(line);
    if (m) {
      blocks.push({ ...current, to: offset });
      if (!m[1] || m[1].startsWith(':')) {
        contents.problems.push({ name: `${file}:${index + 1}`, file, line: index + 1, column: 1, message: '`-- name:` without a name: write `-- name: NAME`' });
        current = { from: offset + line.length + 1 };
      } else {
        current = { name: m[1], from: offset + line.length + 1, nameLine: index + 1 };
      }
    }
    offset += line.length + 1;
  });
  blocks.push({ ...current, to: text.length });

  for (const block of blocks) {
    // sqlc's named parameters become $n before the statements are split and parsed (`@limit` does not parse as is).
    const body = translateSqlcParams(text.slice(block.from, Math.max(block.from, block.to)));
    const pieces = splitQueries(body);
    if (block.name !== undefined && pieces.length === 0) {
      contents.problems.push({ name: block.name, file, line: block.nameLine!, column: 1, message: `the named query ${block.name} holds no statement` });
      continue;
    }
    pieces.forEach((piece, k) => {
      const at = positions.lineColumn(block.from + piece.start);
      const name = block.name !== undefined ? (k === 0 ? block.name : `${block.name}#${k + 1}`) : `${file}:${at.line}`;
      if (piece.error) {
        const where = positions.lineColumn(block.from + piece.error.offset);
        contents.problems.push({ name, file, line: where.line, column: where.column, message: `syntax error: ${piece.error.message}` });
      } else if (block.name !== undefined && k > 0) {
        contents.problems.push({
          name,
          file,
          line: at.line,
          column: at.column,
          message: `the named query ${block.name} holds more than one statement; each \`-- name:\` block is one query`,
        });
      } else {
        contents.queries.push({ name, file, line: at.line, column: at.column, text: piece.text! });
      }
    });
  }
  return contents;
}

// ---------------------------------------------------------------------------
// pg_stat_statements exports

interface ExportRow {
  /** 1-based line of the file where the row starts. */
  line: number;
  query: string;
  queryid?: string;
}

function fromExportRows(file: string, rows: ExportRow[]): QueryFileContents {
  const contents: QueryFileContents = { queries: [], problems: [], skipped: 0 };
  const seen = new Set<string>();
  for (const row of rows) {
    const text = row.query.trim().replace(/;\s*$/, '');
    if (text === '' || seen.has(text)) continue;
    seen.add(text);
    // queryid names a statement across exports of the same server; FILE:LINE does not survive a new export.
    const name = row.queryid ? `queryid:${row.queryid}` : `${file}:${row.line}`;
    const inspected = inspectQuery(text);
    if (inspected.ok) {
      contents.queries.push({ name, file, line: row.line, column: 1, text });
    } else if (inspected.reason === 'syntax') {
      // pg_stat_statements cuts texts longer than track_activity_query_size: such a row does not parse.
      contents.problems.push({ name, file, line: row.line, column: 1, message: `syntax error: ${inspected.message}` });
    } else {
      contents.skipped++;
    }
  }
  return contents;
}

const NO_QUERY_COLUMN_HINT =
  "export pg_stat_statements with its query column: \\copy (SELECT queryid, query FROM pg_stat_statements) TO 'queries.csv' WITH (FORMAT csv, HEADER)";

export function readStatStatementsCsv(file: string, text: string): QueryFileContents {
  let records;
  try {
    records = readCsv(text);
  } catch (error) {
    if (error instanceof CsvSyntaxError) throw new UsageError(`${file}:${error.line}: not a valid CSV file: ${error.message}`, { hint: NO_QUERY_COLUMN_HINT });
    throw error;
  }
  if (records.length === 0) return { queries: [], problems: [], skipped: 0 };
  const header = records[0].fields.map((f) => f.trim().toLowerCase());
  const queryAt = header.indexOf('query');
  if (queryAt < 0) throw new UsageError(`${file} has no \`query\` column in its header row (${header.join(', ')})`, { hint: NO_QUERY_COLUMN_HINT });
  const idAt = header.indexOf('queryid');
  return fromExportRows(
    file,
    records.slice(1).map((r) => ({ line: r.line, query: r.fields[queryAt] ?? '', queryid: idAt >= 0 ? r.fields[idAt] || undefined : undefined })),
  );
}

/** Offsets of the top-level elements of a JSON array, to give each row its line. */
function arrayElementOffsets(text: string): number[] {
  const offsets: number[] = [];
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') {
      inString = true;
      if (depth === 1) offsets.push(i);
    } else if (ch === '{' || ch === '[') {
      if (depth === 1) offsets.push(i);
      depth++;
    } else if (ch === '}' || ch === ']') depth--;
    else if (depth === 1 && /[-0-9tfn]/.test(ch) && !/[-0-9a-z.+eE]/.test(text[i - 1] ?? '')) offsets.push(i);
  }
  return offsets;
}

export function readStatStatementsJson(file: string, text: string): QueryFileContents {
  const positions = new TextPositions(text);
  const rowOf = (value: unknown, line: number): ExportRow => {
    if (!value || typeof value !== 'object' || Array.isArray(value) || typeof (value as { query?: unknown }).query !== 'string') {
      throw new UsageError(`${file}:${line}: a row without a string \`query\` key`, {
        hint: 'export rows of pg_stat_statements as JSON objects, e.g. SELECT json_agg(s) FROM pg_stat_statements s',
      });
    }
    const row = value as { query: string; queryid?: unknown };
    return { line, query: row.query, queryid: row.queryid === undefined || row.queryid === null ? undefined : String(row.queryid) };
  };
  const trimmed = text.replace(/^\uFEFF/, '').trim();
  let rows: ExportRow[];
  if (trimmed.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (error) {
      throw new UsageError(`${file} is not valid JSON: ${(error as Error).message}`, {
        hint: 'export pg_stat_statements as a JSON array of rows, or one JSON object per line',
      });
    }
    const offsets = arrayElementOffsets(text.replace(/^\uFEFF/, ' '));
    rows = (parsed as unknown[]).map((v, i) => rowOf(v, positions.lineColumn(offsets[i] ?? 0).line));
  } else {
    // One JSON object per line (\copy (SELECT row_to_json(s) FROM pg_stat_statements s) TO 'file').
    rows = [];
    text.split('\n').forEach((line, i) => {
      if (line.trim() === '') return;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (error) {
        throw new UsageError(`${file}:${i + 1}: not valid JSON: ${(error as Error).message}`, {
          hint: 'export pg_stat_statements as a JSON array of rows, or one JSON object per line',
        });
      }
      rows.push(rowOf(value, i + 1));
    });
  }
  return fromExportRows(file, rows);
}
