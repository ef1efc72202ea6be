import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { runCli } from '../helpers/cli.js';
import { createCanary, expectUntouched, snapshotDatabase } from '../helpers/hostile.js';

/**
 * Issue 14, denial of service on input: every hostile input here is refused
 * with exit 2 and a file:line:col, before anything reaches a database (proved
 * with the canary and a catalog snapshot where one is involved).
 */

const POLICY_HEAD = 'version: 1\nroles:\n  app: [app_user]\n';

/** `levels` anchors, each a list of two aliases of the one before: 2^levels leaves when expanded. */
function aliasBomb(levels: number): string {
  const lines = ['version: 1', 'roles:', '  app: [app_user]', 'x0: &a0 [lol]'];
  for (let i = 1; i <= levels; i++) lines.push(`x${i}: &a${i} [*a${i - 1}, *a${i - 1}]`);
  return lines.join('\n') + '\n';
}

let dir: string;
const file = (name: string) => path.join(dir, name);

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'rlsctl-input-dos-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('hostile input files, without a database', () => {
  it('an alias bomb of 30 doubling levels is exit 2 at the alias where expansion passes the bound', async () => {
    writeFileSync(file('bomb.yaml'), aliasBomb(30));
    const r = await runCli(['validate', '--policies', file('bomb.yaml')]);
    expect(r.code).toBe(2);
    // Level i is a list of 3 * 2^i - 1 values; the aliases of levels 1..14 add 98,270 of them, and the
    // first alias of level 15 (line 19, column 12) takes the total past 100,000.
    expect(r.stderr).toContain(`${file('bomb.yaml')}:19:12: error the YAML aliases of this file expand to more than 100000 values`);
    expect(r.stderr).toMatch(/hint: .*aliases of aliases multiply/);
  });

  it('a few levels of aliases still work (anchors and aliases are documented)', async () => {
    writeFileSync(
      file('few.yaml'),
      'version: 1\nroles:\n  app: &apps [app_user]\nschemas:\n  app:\n    tables:\n      t: { policies: [{ name: p, to: *apps, using: "true" }] }\n',
    );
    const r = await runCli(['validate', '--policies', file('few.yaml')]);
    expect(r.stderr).toContain('valid (1 table in 1 schema)');
    expect(r.code).toBe(0);
  });

  it('a policy file that is not UTF-8 is refused at its first invalid byte, not decoded with replacement characters', async () => {
    // Latin-1 é (0xe9) in the fourth line, after "  # caf".
    writeFileSync(file('latin1.yaml'), Buffer.concat([Buffer.from(`${POLICY_HEAD}  # caf`), Buffer.from([0xe9]), Buffer.from('\n')]));
    const r = await runCli(['validate', '--policies', file('latin1.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`rlsctl: ${file('latin1.yaml')}:4:8: the policy file is not valid UTF-8 (byte 0xe9 at offset ${POLICY_HEAD.length + 7})`);
    expect(r.stderr).toContain('hint: save the file as UTF-8');
  });

  it('the column of an invalid byte counts characters, and a truncated sequence is found too', async () => {
    // "é" (2 bytes) then a 3-byte sequence cut short: column 3 of line 2.
    writeFileSync(file('cut.yaml'), Buffer.concat([Buffer.from('version: 1\n\u00e9x'), Buffer.from([0xe2, 0x82]), Buffer.from('\n')]));
    const r = await runCli(['validate', '--policies', file('cut.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file('cut.yaml')}:2:3: the policy file is not valid UTF-8 (byte 0xe2 at offset 14)`);
  });

  it('a policy file above the documented 16 MiB is refused before it is parsed', async () => {
    writeFileSync(file('huge.yaml'), POLICY_HEAD + `# ${'x'.repeat(16 * 1024 * 1024)}\n`);
    const r = await runCli(['validate', '--policies', file('huge.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`rlsctl: ${file('huge.yaml')}:1:1: the policy file is 16.0 MiB; rlsctl reads input files of at most 16 MiB`);
  });

  it('a policy file at a git revision is held to the same rule', async () => {
    const repo = file('repo');
    execFileSync('git', ['init', '-q', repo]);
    writeFileSync(path.join(repo, 'p.yaml'), Buffer.concat([Buffer.from(POLICY_HEAD), Buffer.from([0xff, 0x0a])]));
    const env = {
      ...process.env,
      GIT_AUTHOR_NAME: 't',
      GIT_AUTHOR_EMAIL: 't@example.invalid',
      GIT_COMMITTER_NAME: 't',
      GIT_COMMITTER_EMAIL: 't@example.invalid',
    };
    execFileSync('git', ['add', 'p.yaml'], { cwd: repo, env });
    execFileSync('git', ['commit', '-qm', 'x'], { cwd: repo, env });
    writeFileSync(path.join(repo, 'head.yaml'), POLICY_HEAD);
    const r = await runCli(['diff', 'git:HEAD', 'head.yaml', '--policies', 'p.yaml'], { cwd: repo });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`HEAD:p.yaml:4:1: the policy file is not valid UTF-8 (byte 0xff at offset ${POLICY_HEAD.length})`);
  });
});

describeEachServer('hostile input files with a database', (ctx) => {
  const app = uniqueName('dos_app');
  let before: Awaited<ReturnType<typeof snapshotDatabase>>;

  beforeAll(async () => {
    await ctx.db.query(`CREATE ROLE ${app} NOLOGIN`);
    await ctx.db.runScript(`CREATE TABLE public.notes (tenant_id uuid NOT NULL, body text); GRANT SELECT ON public.notes TO ${app};`);
    await createCanary(ctx.db);
    before = await snapshotDatabase(ctx.db);
  });
  afterAll(async () => {
    await ctx.db.query(`DROP OWNED BY ${app}`).catch(() => undefined);
    await ctx.db.query(`DROP ROLE IF EXISTS ${app}`).catch(() => undefined);
  });

  const cases: Array<{ name: string; args: () => string[]; message: () => string }> = [
    {
      name: 'explain: a query file in Latin-1',
      args: () => {
        writeFileSync(file(`q-${ctx.server.name}.sql`), Buffer.concat([Buffer.from("SELECT 1;\nSELECT 'caf"), Buffer.from([0xe9]), Buffer.from("';\n")]));
        return ['explain', '--db', ctx.db.url, '--app-role', app, file(`q-${ctx.server.name}.sql`)];
      },
      message: () => `${file(`q-${ctx.server.name}.sql`)}:2:12: the query file is not valid UTF-8 (byte 0xe9 at offset 21)`,
    },
    {
      name: 'audit: a baseline with an invalid byte',
      args: () => {
        writeFileSync(file(`b-${ctx.server.name}.json`), Buffer.from([0x7b, 0x0a, 0x20, 0xc0, 0xaf, 0x7d]));
        return ['audit', '--db', ctx.db.url, '--schema', 'public', '--app-role', app, '--baseline', file(`b-${ctx.server.name}.json`)];
      },
      message: () => `${file(`b-${ctx.server.name}.json`)}:2:2: the baseline is not valid UTF-8 (byte 0xc0 at offset 3)`,
    },
    {
      name: 'apply: a lock timeout under 1 ms would turn the timeout off',
      args: () => ['apply', '--db', ctx.db.url, '--policies', 'policies', '--lock-timeout', '0.4ms'],
      message: () => "option '--lock-timeout <duration>' argument '0.4ms' is invalid. a duration of at least 1ms",
    },
    {
      name: 'verify: a statement timeout of 0.0004 s',
      args: () => ['verify', '--db', ctx.db.url, '--statement-timeout', '0.0004'],
      message: () => "option '--statement-timeout <duration>' argument '0.0004' is invalid. a duration of at least 1ms",
    },
  ];

  for (const c of cases) {
    it(`${c.name}: exit 2 and nothing ran`, async () => {
      const r = await runCli(c.args());
      expect(r.stderr).toContain(c.message());
      expect(r.code).toBe(2);
      await expectUntouched(ctx.db, before);
    });
  }
});
