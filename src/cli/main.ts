import { Command, CommanderError } from 'commander';
import { RlsctlError, PolicyInvalid } from '../errors.js';
import { redactSecrets } from '../db/connection.js';
import { VERSION } from '../version.js';
import { validateCommand } from './commands/validate.js';
import { compileCommand } from './commands/compile.js';
import { planCommand } from './commands/plan.js';
import { applyCommand } from './commands/apply.js';
import { auditCommand } from './commands/audit.js';
import { explainCommand } from './commands/explain.js';
import { verifyCommand } from './commands/verify.js';
import { diffCommand } from './commands/diff.js';
import { initCommand } from './commands/init.js';
import { makeChalk } from '../report/format-text.js';
import { useColor } from './common.js';
import { escapeTerminal, escapeTerminalBlock } from '../report/escape-terminal.js';

export function buildProgram(): Command {
  const program = new Command('rlsctl')
    .description('Tenant isolation in PostgreSQL as a database guarantee: declare row-level security once, then compile, apply, audit, explain, verify.')
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      '\nExamples:\n  rlsctl validate\n  rlsctl plan --db "$DATABASE_URL"\n  rlsctl apply --db "$DATABASE_URL"\n  rlsctl audit --db "$DATABASE_URL" --format sarif > rlsctl.sarif\n\nExit codes: 0 done, 1 check failed, 2 bad input, 3 database or environment failed.\n',
    );
  for (const command of [
    validateCommand(),
    compileCommand(),
    planCommand(),
    applyCommand(),
    auditCommand(),
    explainCommand(),
    verifyCommand(),
    diffCommand(),
    initCommand(),
  ]) {
    program.addCommand(command);
  }
  // commander's own messages (help, a usage error that echoes an argument) pass the same redaction as ours.
  const output = {
    writeOut: (text: string) => process.stdout.write(redactSecrets(text)),
    writeErr: (text: string) => process.stderr.write(redactSecrets(text)),
  };
  for (const command of [program, ...program.commands]) command.exitOverride().configureOutput(output);
  return program;
}

/** Run the CLI; returns the exit code. Everything thrown under src/ is turned into one here. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const verbose = argv.includes('--verbose');
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    return reportError(error, verbose, argv.includes('--no-color') ? false : useColor({}, process.stderr));
  }
}

function reportError(error: unknown, verbose: boolean, color: boolean): number {
  const c = makeChalk(color);
  if (error instanceof CommanderError) {
    // --help and --version end through here with code 0; a usage mistake is bad input: 2.
    if (error.exitCode === 0 || error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return 0;
    return 2;
  }
  if (error instanceof PolicyInvalid) {
    for (const d of error.diagnostics) {
      process.stderr.write(`${escapeTerminal(d.location.file)}:${d.location.line}:${d.location.column}: ${c.red('error')} ${escapeTerminal(d.message)}\n`);
      if (d.hint) process.stderr.write(`  ${c.dim('hint:')} ${escapeTerminalBlock(d.hint)}\n`);
    }
    process.stderr.write(`${error.diagnostics.length} problem${error.diagnostics.length === 1 ? '' : 's'} in the policy file\n`);
    return 2;
  }
  if (error instanceof RlsctlError) {
    // Names in messages come from the catalog and from files: escaped (src/report/escape-terminal.ts); never a password.
    process.stderr.write(`${c.red('rlsctl:')} ${escapeTerminal(redactSecrets(error.message))}\n`);
    if (error.hint) process.stderr.write(`  ${c.dim('hint:')} ${escapeTerminalBlock(redactSecrets(error.hint))}\n`);
    if (verbose && error.stack) process.stderr.write(`${escapeTerminalBlock(redactSecrets(error.stack))}\n`);
    return error.exitCode;
  }
  const e = error as Error;
  process.stderr.write(`${c.red('rlsctl: internal error:')} ${escapeTerminal(redactSecrets(e?.message ?? String(error)))}\n`);
  if (verbose && e?.stack) process.stderr.write(`${escapeTerminalBlock(redactSecrets(e.stack))}\n`);
  else process.stderr.write('  run again with --verbose for the stack trace, and report it as a bug\n');
  return 3;
}
