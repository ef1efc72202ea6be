import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, ROOT } from '../helpers/cli.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { runPsql } from '../helpers/psql.js';
import { loadParser } from '../../src/policy/expression.js';

/** `rlsctl validate` and `rlsctl compile` as a user runs them: the real binary, its exit codes, its output. */

const EXAMPLE = 'policies/saas.yaml';
const SEVERAL = 'fixtures/policy/invalid/several-errors.yaml';
const PKG = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'rlsctl-cli-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/** The options cli.md gives every command, and those it names per command. */
const COMMON = ['--db <url>', '--policies <path>', '--format <format>', '--no-color', '--quiet', '--verbose'];
const COMMAND_OPTIONS: Record<string, string[]> = {
  validate: [],
  compile: ['-o, --output <file>'],
  plan: ['--check', '--schema'],
  apply: ['--dry-run', '--prune', '--schema'],
  audit: [
    '--fail-on <severity>',
    '--baseline <file>',
    '--write-baseline <file>',
    '--schema',
    '--tenant-column <name>',
    '--tenant-setting <name>',
    '--app-role <role>',
    '--bypass-role <role>',
  ],
  explain: ['--tenant <value>', '--fail-on <severity>', '--schema'],
  verify: ['--tenant <value>', '--fail-on <severity>', '--schema'],
  diff: ['--fail-on-widening'],
  init: [],
};

