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
    } else if (c === ';' && depth === 0) return i + 1;
    // Outside quotes and comments a backslash starts a psql meta-command (such as \gexec): the query before it ends here.
    else if (c === '\\') return i;
    else i++;
  }
  return sql.length;
}

export interface PsqlRun {
  /**
   * Each statement sent, in order, and the error it raised if any. A query
   * ended by `\gexec` is one entry: `gexec` lists what its result ran, and
   * `error` is the first error of the query or of those statements.
   */
  statements: Array<{ sql: string; error?: string; gexec?: string[] }>;
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
      if (sql[at] === '\\') {
        // A meta-command runs to the end of its line; only \gexec is understood here.
        const eol = sql.slice(at).search(/[\n\r]|$/);
        const meta = sql.slice(at, at + eol).trim();
        at += eol;
        if (meta !== '\\gexec') throw new Error(`psql-like: the meta-command ${meta} is not understood`);
        run.statements.push(await gexec(client, statement));
        continue;
      }
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

/** psql's \gexec: the query, then each value of its result (row by row, column by column) as a statement of its own. */
async function gexec(client: pg.Client, query: string): Promise<PsqlRun['statements'][number]> {
  let rows: unknown[][];
  try {
    rows = (await client.query({ text: query, rowMode: 'array' })).rows as unknown[][];
  } catch (error) {
    return { sql: query, error: (error as Error).message, gexec: [] };
  }
  const ran: string[] = [];
  let first: string | undefined;
  for (const value of rows.flat()) {
    if (value === null) continue;
    ran.push(String(value));
    try {
      await client.query(String(value));
    } catch (error) {
      first ??= (error as Error).message;
    }
  }
  return first === undefined ? { sql: query, gexec: ran } : { sql: query, error: first, gexec: ran };
}
