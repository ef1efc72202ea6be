import { Command, Option } from 'commander';
import { UsageError } from '../errors.js';
import type { FailOn } from '../report/finding.js';
import { redactSecrets } from '../db/connection.js';
import { escapeTerminalOutput } from '../report/escape-terminal.js';

export type Format = 'text' | 'json' | 'sarif' | 'markdown';

/** The options every command understands (cli.md, "Options every command understands"). */
export interface CommonOptions {
  db?: string;
  policies: string;
  format?: Format;
  color: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

export function addCommonOptions(command: Command, formats: Format[] = ['text', 'json']): Command {
  return command
    .option('--db <url>', 'a postgres:// connection string (default: DATABASE_URL, then PG* variables, then an embedded PostgreSQL)')
    .option('--policies <path>', 'the policy file or folder', 'policies')
    .addOption(new Option('--format <format>', 'output format').choices(formats))
    .option('--no-color', 'no colours (also NO_COLOR)')
    .option('--quiet', 'print only what was asked for, no progress or notes')
    .option('--verbose', 'print stack traces of errors');
}

export function addFailOn(command: Command): Command {
  return command.addOption(
    new Option('--fail-on <severity>', 'exit 1 when a finding is at or above this severity').choices(['error', 'warning', 'info', 'never']).default('error'),
  );
}

/** Options that say the facts on a database without a policy file (audit, explain, verify). */
export function addFactOptions(command: Command): Command {
  const collect = (value: string, previous: string[] = []) => [...previous, value];
  return command
    .option('--schema <name>', 'a schema to scan (repeatable; default: every non-system schema)', collect)
    .option('--tenant-column <name>', 'the tenant column (default tenant_id)')
    .option('--tenant-setting <name>', 'the setting that carries the current tenant')
    .option('--app-role <role>', 'a role application traffic runs as (repeatable)', collect)
    .option('--bypass-role <role>', 'a role allowed to bypass RLS (repeatable)', collect);
}

export function useColor(options: { color?: boolean }, stream: NodeJS.WriteStream = process.stdout): boolean {
  if (options.color === false) return false;
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false;
  if (process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== '0') return true;
  return Boolean(stream.isTTY);
}

export function formatOf(options: { format?: Format }): Format {
  return options.format ?? 'text';
}

export function failOnOf(options: { failOn?: string }): FailOn {
  return (options.failOn ?? 'error') as FailOn;
}

/**
 * A report on stdout: never a password (see redactSecrets), and control characters that are not
 * rlsctl's own line breaks and colours escaped (src/report/escape-terminal.ts).
 */
export function write(text: string): void {
  process.stdout.write(escapeTerminalOutput(redactSecrets(text)));
}

/** Notes and progress: stderr, and not with --quiet; escaped as `write` does. */
export function note(options: { quiet?: boolean }, text: string): void {
  if (!options.quiet) process.stderr.write(escapeTerminalOutput(redactSecrets(text.endsWith('\n') ? text : `${text}\n`)));
}

export { writeFileAtomic } from '../report/write-file-atomic.js';

/** For commands a later release fills in: say so plainly, exit 2. */
export function notYet(name: string): never {
  throw new UsageError(`rlsctl ${name} is not implemented in this version yet`, { hint: 'see the README for the commands available now' });
}