// Each test runs its own processes and files: they run side by side.
describe.concurrent('help and version', () => {
  it.each(Object.entries(COMMAND_OPTIONS))('rlsctl %s --help exits 0 and lists its options', async (command, options) => {
    const result = await runCli([command, '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^Usage: rlsctl ${command} `));
    for (const option of [...COMMON, ...options]) expect(result.stdout, option).toContain(option);
  });

  it('rlsctl --help lists the nine commands', async () => {
    const result = await runCli(['--help']);
    expect(result.code).toBe(0);
    for (const command of Object.keys(COMMAND_OPTIONS)) expect(result.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
  });

  it('rlsctl --version prints the package version', async () => {
    const result = await runCli(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(PKG.version);
  });

  it('an unknown option is bad input: exit 2, named on stderr', async () => {
    for (const command of ['validate', 'compile']) {
      const result = await runCli([command, '--polices', EXAMPLE]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain("unknown option '--polices'");
      expect(result.stdout).toBe('');
    }
  });
});

describe.concurrent('rlsctl validate', () => {
  it('says the example is valid: exit 0, nothing on stdout', async () => {
    const result = await runCli(['validate', '--policies', EXAMPLE]);
    expect(result).toEqual({ code: 0, stdout: '', stderr: 'policies/saas.yaml: valid (9 tables in 1 schema)\n' });
  });

  it('reads policies/ by default', async () => {
    const result = await runCli(['validate', '--quiet']);
    expect(result).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('reports every problem as file:line:col on stderr, exit 2', async () => {
    const result = await runCli(['validate', '--policies', SEVERAL]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.split('\n').filter((l) => l.startsWith(SEVERAL))).toEqual([
      `${SEVERAL}:3:12: error the setting \`tenant_id\` has no dot`,
      `${SEVERAL}:4:9: error unknown tenant type \`uid\``,
      `${SEVERAL}:11:9: error unknown key \`colum\` in the table \`app.invoices\``,
      `${SEVERAL}:12:7: error the table \`app.schema_migrations\` is exempt without a reason`,
    ]);
    expect(result.stderr).toContain('  hint: did you mean `column`?\n');
    expect(result.stderr).toContain('4 problems in the policy file\n');
  });

  it('--format json: exactly one JSON document on stdout, in the envelope of the spec', async () => {
    const result = await runCli(['validate', '--policies', SEVERAL, '--format', 'json']);
    expect(result.code).toBe(2);
    const report = JSON.parse(result.stdout);
    expect(Object.keys(report)).toEqual(['version', 'command', 'findings', 'summary']);
    expect(report.version).toBe(1);
    expect(report.command).toBe('validate');
    expect(report.summary).toEqual({ error: 4, warning: 0, info: 0 });
    expect(report.findings).toHaveLength(4);
    const colum = report.findings.find((f: { message: string }) => f.message.includes('colum'));
    expect(colum).toEqual({
      rule: 'POL001',
      name: 'invalid-policy-file',
      severity: 'error',
      message: 'unknown key `colum` in the table `app.invoices`',
      object: { kind: 'policy_file', name: SEVERAL },
      help: 'did you mean `column`?',
      fingerprint: `POL001:${SEVERAL}:11:9`,
      location: { file: SEVERAL, line: 11, column: 9 },
    });
    for (const finding of report.findings) {
      expect(finding.object.kind).toBe('policy_file');
      expect(finding.location).toEqual({ file: SEVERAL, line: expect.any(Number), column: expect.any(Number) });
    }
  });

  it('--format json on a valid file: no findings, exit 0', async () => {
    const result = await runCli(['validate', '--policies', EXAMPLE, '--format', 'json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ version: 1, command: 'validate', findings: [], summary: { error: 0, warning: 0, info: 0 } });
  });

  it('--format sarif: a SARIF 2.1.0 log with the rule, a located result per problem and stable fingerprints', async () => {
    const result = await runCli(['validate', '--policies', SEVERAL, '--format', 'sarif']);
    expect(result.code).toBe(2);
    const log = JSON.parse(result.stdout);
    expect(log.version).toBe('2.1.0');
    const [run] = log.runs;
    expect(run.tool.driver.name).toBe('rlsctl');
    expect(run.tool.driver.rules.map((r: { id: string }) => r.id)).toEqual(['POL001']);
    expect(run.results).toHaveLength(4);
    const regions = run.results.map(
      (r: { locations: Array<{ physicalLocation: { artifactLocation: { uri: string }; region: { startLine: number; startColumn: number } } }> }) => {
        const { artifactLocation, region } = r.locations[0].physicalLocation;
        return `${artifactLocation.uri}:${region.startLine}:${region.startColumn}`;
      },
    );
    expect(regions.sort()).toEqual([`${SEVERAL}:11:9`, `${SEVERAL}:12:7`, `${SEVERAL}:3:12`, `${SEVERAL}:4:9`]);
    for (const r of run.results) {
      expect(r.ruleId).toBe('POL001');
      expect(r.level).toBe('error');
      expect(r.partialFingerprints['rlsctlFingerprint/v1']).toMatch(/^POL001:/);
    }
  });

  it.each([
    ['a missing file', 'fixtures/policy/no-such-file.yaml', 'rlsctl: cannot read the policy file fixtures/policy/no-such-file.yaml: no such file or folder'],
    ['a folder without YAML files', 'src/report', 'rlsctl: the folder src/report holds no *.yaml or *.yml policy file'],
    ['invalid YAML', 'fixtures/policy/invalid/invalid-yaml-syntax.yaml', 'fixtures/policy/invalid/invalid-yaml-syntax.yaml:4:1: error invalid YAML:'],
    [
      'a smuggled second statement',
      'fixtures/policy/invalid/expression-second-statement.yaml',
      'fixtures/policy/invalid/expression-second-statement.yaml:12:20: error the expression "true); DROP TABLE a; --" is not valid',
    ],
  ])('%s: exit 2 and the place on stderr, for validate and for compile, which writes nothing', async (_, policies, message) => {
    const validate = await runCli(['validate', '--policies', policies]);
    expect(validate.code).toBe(2);
    expect(validate.stdout).toBe('');
    expect(validate.stderr).toContain(message);

    const out = path.join(tmp, `never-${path.basename(policies)}.sql`);
    const compile = await runCli(['compile', '--policies', policies, '-o', out]);
    expect(compile.code).toBe(2);
    expect(compile.stdout).toBe('');
    expect(compile.stderr).toContain(message);
    expect(readdirSync(tmp)).not.toContain(path.basename(out));
  });
});

describe.concurrent('rlsctl compile', () => {
  it('prints the same bytes every run', async () => {
    const [first, second] = await Promise.all([runCli(['compile', '--policies', EXAMPLE]), runCli(['compile', '--policies', EXAMPLE])]);
    expect(first.code, first.stderr).toBe(0);
    expect(second.code, second.stderr).toBe(0);
    expect(first.stdout).toMatch(/^-- Generated by rlsctl compile from policies\/saas\.yaml\.\n/);
    expect(first.stdout).toContain('\nCOMMIT;\n');
    expect(second.stdout).toBe(first.stdout);
  });

  it('-o FILE writes the script there, the same as stdout, and says so on stderr', async () => {
    const dir = path.join(tmp, 'out-ok');
    mkdirSync(dir);
    const file = path.join(dir, 'rls.sql');
    const [written, printed] = await Promise.all([runCli(['compile', '--policies', EXAMPLE, '-o', file]), runCli(['compile', '--policies', EXAMPLE])]);
    expect(written).toEqual({ code: 0, stdout: '', stderr: `wrote ${file}\n` });
    expect(readFileSync(file, 'utf8')).toBe(printed.stdout);
    expect(readdirSync(dir)).toEqual(['rls.sql']);
  });

  it('-o FILE: a failing compile leaves an existing FILE untouched and no temporary file behind', async () => {
    const dir = path.join(tmp, 'out-keep');
    mkdirSync(dir);
    const file = path.join(dir, 'rls.sql');
    writeFileSync(file, '-- the previous script\n');
    const result = await runCli(['compile', '--policies', SEVERAL, '-o', file]);
    expect(result.code).toBe(2);
    expect(readFileSync(file, 'utf8')).toBe('-- the previous script\n');
    expect(readdirSync(dir)).toEqual(['rls.sql']);
  });

  it('-o FILE that cannot be written: exit 2, no temporary file behind', async () => {
    const dir = path.join(tmp, 'out-dir');
    mkdirSync(path.join(dir, 'rls.sql'), { recursive: true });
    const result = await runCli(['compile', '--policies', EXAMPLE, '-o', path.join(dir, 'rls.sql')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`rlsctl: cannot write ${path.join(dir, 'rls.sql')}`);
    expect(readdirSync(dir)).toEqual(['rls.sql']);
    const missing = await runCli(['compile', '--policies', EXAMPLE, '-o', path.join(tmp, 'no-such-folder', 'rls.sql')]);
    expect(missing.code).toBe(2);
  });

  it('merges a folder of policy files into one script', async () => {
    const result = await runCli(['compile', '--policies', 'fixtures/policy/multi']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^-- Generated by rlsctl compile from fixtures\/policy\/multi\/00-base\.yaml, fixtures\/policy\/multi\/10-app\.yml, fixtures\/policy\/multi\/20-billing\.yaml\./,
    );
    expect(result.stdout).toContain('CREATE POLICY rlsctl_tenant_guard ON billing.invoices\n');
    expect(result.stdout).toContain("current_setting('app.current_org', true)");
  });
});

describeEachServer('rlsctl compile output on a real server', (ctx) => {
  const app = uniqueName('app');
  const support = uniqueName('support');
  let script = '';

  /** Policies, RLS flags and policy expressions of the app schema, as the catalog has them. */
  async function snapshot(): Promise<unknown[]> {
    const { rows } = await ctx.db.query(`
      SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, p.polname, p.polpermissive, p.polcmd,
             pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS qual, pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) AS check
        FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_catalog.pg_policy p ON p.polrelid = c.oid
       WHERE n.nspname = 'app' AND c.relkind IN ('r', 'p')
       ORDER BY c.relname, p.polname`);
    return rows;
  }

  beforeAll(async () => {
    await loadParser();
    await ctx.db.runScript(`
      DO $$ BEGIN
        CREATE ROLE ${app}; CREATE ROLE ${support};
      EXCEPTION WHEN duplicate_object THEN NULL; END $$;
      CREATE SCHEMA app;
      CREATE TABLE app.tickets (id int, tenant_id uuid NOT NULL, status text, created date NOT NULL) PARTITION BY RANGE (created);
      CREATE TABLE app.tickets_2025 PARTITION OF app.tickets FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
      CREATE TABLE app.tickets_2026 PARTITION OF app.tickets FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
      CREATE TABLE app."Odd Name" ("Tenant Id" uuid NOT NULL, "select" int);
    `);
    const dir = path.join(tmp, `db-${ctx.server.name}`.replace(/[^\w-]/g, '_'));
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      path.join(dir, 'policy.yaml'),
      `version: 1
roles: { app: [${app}] }
schemas:
  app:
    tables:
      tickets:
        policies:
          - name: support_reads
            to: [${support}]
            for: select
            using: "status LIKE 'open%' -- support sees open tickets; closed ones are archived"
      Odd Name:
        column: Tenant Id
        indexes: [[select]]
`,
    );
    const result = await runCli(['compile', '--policies', path.join(dir, 'policy.yaml')]);
    expect(result.code).toBe(0);
    script = result.stdout;
  });

  it('runs, twice, to the same catalog: every partition gets the policies, the commented expression intact', async () => {
    // As users run it: psql -v ON_ERROR_STOP=1 -f (its \\gexec builds the partitioned table's index partition by partition).
    const file = path.join(tmp, `rls-${ctx.server.name}.sql`.replace(/[^\w.-]/g, '_'));
    writeFileSync(file, script);
    const run1 = await runPsql(ctx.db.url, ['-f', file]);
    expect(run1.code, run1.stderr).toBe(0);
    const first = await snapshot();
    const run2 = await runPsql(ctx.db.url, ['-f', file]);
    expect(run2.code, run2.stderr).toBe(0);
    expect(await snapshot()).toEqual(first);

    const rows = first as Array<{ relname: string; polname: string; qual: string; relrowsecurity: boolean; relforcerowsecurity: boolean }>;
    for (const table of ['tickets', 'tickets_2025', 'tickets_2026']) {
      const policies = rows.filter((r) => r.relname === table);
      expect(policies.map((r) => r.polname)).toEqual(['rlsctl_tenant_access', 'rlsctl_tenant_guard', 'support_reads']);
      expect(policies.every((r) => r.relrowsecurity && r.relforcerowsecurity)).toBe(true);
      expect(policies.find((r) => r.polname === 'support_reads')?.qual).toBe("(status ~~ 'open%'::text)");
    }
    expect(rows.filter((r) => r.relname === 'Odd Name').map((r) => r.polname)).toEqual(['rlsctl_tenant_access', 'rlsctl_tenant_guard']);
    const { rows: indexes } = await ctx.db.query(
      "SELECT indexname FROM pg_catalog.pg_indexes WHERE schemaname = 'app' AND tablename = 'Odd Name' ORDER BY indexname",
    );
    expect(indexes).toEqual([{ indexname: 'Odd Name_Tenant Id_select_idx' }]);
  });
});
