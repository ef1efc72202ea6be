import { commentText } from '../compile/render-sql.js';
import type { Statement } from '../compile/statement.js';
import { UsageError } from '../errors.js';

/**
 * What every migration writer shares: the plan split into its two phases,
 * the version stamps, comments that cannot break out of their line, and the
 * SQL text of a phase. Each tool's file (sql.ts, dbmate.ts, …) only lays the
 * result out the way its tool reads it; registry.ts lists them.
 */

export interface MigrationInput {
  /** The `--name` slug (see checkMigrationName). */
  name: string;
  /** When the migration is made: file names are stamped with it (UTC). */
  now: Date;
  /** The statements of the transaction phase, in order. */
  transaction: Statement[];
  /** The statements that must run outside any transaction (CREATE INDEX CONCURRENTLY), in order. */
  concurrent: Statement[];
  /** Reads a file that already exists in the migration folder (path relative to it), or undefined. */
  readExisting(relativePath: string): string | undefined;
}

export interface MigrationFile {
  /** Relative to the migration folder, `/`-separated. */
  path: string;
  content: string;
  /** True for a file the tool keeps up to date (drizzle's journal): it may exist and is replaced. Any other file is never overwritten. */
  replaces?: boolean;
}

export interface MigrationTool {
  name: string;
  /** The folder used when `--dir` is not given: the tool's own default. */
  defaultDir: string;
  render(input: MigrationInput): MigrationFile[];
  /** What to do beyond the tool's usual command when the plan has a concurrent phase (printed by the CLI). */
  concurrentNote?: string;
}

/** `--name`: a slug that is safe in a file name on every system. */
export function checkMigrationName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$/.test(name)) {
    throw new UsageError(`--name ${JSON.stringify(name)} is not a safe migration name`, {
      hint: 'use 1 to 80 letters, digits, `_` or `-`, starting with a letter or digit (no path separators, dots, spaces or control characters)',
    });
  }
  return name;
}

/** `20261201194100`: UTC, to the second, plus `offset` seconds-as-digits (so the phases sort in order). */
export function stamp(now: Date, offset = 0): string {
  const base = BigInt(now.toISOString().replace(/\D/g, '').slice(0, 14));
  return String(base + BigInt(offset));
}

/** `-- line` comments, one per line of text. */
export function sqlComment(...lines: string[]): string {
  return lines.map((l) => `-- ${commentText(l)}`.trimEnd()).join('\n');
}

export const GENERATED = 'Written by `rlsctl plan --migration`: the change that brings the database to the policy file.';
export const OUTSIDE =
  'Runs OUTSIDE any transaction, one statement at a time: CREATE INDEX CONCURRENTLY cannot run inside a transaction block. Run it after the transactional migration.';

/** apply's lock_timeout (src/apply/apply-plan.ts): the migration never queues behind a long transaction with ACCESS EXCLUSIVE pending. */
export const LOCK_TIMEOUT = "SET LOCAL lock_timeout = '5s';";

/** The statements of a phase as SQL, each under its one-line summary. */
export function sqlStatements(statements: Statement[], separator = '\n\n'): string {
  return statements.map((s) => `${sqlComment(...annotate(s))}\n${terminated(s.sql)}`).join(separator);
}

/** What a reviewer reads above a statement: its summary and, as `rlsctl plan` prints them, its hazards. */
export function annotate(s: Statement): string[] {
  return s.hazards.length > 0 ? [s.summary, `    hazards: ${s.hazards.join(', ')}`] : [s.summary];
}

/** A statement without its final `;`, for drivers that take one statement per call. */
export function bare(sql: string): string {
  return sql.trim().replace(/;\s*$/, '');
}

function terminated(sql: string): string {
  return `${bare(sql)};`;
}

/** Refuse a plan whose SQL contains text a tool would read as its own marker (e.g. inside a string literal of a policy expression). */
export function refuseMarker(tool: string, statements: Statement[], marker: RegExp, what: string): void {
  const bad = statements.find((s) => marker.test(s.sql));
  if (bad) {
    throw new UsageError(`${tool} would read ${what} inside the SQL of "${commentText(bad.summary)}" as its own marker; no migration was written`, {
      hint: 'use another --migration tool (sql, flyway), or rlsctl apply',
    });
  }
}

/**
 * A SQL migration file. `transaction`: `explicit` wraps the statements in
 * BEGIN/COMMIT itself, `tool` relies on the tool's own transaction (both set
 * apply's lock_timeout for it), `none` is the concurrent phase.
 */
export function sqlFile(header: string[], statements: Statement[], transaction: 'explicit' | 'tool' | 'none'): string {
  const body = sqlStatements(statements);
  const parts = [sqlComment(GENERATED, ...header), ''];
  if (transaction === 'explicit') parts.push('BEGIN;', LOCK_TIMEOUT, '', body, '', 'COMMIT;');
  else if (transaction === 'tool') parts.push(LOCK_TIMEOUT, '', body);
  else parts.push(body);
  return parts.join('\n') + '\n';
}

/** `// line` comments for JavaScript and TypeScript files. */
export function jsComment(...lines: string[]): string {
  return lines.map((l) => `// ${commentText(l)}`.trimEnd()).join('\n');
}

/** A statement as a JavaScript string literal (JSON is valid JavaScript), under its summary. */
export function jsStatements(statements: Statement[], indent: string, call: (literal: string) => string): string {
  return statements.map((s) => `${jsComment(...annotate(s)).replace(/^/gm, indent)}\n${indent}${call(JSON.stringify(bare(s.sql)))}`).join('\n');
}
