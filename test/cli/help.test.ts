import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BIN, ROOT, runCli } from '../helpers/cli.js';

/**
 * Shell-friendly help: every command's --help ends with examples that run
 * that command; colours only on a terminal, never with NO_COLOR or --no-color.
 */

const COMMANDS = ['validate', 'compile', 'plan', 'apply', 'audit', 'explain', 'verify', 'diff', 'init'];

/** Run rlsctl under a pseudo-terminal (script from util-linux); returns what the terminal showed. */
function onTerminal(args: string[], env: Record<string, string | undefined>): Promise<{ code: number; terminal: string }> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const base: NodeJS.ProcessEnv = { ...process.env };
  delete base.NO_COLOR;
  delete base.FORCE_COLOR;
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', [process.execPath, BIN, ...args].map(quote).join(' '), '/dev/null'], {
      cwd: ROOT,
      env: base,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let terminal = '';
    child.stdout.on('data', (d) => (terminal += d));
    child.stderr.on('data', (d) => (terminal += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, terminal }));
  });
}

const ESC = '\x1b[';

describe.concurrent('help', () => {
  it.each(COMMANDS)('rlsctl %s --help ends with examples of that command', async (command) => {
    const r = await runCli([command, '--help']);
    expect(r.code).toBe(0);
    const examples = r.stdout.split('\nExamples:\n')[1];
    expect(examples, `${command} --help has no Examples: block`).toBeDefined();
    const lines = examples.split('\n').filter((l) => l.startsWith('  rlsctl '));
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).toMatch(new RegExp(`^  rlsctl ${command}\\b`));
    expect(r.stdout).not.toContain(ESC);
  });

  it('rlsctl --help: examples and the exit codes', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('\nExamples:\n  rlsctl validate\n');
    expect(r.stdout).toContain('Exit codes: 0 done, 1 check failed, 2 bad input, 3 database or environment failed.');
  });
});

describe.concurrent('colours', () => {
  const args = ['validate', '--policies', 'no/such/policies'];

  it('on a terminal, errors are coloured', async () => {
    const r = await onTerminal(args, {});
    expect(r.code).toBe(2);
    expect(r.terminal).toContain(`${ESC}31mrlsctl:${ESC}39m cannot read the policy file no/such/policies`);
  });

  it('NO_COLOR turns colours off, on a terminal too', async () => {
    const r = await onTerminal(args, { NO_COLOR: '1' });
    expect(r.code).toBe(2);
    expect(r.terminal).toContain('rlsctl: cannot read the policy file no/such/policies');
    expect(r.terminal).not.toContain(ESC);
  });

  it('--no-color turns colours off, on a terminal too', async () => {
    const r = await onTerminal([...args, '--no-color'], {});
    expect(r.code).toBe(2);
    expect(r.terminal).toContain('rlsctl: cannot read the policy file no/such/policies');
    expect(r.terminal).not.toContain(ESC);
  });

  it('a pipe gets no colours', async () => {
    const r = await runCli(args, { env: { NO_COLOR: undefined, FORCE_COLOR: undefined } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^rlsctl: cannot read the policy file no\/such\/policies/);
    expect(r.stderr).not.toContain(ESC);
  });
});
