import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createTestDatabase, testServers, uniqueName, type TestDatabase } from '../helpers/db.js';
import { ROOT } from '../helpers/cli.js';

/**
 * The GitHub Action, offline: action.yml's step runs scripts/action.sh with
 * the inputs as RLSCTL_* variables. Here the script runs the repository's own
 * binary (RLSCTL_BIN) instead of `npx rlsctl@VERSION`, as the step would.
 */

const ACTION = path.join(ROOT, 'action.yml');
const SCRIPT = path.join(ROOT, 'scripts/action.sh');

interface Action {
  inputs: Record<string, { description: string; required?: boolean; default?: string }>;
  outputs: Record<string, { value: string }>;
  runs: {
    using: string;
    steps: Array<{ id?: string; run?: string; uses?: string; shell?: string; env?: Record<string, string>; with?: Record<string, string>; if?: string }>;
  };
}

interface Result {
  code: number;
  output: string;
  /** What the script wrote to $GITHUB_OUTPUT. */
  githubOutput: string;
}

let work = '';

function runAction(env: Record<string, string>): Promise<Result> {
  const outputFile = path.join(mkdtempSync(path.join(work, 'out-')), 'github_output');
  writeFileSync(outputFile, '');
  const base: NodeJS.ProcessEnv = {};
  // A clean slate: no database of the test run, no inputs left over.
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('RLSCTL_') && !k.startsWith('PG') && k !== 'DATABASE_URL') base[k] = v;
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [SCRIPT], {
      cwd: ROOT,
      env: { ...base, NO_COLOR: '1', RLSCTL_BIN: 'bin/rlsctl.js', GITHUB_OUTPUT: outputFile, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, output, githubOutput: readFileSync(outputFile, 'utf8') }));
  });
}

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'rlsctl-action-'));
});
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('action.yml', () => {
  const action = parse(readFileSync(ACTION, 'utf8')) as Action;
  const script = readFileSync(SCRIPT, 'utf8');
  const step = action.runs.steps.find((s) => s.id === 'run')!;

  it('is a composite action whose step runs scripts/action.sh', () => {
    expect(action.runs.using).toBe('composite');
    expect(step.shell).toBe('bash');
    expect(step.run).toBe('bash "$RLSCTL_ACTION_PATH/scripts/action.sh"');
    expect(step.env!.RLSCTL_ACTION_PATH).toBe('${{ github.action_path }}');
    expect(existsSync(SCRIPT)).toBe(true);
  });

  it('passes every input to the script, and the script reads only variables the step sets', () => {
    const read = new Set([...script.matchAll(/\bRLSCTL_[A-Z_]+\b/g)].map((m) => m[0]));
    read.delete('RLSCTL_BIN'); // the test's own hook: the step never sets it, so users get the published package
    const set = Object.keys(step.env!);
    for (const name of read) expect(set, name).toContain(name);
    const fromInputs = Object.entries(step.env!).filter(([, v]) => v.startsWith('${{ inputs.'));
    expect(fromInputs.map(([, v]) => /^\$\{\{ inputs\.([a-z-]+) \}\}$/.exec(v)?.[1]).sort()).toEqual(Object.keys(action.inputs).sort());
    for (const [name] of fromInputs) expect(read, `${name} is set but the script never reads it`).toContain(name);
  });

  it('declares the exit-code output from the step, and uploads SARIF only when asked', () => {
    expect(action.outputs['exit-code'].value).toBe('${{ steps.run.outputs.exit-code }}');
    expect(script).toContain('echo "exit-code=$code" >> "${GITHUB_OUTPUT:-/dev/null}"');
    const upload = action.runs.steps.find((s) => s.uses?.startsWith('github/codeql-action/upload-sarif@'))!;
    expect(upload.with!.sarif_file).toBe('${{ inputs.sarif }}');
    expect(upload.if).toContain("inputs.sarif != ''");
    expect(action.inputs.command.required).toBe(true);
  });

  it("defaults the version to the action's own (never an unpinned tag such as latest)", () => {
    expect(action.inputs.version.default).toBe('');
    expect(script).not.toMatch(/:-latest|@latest/);
  });
});

