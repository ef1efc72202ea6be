import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../helpers/cli.js';

/** The real binary on policy files and on git revisions of a throw-away repository. */

const SAAS = readFileSync(path.join(ROOT, 'policies/saas.yaml'), 'utf8');
/** app.events may now be updated; app.schema_migrations ... stays; app.countries gains nothing. */
const SAAS_WIDER = SAAS.replace('commands: [select, insert]      # an append-only audit trail', 'commands: [select, insert, update]');
/** app.events loses insert. */
const SAAS_NARROWER = SAAS.replace('commands: [select, insert]      # an append-only audit trail', 'commands: [select]');

let dir: string;
const file = (name: string) => path.join(dir, name);

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'rlsctl-diff-cli-'));
  expect(SAAS_WIDER).not.toBe(SAAS);
  expect(SAAS_NARROWER).not.toBe(SAAS);
  writeFileSync(file('base.yaml'), SAAS);
  writeFileSync(file('wider.yaml'), SAAS_WIDER);
  writeFileSync(file('narrower.yaml'), SAAS_NARROWER);
  writeFileSync(file('invalid.yaml'), 'version: 1\nroles: { app: [app_user] }\nschemas:\n  app:\n    tables:\n      t: { mode: nope }\n');
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

// Each test only reads: they run side by side.
describe.concurrent('rlsctl diff on files', () => {
  it('prints the JSON of the spec, and exits 1 with --fail-on-widening when a change widens', async () => {
    const r = await runCli(['diff', file('base.yaml'), file('wider.yaml'), '--format', 'json', '--fail-on-widening']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('1 change widens access');
    const json = JSON.parse(r.stdout);
    expect(json).toEqual({
      version: 1,
      command: 'diff',
      changes: [
        {
          object: { kind: 'table', schema: 'app', name: 'events' },
          change: 'command update allowed',
          class: 'widening',
          message: 'tenants may now update their own rows of app.events',
        },
      ],
      summary: { widening: 1, narrowing: 0, neutral: 0 },
    });
  });

  it('exits 0 with --fail-on-widening when changes only narrow; HEAD defaults to --policies', async () => {
    const r = await runCli(['diff', file('base.yaml'), '--policies', file('narrower.yaml'), '--fail-on-widening', '--format', 'json']);
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout);
    expect(json.summary).toEqual({ widening: 0, narrowing: 1, neutral: 0 });
    expect(json.changes.map((c: { change: string }) => c.change)).toEqual(['command insert no longer allowed']);
  });

  it('writes a pull-request comment with --format markdown', async () => {
    const r = await runCli(['diff', file('base.yaml'), file('wider.yaml'), '--format', 'markdown']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toContain('This change widens tenant access');
    expect(r.stdout).toContain('CREATE POLICY rlsctl_tenant_update ON app.events');
  });

  it('exits 2 for an invalid policy file, naming its file, line and column', async () => {
    const r = await runCli(['diff', file('base.yaml'), file('invalid.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/invalid\.yaml:6:\d+: error/);
    expect(r.stdout).toBe('');
  });

  it('exits 2 for a side that does not exist, and suggests git: for what looks like a revision', async () => {
    const r = await runCli(['diff', 'origin/main'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('cannot read the policy file origin/main');
    expect(r.stderr).toContain('git:origin/main');
  });
});

describe.concurrent('rlsctl diff on git revisions', () => {
  let repo: string;
  const git = (...args: string[]) =>
    execFileSync(
      'git',
      ['-c', 'user.name=rlsctl test', '-c', 'user.email=test@example.com', '-c', 'init.defaultBranch=main', '-c', 'commit.gpgsign=false', ...args],
      {
        cwd: repo,
        encoding: 'utf8',
        env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' },
      },
    );

  beforeAll(() => {
    repo = path.join(dir, 'repo');
    mkdirSync(path.join(repo, 'policies'), { recursive: true });
    git('init', '-q');
    writeFileSync(path.join(repo, 'policies/saas.yaml'), SAAS);
    git('add', 'policies');
    git('commit', '-q', '-m', 'policies');
    writeFileSync(path.join(repo, 'policies/saas.yaml'), SAAS_WIDER);
    git('commit', '-q', '-am', 'events may be updated');
    // A branch whose policy folder holds an invalid file.
    git('checkout', '-q', '-b', 'broken');
    writeFileSync(path.join(repo, 'policies/zz-broken.yaml'), 'version: 2\n');
    git('add', 'policies/zz-broken.yaml');
    git('commit', '-q', '-m', 'broken');
    git('checkout', '-q', 'main');
    // The working tree narrows it again, uncommitted.
    writeFileSync(path.join(repo, 'policies/saas.yaml'), SAAS_NARROWER);
  });

  it('compares git:HEAD with the working tree by default', async () => {
    const r = await runCli(['diff', 'git:HEAD', '--format', 'json'], { cwd: repo });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(
      JSON.parse(r.stdout)
        .changes.map((c: { class: string; change: string }) => `${c.class} ${c.change}`)
        .sort(),
    ).toEqual(['narrowing command insert no longer allowed', 'narrowing command update no longer allowed']);
  });

  it('compares two revisions, naming them in the output', async () => {
    const r = await runCli(['diff', 'git:HEAD~1', 'git:HEAD', '--fail-on-widening'], { cwd: repo });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('HEAD~1:policies -> HEAD:policies');
    expect(r.stdout).toContain('widening   table app.events: command update allowed');
  });

  it('reads --policies relative to the current folder, at the revision', async () => {
    const sub = path.join(repo, 'policies');
    const r = await runCli(['diff', 'git:HEAD~1', 'git:HEAD', '--policies', 'saas.yaml', '--format', 'json'], { cwd: sub });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout).summary).toEqual({ widening: 1, narrowing: 0, neutral: 0 });
  });

  it('exits 2 for a revision that does not exist', async () => {
    const r = await runCli(['diff', 'git:no-such-branch'], { cwd: repo });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('git:no-such-branch: no such revision');
  });

  it('exits 2 when the policy path is missing at the revision', async () => {
    const r = await runCli(['diff', 'git:HEAD', '--policies', 'db/policies'], { cwd: repo });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('HEAD:db/policies does not exist');
  });

  it('exits 2 outside a git repository', async () => {
    const outside = mkdtempSync(path.join(tmpdir(), 'rlsctl-diff-nogit-'));
    try {
      const r = await runCli(['diff', 'git:HEAD'], { cwd: outside, env: { GIT_CEILING_DIRECTORIES: path.dirname(outside) } });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('needs a git repository');
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('exits 3 when git itself is missing', async () => {
    const r = await runCli(['diff', 'git:HEAD'], { cwd: repo, env: { PATH: path.join(dir, 'no-bin') } });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('git is not installed');
  });

  it('exits 2 for an invalid policy file at a revision, naming it REF:path', async () => {
    const r = await runCli(['diff', 'git:main', 'git:broken'], { cwd: repo });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^broken:policies\/zz-broken\.yaml:1:\d+: error/m);
  });
});
