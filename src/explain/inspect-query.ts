import { parseSync } from 'libpg-query';

/**
 * What rlsctl explain plans: exactly one SELECT, INSERT, UPDATE, DELETE or
 * MERGE, checked with the real PostgreSQL parser before any of it reaches
 * the database. EXPLAIN without ANALYZE never runs a statement, but nothing
 * else (a SET, a COMMIT, a CREATE, an EXPLAIN ANALYZE, a SELECT INTO) is
 * sent at all.
 */

export const PLANNABLE = ['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt'] as const;
export type PlannableKind = (typeof PLANNABLE)[number];

export type InspectedQuery =
  | { ok: true; kind: PlannableKind; paramCount: number; stmt: Record<string, unknown> }
  | { ok: false; reason: 'syntax'; message: string; /** 0-based character offset into the text */ position?: number }
  | { ok: false; reason: 'not-a-query' | 'statements'; message: string };

const KIND_WORDS: Record<string, string> = {
  VariableSetStmt: 'a SET',
  TransactionStmt: 'a transaction control statement',
  ExplainStmt: 'an EXPLAIN',
  CreateTableAsStmt: 'a CREATE TABLE AS',
  CopyStmt: 'a COPY',
  CallStmt: 'a CALL',
  DoStmt: 'a DO block',
  PrepareStmt: 'a PREPARE',
  ExecuteStmt: 'an EXECUTE',
};

export function describeStatement(kind: string): string {
  return (
    KIND_WORDS[kind] ??
    `a ${kind
      .replace(/Stmt$/, '')
      .replace(/([a-z])([A-Z])/g, '$1 $2')
      .toUpperCase()} statement`
  );
}

export function inspectQuery(text: string): InspectedQuery {
  if (text.includes('\0')) return { ok: false, reason: 'syntax', message: 'the query contains a NUL byte' };
  let parsed: { stmts?: Array<{ stmt: Record<string, unknown> }> };
  try {
    parsed = parseSync(text) as typeof parsed;
  } catch (error) {
    const details = (error as { sqlDetails?: { cursorPosition?: number } }).sqlDetails;
    return { ok: false, reason: 'syntax', message: (error as Error).message, position: details?.cursorPosition };
  }
  const stmts = parsed.stmts ?? [];
  if (stmts.length !== 1) {
    return {
      ok: false,
      reason: 'statements',
      message: stmts.length === 0 ? 'there is no statement in it' : `it holds ${stmts.length} statements; a query is exactly one`,
    };
  }
  const [kind] = Object.keys(stmts[0].stmt);
  const stmt = stmts[0].stmt[kind] as Record<string, unknown>;
  if (!(PLANNABLE as readonly string[]).includes(kind)) {
    return {
      ok: false,
      reason: 'not-a-query',
      message: `${describeStatement(kind)} is not a query: rlsctl explain plans SELECT, INSERT, UPDATE, DELETE and MERGE`,
    };
  }
  if (kind === 'SelectStmt' && stmt.intoClause) {
    return { ok: false, reason: 'not-a-query', message: 'SELECT INTO creates a table: rlsctl explain plans queries only' };
  }
  return { ok: true, kind: kind as PlannableKind, paramCount: maxParam(stmt), stmt };
}

/** The highest `$n` in the tree: EXECUTE and the generic plan need that many parameters. */
export function maxParam(node: unknown): number {
  let max = 0;
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const v of value) visit(v);
    } else if (value && typeof value === 'object') {
      for (const [key, v] of Object.entries(value)) {
        if (key === 'ParamRef') max = Math.max(max, Number((v as { number?: number }).number ?? 0));
        visit(v);
      }
    }
  };
  visit(node);
  return max;
}
