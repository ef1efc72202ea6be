import type { Row } from './make-row.js';

/**
 * What verify's findings may quote. A finding names tables, columns, types,
 * roles and the tenants verify acts as (its header names them too), never the
 * values of rows: the rows verify copies to probe with belong to real tenants
 * (emails, names), and findings go to CI logs and, as SARIF, to code scanning.
 * `--show-values` (text and JSON only, never SARIF: src/cli/commands/verify.ts)
 * quotes them, for debugging a finding on a test database.
 */

/** Whether a statement shown in a finding may print the value of `column`: always with --show-values, else only the tenant column's (a tenant verify acts as). */
export type Reveal = (column: string) => boolean;

export function revealer(show: boolean, tenantColumn: string | undefined): Reveal {
  return show ? () => true : (column) => column === tenantColumn;
}

/** `$n::type`: a value left out of a statement shown in a finding, with its column's type. */
export function placeholder(n: number, type: string | undefined): string {
  return type ? `$${n}::${type}` : `$${n}`;
}

/**
 * A server error as a finding quotes it: `message [SQLSTATE]`. Unless `show`,
 * the values of `row` (the row the probe wrote) are cut out of the message
 * (as whole words: a value that is part of an identifier is left alone), and
 * so are the quoted inputs of data exceptions (class 22: `invalid input
 * syntax for type integer: "…"`), which quote a value of some row (an
 * empty `""` stays: it is the unset tenant setting, VER003's usual cause).
 */
export function errorText(error: { code?: string; message: string }, show: boolean, row?: Row): string {
  let message = error.message;
  if (!show) {
    if (error.code?.startsWith('22')) message = message.replace(/"(?:[^"]|"")+"/g, '"…"');
    const values = [...(row?.values() ?? [])].flatMap((cell) => (cell.kind === 'literal' && cell.text !== null && cell.text.length >= 3 ? [cell.text] : []));
    for (const value of values.sort((a, b) => b.length - a.length)) {
      message = message.replace(new RegExp(`(?<![\\p{L}\\p{N}_])${escapeRegExp(value)}(?![\\p{L}\\p{N}_])`, 'gu'), '…');
    }
  }
  return error.code ? `${message} [${error.code}]` : message;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