describe('scripts/action.sh', () => {
  let db: TestDatabase;
  let policy = '';
  const app = uniqueName('actapp');

  beforeAll(async () => {
    db = await createTestDatabase(testServers()[0], 'act');
    await db.runScript(`
      CREATE ROLE ${app};
      CREATE SCHEMA app;
      CREATE TABLE app.notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant_id uuid NOT NULL, body text NOT NULL);
      GRANT USAGE ON SCHEMA app TO ${app};
      GRANT SELECT, INSERT, UPDATE, DELETE ON app.notes TO ${app};`);
    policy = path.join(work, 'policy.yaml');
    writeFileSync(
      policy,
      `version: 1\ntenant: { setting: app.tenant_id, type: uuid }\nroles: { app: [${app}] }\nschemas:\n  app:\n    tables:\n      notes: tenant\n`,
    );
  });
  afterAll(async () => {
    await db?.drop();
  });

  const password = () => decodeURIComponent(new URL(db.url).password);

  it('validate: exit 0, and the exit code goes to $GITHUB_OUTPUT', async () => {
    const r = await runAction({ RLSCTL_COMMAND: 'validate', RLSCTL_POLICIES: 'policies/saas.yaml' });
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain('policies/saas.yaml: valid');
    expect(r.githubOutput).toBe('exit-code=0\n');
  });

  it('validate of an invalid file: exit 2, written to $GITHUB_OUTPUT too', async () => {
    const r = await runAction({ RLSCTL_COMMAND: 'validate', RLSCTL_POLICIES: 'fixtures/policy/invalid/several-errors.yaml' });
    expect(r.code).toBe(2);
    expect(r.githubOutput).toBe('exit-code=2\n');
  });

  it('audit with RLSCTL_SARIF against a real server: a SARIF file that parses, exit 1 for the hole, no password anywhere', async () => {
    const sarifFile = path.join(work, 'audit.sarif');
    const r = await runAction({ RLSCTL_COMMAND: 'audit', RLSCTL_POLICIES: policy, RLSCTL_DATABASE_URL: db.url, RLSCTL_SARIF: sarifFile });
    expect(r.code, r.output).toBe(1);
    expect(r.githubOutput).toBe('exit-code=1\n');
    const text = readFileSync(sarifFile, 'utf8');
    const sarif = JSON.parse(text) as { version: string; runs: Array<{ tool: { driver: { name: string } }; results: Array<{ ruleId: string }> }> };
    expect(sarif.version).toBe('2.1.0');
    expect(sarif.runs[0].tool.driver.name).toBe('rlsctl');
    expect(sarif.runs[0].results.map((x) => x.ruleId)).toContain('RLS001');
    expect(password().length).toBeGreaterThan(0);
    expect(r.output + text).not.toContain(password());
  });

  it('RLSCTL_ARGS are split into words: audit --fail-on never exits 0', async () => {
    const r = await runAction({ RLSCTL_COMMAND: 'audit', RLSCTL_POLICIES: policy, RLSCTL_DATABASE_URL: db.url, RLSCTL_ARGS: '--fail-on never --format json' });
    expect(r.code, r.output).toBe(0);
    expect(r.githubOutput).toBe('exit-code=0\n');
    expect(r.output).toContain('"command": "audit"');
  });

  it('a refused password: exit 3, and neither the password tried nor the real one is printed', async () => {
    const wrong = new URL(db.url);
    wrong.password = 'not-the-password-4711';
    const r = await runAction({ RLSCTL_COMMAND: 'audit', RLSCTL_POLICIES: policy, RLSCTL_DATABASE_URL: wrong.toString() });
    expect(r.code).toBe(3);
    expect(r.githubOutput).toBe('exit-code=3\n');
    expect(r.output).toContain('password authentication failed');
    expect(r.output).toContain('postgres:***@');
    expect(r.output).not.toContain('not-the-password-4711');
    expect(r.output).not.toContain(password());
  });

  /** A stand-in for rlsctl that prints the words it received, one JSON array. */
  const argvEcho = () => {
    const file = path.join(work, 'argv-echo.js');
    writeFileSync(file, 'console.log(JSON.stringify(process.argv.slice(2)))\n');
    return file;
  };

  it('hostile RLSCTL_ARGS arrive verbatim: no glob expansion, no $(...), no variables, quotes keep blanks', async () => {
    const marker = path.join(work, 'pwned-by-args');
    const r = await runAction({
      RLSCTL_COMMAND: 'audit',
      RLSCTL_BIN: argvEcho(),
      RLSCTL_ARGS: `--x "a  b" 'c d' * ?ackage.json $(touch ${marker}) \`touch ${marker}\` $HOME ~ e\\ f "q\\"x" 'it'\\''s' "" ;rm -rf /tmp/nothing`,
    });
    expect(r.code, r.output).toBe(0);
    expect(JSON.parse(r.output)).toEqual([
      'audit',
      '--policies',
      'policies',
      '--x',
      'a  b',
      'c d',
      '*',
      '?ackage.json',
      '$(touch',
      `${marker})`,
      '`touch',
      `${marker}\``,
      '$HOME',
      '~',
      'e f',
      'q"x',
      "it's",
      '',
      ';rm',
      '-rf',
      '/tmp/nothing',
    ]);
    expect(existsSync(marker)).toBe(false);
  });

  it('an unmatched quote or a trailing backslash in RLSCTL_ARGS: exit 2, nothing runs', async () => {
    for (const bad of [`--x "a b`, `'c`, 'x \\']) {
      const r = await runAction({ RLSCTL_COMMAND: 'audit', RLSCTL_BIN: argvEcho(), RLSCTL_ARGS: bad });
      expect(r.code, bad).toBe(2);
      expect(r.output, bad).toMatch(/^rlsctl action: the args input (has an unmatched|ends with a lone backslash)/);
      expect(r.githubOutput).toBe('exit-code=2\n');
    }
  });

  /** A fake `npx` first on PATH that records its arguments: what the published-package path would run. */
  const fakeNpx = () => {
    const dir = mkdtempSync(path.join(work, 'npx-'));
    const log = path.join(dir, 'calls');
    writeFileSync(path.join(dir, 'npx'), `#!/usr/bin/env bash\nprintf '%s\\n' "$@" > '${log}'\n`, { mode: 0o755 });
    return { env: { PATH: `${dir}:${process.env.PATH}`, RLSCTL_BIN: '' }, log };
  };

  it("runs the action's own version, pinned exactly, through npx --package", async () => {
    const own = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    const npx = fakeNpx();
    const r = await runAction({ RLSCTL_COMMAND: 'validate', RLSCTL_ACTION_PATH: ROOT, RLSCTL_ARGS: '"a *"', ...npx.env });
    expect(r.code, r.output).toBe(0);
    expect(readFileSync(npx.log, 'utf8').split('\n').slice(0, -1)).toEqual([
      '--yes',
      `--package=rlsctl@${own}`,
      '--',
      'rlsctl',
      'validate',
      '--policies',
      'policies',
      'a *',
    ]);
    const chosen = fakeNpx();
    const pinned = await runAction({ RLSCTL_COMMAND: 'validate', RLSCTL_ACTION_PATH: ROOT, RLSCTL_VERSION: '1.2.3-rc.1', ...chosen.env });
    expect(pinned.code, pinned.output).toBe(0);
    expect(readFileSync(chosen.log, 'utf8')).toContain('--package=rlsctl@1.2.3-rc.1\n');
  });

  it('refuses a version that is not exact (a tag, a range, another package spec): exit 2, npx never runs', async () => {
    for (const version of ['latest', '^0.1.0', '1.x', 'github:evil/rlsctl', 'https://evil.example/rlsctl.tgz', '0.1.0 || 9', '$(id)']) {
      const npx = fakeNpx();
      const r = await runAction({ RLSCTL_COMMAND: 'audit', RLSCTL_ACTION_PATH: ROOT, RLSCTL_VERSION: version, ...npx.env });
      expect(r.code, version).toBe(2);
      expect(r.output).toContain('is not an exact version');
      expect(r.githubOutput).toBe('exit-code=2\n');
      expect(existsSync(npx.log), version).toBe(false);
    }
  });

  it('an unknown command: exit 2 before anything runs, and the exit code is still written', async () => {
    const r = await runAction({ RLSCTL_COMMAND: 'deploy' });
    expect(r.code).toBe(2);
    expect(r.output).toBe("rlsctl action: unknown command 'deploy': use validate, compile, plan, apply, audit, explain, verify, diff or init\n");
    expect(r.githubOutput).toBe('exit-code=2\n');
    const none = await runAction({});
    expect(none.code).toBe(2);
    expect(none.output).toContain('the command input is required');
    expect(none.githubOutput).toBe('exit-code=2\n');
  });
});
