import type pg from 'pg';

/**
 * A script run as plain `psql -f FILE` runs it (no ON_ERROR_STOP): statement by
 * statement, each error printed and skipped. The statements are cut the way
 * psql's own lexer (psqlscan.l) cuts them: at a `;` outside quotes, comments,
 * dollar quotes and parentheses, reading a plain '...' literal with backslash
 * escapes when the server's standard_conforming_strings is off, as psql does
 * (it follows the setting as the server reports it). Unlike splitting
 * with libpg-query, this also cuts a script that does not parse, as psql would.
 */

/** Where the statement that starts at `from` ends (after its `;`, or the end of the text). */
export function nextStatementEnd(sql: string, from: number, standardConformingStrings: boolean): number {
  let depth = 0;
  let i = from;
  const isIdent = (c: string | undefined) => c !== undefined && /[\p{L}\p{N}_$\u0080-\uffff]/u.test(c);
  while (i < sql.length) {
    const c = sql[i];
    if (c === '-' && sql[i + 1] === '-') {
      const nl = sql.slice(i).search(/[\n\r]/);
      i = nl < 0 ? sql.length : i + nl + 1;
    } else if (c === '/' && sql[i + 1] === '*') {
      let nest = 1;
      i += 2;
      while (i < sql.length && nest > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*') {
          nest++;
          i += 2;
        } else if (sql[i] === '*' && sql[i + 1] === '/') {
          nest--;
          i += 2;
        } else i++;
      }
    } else if (c === "'") {
      const prefix = sql[i - 1];
      const escapes = ((prefix === 'E' || prefix === 'e') && !isIdent(sql[i - 2])) || !standardConformingStrings;
      i++;
      while (i < sql.length) {
        if (escapes && sql[i] === '\\') i += 2;
        else if (sql[i] === "'" && sql[i + 1] === "'") i += 2;
        else if (sql[i] === "'") break;
        else i++;
      }
      i++;
    } else if (c === '"') {
      i++;
      while (i < sql.length) {
        if (sql[i] === '"' && sql[i + 1] === '"') i += 2;
        else if (sql[i] === '"') break;
        else i++;
      }
      i++;
    } else if (c === '$' && !isIdent(sql[i - 1])) {
      const tag = /^\$([\p{L}_\u0080-\uffff][\p{L}\p{N}_\u0080-\uffff]*)?\$/u.exec(sql.slice(i));
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        i = close < 0 ? sql.length : close + tag[0].length;
      } else i++;
    } else if (c === '(') {
      depth++;
      i++;
    } else if (c === ')') {
      depth = Math.max(0, depth - 1);
      i++;
    }
    else if (c === ';' && depth === 0) return i + 1;
    else i++;
  }
  return sql.length;
}

export interface PsqlRun {
  /** Each statement sent, in order, and the error it raised if any. */
  statements: Array<{ sql: string; error?: string }>;
}

/** Run `sql` on `client` as `psql -f` would without ON_ERROR_STOP: errors are noted and the script goes on. */
export async function runLikePsql(client: pg.Client, sql: string): Promise<PsqlRun> {
  const run: PsqlRun = { statements: [] };
  const { rows } = await client.query<{ standard_conforming_strings: string }>('SHOW standard_conforming_strings');
  let scs = rows[0].standard_conforming_strings === 'on';
  // The server reports every change of the setting (ParameterStatus), which is what psql follows.
  const connection = (client as unknown as { connection: NodeJS.EventEmitter }).connection;
  const follow = (message: { parameterName: string; parameterValue: string }) => {
    if (message.parameterName === 'standard_conforming_strings') scs = message.parameterValue === 'on';
  };
  connection.on('parameterStatus', follow);
  try {
    let at = 0;
    while (at < sql.length) {
      const end = nextStatementEnd(sql, at, scs);
      const statement = sql.slice(at, end);
      at = end;
      if (/^(\s|--[^\n\r]*[\n\r]?)*;?\s*$/.test(statement)) continue;
      try {
        await client.query(statement);
        run.statements.push({ sql: statement });
      } catch (error) {
        run.statements.push({ sql: statement, error: (error as Error).message });
      }
    }
    // psql ends the session at the end of the file: an open transaction is rolled back.
    await client.query('ROLLBACK').catch(() => undefined);
  } finally {
    connection.off('parameterStatus', follow);
  }
  return run;
}
