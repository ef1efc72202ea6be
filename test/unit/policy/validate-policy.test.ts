import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PolicyInvalid, type PolicyDiagnostic } from '../../../src/errors.js';
import { loadParser } from '../../../src/policy/expression.js';
import { loadPolicy, parsePolicy, readPolicySources } from '../../../src/policy/load-policy.js';
import { validatePolicy } from '../../../src/policy/validate-policy.js';
import { ROOT } from '../../helpers/cli.js';

/**
 * Every rule of the Validation section of the policy-file spec, one invalid
 * fixture each, with the exact place and words of every problem reported;
 * and the valid fixtures, near misses included, accepted.
 */

const FIXTURES = path.join(ROOT, 'fixtures/policy');
const INVALID = path.join(FIXTURES, 'invalid');
const VALID = path.join(FIXTURES, 'valid');

interface Expected {
  /** The file, relative to the fixture (for folder fixtures); the fixture itself otherwise. */
  file?: string;
  line: number;
  column: number;
  message: string;
  hint?: string;
}

const EXPRESSION_HINT = 'write one SQL boolean expression, e.g. `owner_id = (SELECT current_user_id())`';
const TOO_LONG_HINT = 'PostgreSQL would truncate it silently, so the name in the database would differ from the file';

const INVALID_CASES: Record<string, Expected[]> = {
  'membership-errors.yaml': [
    {
      line: 5,
      column: 5,
      message: '`tenant.membership` has no `user_column`',
      hint: 'name the column of the membership table that holds the user: `user_column: user_id`',
    },
    { line: 5, column: 12, message: 'the membership table `memberships` names no schema', hint: 'write it as schema.table, e.g. `app.memberships`' },
    { line: 6, column: 5, message: 'unknown key `user_colum` in `tenant.membership`', hint: 'did you mean `user_column`?' },
    {
      line: 8,
      column: 49,
      message: "the claim path `sub'); DROP TABLE x; --` is not a dotted path of JSON keys",
      hint: 'write the keys of letters, digits, `_` and `-` joined by dots, e.g. `sub` or `app_metadata.user_id`',
    },
    { line: 8, column: 82, message: 'unknown tenant type `uid`', hint: 'did you mean `uuid`?' },
  ],
  'membership-table-declared.yaml': [
    {
      line: 5,
      column: 3,
      message: '`tenant.setting` and `tenant.membership.user.setting` are both `app.user_id`: one setting cannot hold the user and the active tenant',
      hint: 'name two settings, e.g. `app.user_id` for the user and `app.tenant_id` for the active tenant',
    },
    {
      line: 15,
      column: 7,
      message:
        "the membership table app.memberships is declared tenant: rlsctl would force row level security on it, and its lookup function, which reads it as the table's owner, would find no membership",
      hint: 'declare it `exempt` with a reason (e.g. `{ mode: exempt, reason: membership lookup }`); protect it with row level security that is enabled but not forced, if at all (see docs/policy-file.md, "Memberships")',
    },
  ],
  'unknown-key-near-miss.yaml': [{ line: 8, column: 9, message: 'unknown key `colum` in the table `app.invoices`', hint: 'did you mean `column`?' }],
  'unknown-key.yaml': [
    {
      line: 2,
      column: 1,
      message: 'unknown key `owner` in the top-level mapping',
      hint: 'allowed keys here: version, tenant, roles, schemas, partitions, engine',
    },
  ],
  'wrong-type-list.yaml': [{ line: 3, column: 8, message: '`roles.app` must be a list of names', hint: 'found string "app_user"' }],
  'partitions-not-boolean.yaml': [{ line: 5, column: 16, message: '`partitions.protect_new` must be true or false', hint: 'found string "yes"' }],
  'wrong-type-boolean.yaml': [{ line: 9, column: 42, message: '`unique` must be true or false', hint: 'found string "yes"' }],
  'missing-version.yaml': [{ line: 2, column: 1, message: 'the policy file has no `version`', hint: 'add `version: 1` as the first line' }],
  'version-2.yaml': [{ line: 1, column: 10, message: 'unsupported version 2', hint: 'this rlsctl reads format version 1: write `version: 1`' }],
  'setting-without-dot.yaml': [
    {
      line: 3,
      column: 12,
      message: 'the setting `tenant_id` has no dot',
      hint: 'PostgreSQL only accepts custom settings with a prefix: write `app.tenant_id`',
    },
  ],
  'claim-path-invalid.yaml': [
    {
      line: 3,
      column: 10,
      message: 'the claim path "app_metadata.org id" is not a valid claim path',
      hint: 'write claim names of letters, digits, `_` and `-` (at most 63 each) joined by dots, e.g. `app_metadata.org_id` (at most 16 names)',
    },
  ],
  'unknown-type.yaml': [{ line: 4, column: 9, message: 'unknown tenant type `uid`', hint: 'did you mean `uuid`?' }],
  'unknown-mode.yaml': [{ line: 8, column: 15, message: 'unknown mode `shard` for the table `app.countries`', hint: 'did you mean `shared`?' }],
  'empty-app-roles.yaml': [{ line: 3, column: 8, message: '`roles.app` is empty', hint: 'policies are made TO the app roles: name at least one' }],
  'missing-roles.yaml': [
    {
      line: 1,
      column: 1,
      message: 'the policy file has no `roles` section',
      hint: 'add `roles: { app: [your_app_role] }`: the roles application traffic runs as',
    },
  ],
  'role-in-app-and-bypass.yaml': [
    {
      line: 4,
      column: 22,
      message: 'the role `app_user` is both an app role and a bypass role',
      hint: 'an app role must never bypass row level security: remove it from one of the lists',
    },
  ],
  'exempt-without-reason.yaml': [
    {
      line: 7,
      column: 7,
      message: 'the table `app.schema_migrations` is exempt without a reason',
      hint: 'add `reason: ...`: why this table holds no tenant data; audit lists it',
    },
  ],
  'exempt-shorthand.yaml': [
    {
      line: 7,
      column: 26,
      message: 'the table `app.schema_migrations` is exempt without a reason',
      hint: 'write `{ mode: exempt, reason: "why this table holds no tenant data" }`',
    },
  ],
  'key-not-for-mode.yaml': [
    {
      line: 9,
      column: 9,
      message: '`column` does not apply to a shared table (the table `app.countries`)',
      hint: 'keys of a shared table: mode, indexes, policies',
    },
  ],
  'identifier-too-long.yaml': [
    {
      line: 7,
      column: 7,
      message: `the table name \`${'a'.repeat(64)}\` is 64 bytes long; PostgreSQL identifiers hold at most 63 bytes`,
      hint: TOO_LONG_HINT,
    },
  ],
  'identifier-too-many-bytes.yaml': [
    {
      line: 9,
      column: 17,
      message: `the tenant column \`${'é'.repeat(32)}\` is 64 bytes long; PostgreSQL identifiers hold at most 63 bytes`,
      hint: TOO_LONG_HINT,
    },
  ],
  'invalid-identifier.yaml': [
    { line: 7, column: 7, message: 'the table name "bad\\tname" is not a valid PostgreSQL identifier', hint: 'use a name without control characters' },
  ],
  'expression-syntax-error.yaml': [
    {
      line: 12,
      column: 20,
      message: 'the expression "owner_id = = 1" is not valid: PostgreSQL\'s parser rejects it: syntax error at or near "="',
      hint: EXPRESSION_HINT,
    },
  ],
  'expression-second-statement.yaml': [
    {
      line: 12,
      column: 20,
      message: 'the expression "true); DROP TABLE a; --" is not valid: it holds a `;`: a policy expression is one expression, never a statement or several',
      hint: EXPRESSION_HINT,
    },
  ],
  'expression-from-clause.yaml': [
    {
      line: 12,
      column: 20,
      message:
        'the expression "true) FROM pg_catalog.pg_authid WHERE (rolsuper" is not valid: it closes a parenthesis it did not open, so what follows would sit outside the expression',
      hint: EXPRESSION_HINT,
    },
  ],
  'policy-name-reserved.yaml': [
    {
      line: 9,
      column: 19,
      message: 'the policy name `rlsctl_tenant_guard` starts with `rlsctl_`, which rlsctl keeps for the policies it generates',
      hint: 'choose another name',
    },
  ],
  'via-parent-undeclared.yaml': [
    { line: 8, column: 9, message: 'the `via` parent app.invoices of app.invoice_lines is not declared', hint: 'declare app.invoices as a tenant table' },
  ],
  'via-parent-shared.yaml': [
    {
      line: 9,
      column: 9,
      message: 'the `via` parent app.countries of app.regions is declared shared, not tenant',
      hint: 'a row can only inherit its tenant from a tenant-protected parent',
    },
  ],
  'via-cycle.yaml': [
    {
      line: 8,
      column: 9,
      message: '`via` makes a cycle: app.folders -> app.documents -> app.folders',
      hint: 'one table in the chain must carry the tenant column itself',
    },
    {
      line: 10,
      column: 9,
      message: '`via` makes a cycle: app.documents -> app.folders -> app.documents',
      hint: 'one table in the chain must carry the tenant column itself',
    },
  ],
  'index-name-clash.yaml': [
    {
      line: 12,
      column: 13,
      message: `the index \`by_number\` of app.orders (tenant_id, number) has the name of the index by_number of app.invoices (${rel('invalid/index-name-clash.yaml')}:9:13)`,
      hint: 'PostgreSQL keeps one relation per name in a schema: choose another `name`',
    },
  ],
  'several-errors.yaml': [
    {
      line: 3,
      column: 12,
      message: 'the setting `tenant_id` has no dot',
      hint: 'PostgreSQL only accepts custom settings with a prefix: write `app.tenant_id`',
    },
    { line: 4, column: 9, message: 'unknown tenant type `uid`', hint: 'did you mean `uuid`?' },
    { line: 11, column: 9, message: 'unknown key `colum` in the table `app.invoices`', hint: 'did you mean `column`?' },
    {
      line: 12,
      column: 7,
      message: 'the table `app.schema_migrations` is exempt without a reason',
      hint: 'add `reason: ...`: why this table holds no tenant data; audit lists it',
    },
  ],
  'invalid-yaml-syntax.yaml': [
    {
      line: 4,
      column: 1,
      message: 'invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
      hint: 'check the indentation and quoting around this place',
    },
  ],
  'duplicate-key.yaml': [
    {
      line: 9,
      column: 7,
      message: 'the key `invoices` appears twice in one mapping: here and at line 7',
      hint: 'YAML keeps only one of them: merge the two into one entry',
    },
  ],
  'schema-in-two-files': [
    {
      file: 'b.yaml',
      line: 6,
      column: 3,
      message: `the schema \`app\` is declared twice: at ${rel('invalid/schema-in-two-files/a.yaml')}:5:3 and at ${rel('invalid/schema-in-two-files/b.yaml')}:6:3`,
      hint: 'declare it once; merge the two declarations',
    },
  ],
  'roles-in-two-files': [
    {
      file: 'b.yaml',
      line: 2,
      column: 1,
      message: `\`roles\` is declared twice: at ${rel('invalid/roles-in-two-files/a.yaml')}:2:1 and at ${rel('invalid/roles-in-two-files/b.yaml')}:2:1`,
      hint: 'declare it once; merge the two declarations',
    },
  ],
};

/** A fixture path as the validator reports it: the tests read fixtures by their path relative to the working folder. */
function rel(fixture: string): string {
  return path.relative(process.cwd(), path.join(FIXTURES, fixture));
}

async function diagnosticsOf(fixture: string): Promise<PolicyDiagnostic[]> {
  const sources = await readPolicySources(path.relative(process.cwd(), fixture));
  return validatePolicy(sources).diagnostics;
}

beforeAll(async () => {
  await loadParser();
});

describe('invalid policy files', () => {
  it('every invalid fixture has its expected problems listed here', () => {
    expect(readdirSync(INVALID).sort()).toEqual(Object.keys(INVALID_CASES).sort());
  });

  it.each(Object.entries(INVALID_CASES))('%s: every problem with its file, line, column and hint', async (name, expected) => {
    const fixture = path.join(INVALID, name);
    const actual = await diagnosticsOf(fixture);
    const base = rel(`invalid/${name}`);
    expect(actual).toEqual(
      expected.map((e) => ({
        location: { file: e.file ? path.join(base, e.file) : base, line: e.line, column: e.column },
        message: e.message,
        hint: e.hint,
      })),
    );
  });

  it('the line and column point at the offending text itself', async () => {
    // Not only numbers that happen to match: the text at the reported place is the key or value named.
    for (const [name, token] of [
      ['unknown-key-near-miss.yaml', 'colum:'],
      ['setting-without-dot.yaml', 'tenant_id'],
      ['expression-second-statement.yaml', '"true); DROP'],
      ['role-in-app-and-bypass.yaml', 'app_user]'],
      ['identifier-too-many-bytes.yaml', 'éé'],
    ] as const) {
      const [d] = await diagnosticsOf(path.join(INVALID, name));
      const line = readFileSync(path.join(INVALID, name), 'utf8').split('\n')[d.location.line - 1];
      expect(line.slice(d.location.column - 1).startsWith(token), `${name}: ${line}`).toBe(true);
    }
  });

  it('loadPolicy throws PolicyInvalid carrying every problem, sorted by place', async () => {
    const error = await loadPolicy(path.join(INVALID, 'several-errors.yaml')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PolicyInvalid);
    const diagnostics = (error as PolicyInvalid).diagnostics;
    expect(diagnostics).toHaveLength(4);
    expect((error as PolicyInvalid).exitCode).toBe(2);
    expect((error as PolicyInvalid).message).toBe('the policy file is invalid: 4 problems');
    const lines = diagnostics.map((d) => d.location.line);
    expect(lines).toEqual([...lines].sort((a, b) => a - b));
  });

  it('a file with a syntax error does not hide the problems of the other files', async () => {
    const diagnostics = validatePolicy([
      { file: 'a.yaml', text: 'version: 1\nroles: {app: [x]\n' },
      { file: 'b.yaml', text: 'version: 2\n' },
    ]).diagnostics;
    expect(diagnostics.map((d) => `${d.location.file}:${d.location.line}:${d.location.column}`)).toEqual(['a.yaml:3:1', 'b.yaml:1:10']);
    // a.yaml may well hold `roles`: no "no roles section" guess about it.
    expect(diagnostics.some((d) => d.message.includes('no `roles`'))).toBe(false);
  });

  it('an invalid app role is reported as itself, not as an empty list', async () => {
    const diagnostics = validatePolicy([{ file: 'p.yaml', text: `version: 1\nroles:\n  app: [${'r'.repeat(64)}]\n` }]).diagnostics;
    expect(diagnostics.map((d) => d.message)).toEqual([`the app role \`${'r'.repeat(64)}\` is 64 bytes long; PostgreSQL identifiers hold at most 63 bytes`]);
  });

  it('a missing roles section is reported beside the other problems, naming every file', async () => {
    const diagnostics = validatePolicy([
      { file: 'a.yaml', text: 'version: 1\nowner: x\n' },
      { file: 'b.yaml', text: 'version: 1\n' },
    ]).diagnostics;
    expect(diagnostics.map((d) => d.message)).toEqual([
      'none of the policy files (a.yaml, b.yaml) has a `roles` section',
      'unknown key `owner` in the top-level mapping',
    ]);
  });

  it.each([
    ['a C1 control character', 'bad\u0085name'],
    ['a lone surrogate, which is not UTF-8', 'bad\ud800name'],
    ['only spaces', '   '],
  ])('rejects a table name with %s', (_, name) => {
    const text = `version: 1\nroles: { app: [app_user] }\nschemas:\n  app:\n    tables:\n      ${JSON.stringify(name)}: tenant\n`;
    const diagnostics = validatePolicy([{ file: 'p.yaml', text }]).diagnostics;
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0].message).toBe(`the table name ${JSON.stringify(name)} is not a valid PostgreSQL identifier`);
    expect(diagnostics[0].location).toEqual({ file: 'p.yaml', line: 6, column: 7 });
  });

  it('a recursive YAML alias is refused instead of expanded forever', () => {
    const text = 'version: 1\nroles: { app: [app_user] }\nschemas: &s\n  app:\n    tables:\n      t: *s\n';
    const diagnostics = validatePolicy([{ file: 'p.yaml', text }]).diagnostics;
    expect(diagnostics.map((d) => d.message)).toEqual(['a YAML alias inside the value it names']);
  });

  it('resolves aliases but refuses YAML merge keys, saying why', () => {
    const text = 'version: 1\nroles: { app: &r [app_user] }\nschemas:\n  app:\n    tables:\n      base: &b { commands: [select] }\n      t:\n        <<: *b\n';
    const diagnostics = validatePolicy([{ file: 'p.yaml', text }]).diagnostics;
    expect(diagnostics).toEqual([
      {
        location: { file: 'p.yaml', line: 8, column: 9 },
        message: 'unknown key `<<` in the table `app.t`',
        hint: 'YAML merge keys are not part of YAML 1.2, which rlsctl reads: write the keys out (an alias of a whole value, `*name`, works)',
      },
    ]);
  });

  it('names the clash of an index rlsctl derives with another table', () => {
    // An index named like a declared table, and two indexes whose derived names are the same.
    const text = [
      'version: 1',
      'roles: { app: [app_user] }',
      'schemas:',
      '  app:',
      '    tables:',
      '      invoices:',
      '        indexes: [{ columns: [number], name: orders }]',
      '      orders: tenant',
      '      logs:',
      '        indexes: [[tenant_id], [tenant_id]]',
    ].join('\n');
    const diagnostics = validatePolicy([{ file: 'p.yaml', text }]).diagnostics;
    expect(diagnostics.map((d) => [d.location.line, d.message])).toEqual([
      [7, 'the index `orders` of app.invoices (tenant_id, number) has the name of the table app.orders (p.yaml:8:7)'],
      [10, 'the index `logs_tenant_id_idx` of app.logs (tenant_id) has the name of the index logs_tenant_id_idx of app.logs (p.yaml:10:19)'],
    ]);
  });
});

describe('valid policy files', () => {
  const validFiles = readdirSync(VALID).sort();

  it.each(validFiles)('%s is valid', async (name) => {
    expect(await diagnosticsOf(path.join(VALID, name))).toEqual([]);
  });

  it('the example policies/saas.yaml is valid', async () => {
    const model = await loadPolicy(path.join(ROOT, 'policies/saas.yaml'));
    expect(model.tables.map((t) => `${t.schema}.${t.name}:${t.mode}`)).toContain('app.task_comments:tenant');
  });

  it('fills in the defaults of a minimal file', async () => {
    const model = await loadPolicy(path.join(VALID, 'minimal.yaml'));
    expect(model.tenant).toEqual({ setting: 'app.tenant_id', type: 'uuid', column: 'tenant_id' });
    expect(model.roles).toEqual({ app: ['app_user'], bypass: [] });
    expect(model.tables).toEqual([]);
  });

  it('reads partitions.protect_new; absent, it is off', async () => {
    expect((await loadPolicy(path.join(VALID, 'partitions.yaml'))).partitions).toEqual({ protectNew: true });
    expect((await loadPolicy(path.join(VALID, 'minimal.yaml'))).partitions).toBeUndefined();
  });

  it('reads every key of the long form', async () => {
    const model = await loadPolicy(path.join(VALID, 'full.yaml'));
    expect(model.tenant).toEqual({ setting: 'app.tenant_id', type: 'bigint', column: 'org_id' });
    expect(model.schemas).toEqual(['public', 'billing']);
    const byName = new Map(model.tables.map((t) => [`${t.schema}.${t.name}`, t]));
    const invoices = byName.get('public.invoices');
    expect(invoices).toMatchObject({ mode: 'tenant', column: 'account_id', commands: ['select', 'insert', 'update', 'delete'] });
    expect(invoices?.indexes.map((i) => [i.columns, i.unique, i.name])).toEqual([
      [['created_at'], false, undefined],
      [['number'], true, 'invoices_number_per_tenant'],
    ]);
    expect(byName.get('public.events')).toMatchObject({ commands: ['select', 'insert'] });
    expect(byName.get('billing.payments')).toMatchObject({
      via: { parentSchema: 'public', parentName: 'invoices', columns: ['invoice_id'], references: ['id'] },
      column: undefined,
    });
    expect(byName.get('public.schema_migrations')).toMatchObject({ mode: 'exempt', reason: 'bookkeeping of the migration tool, holds no tenant data' });
    const tickets = byName.get('public.support_tickets');
    expect(tickets?.policies.map((p) => [p.name, p.to, p.command, p.permissive, p.using, p.check])).toEqual([
      ['support_read', ['support_agent'], 'select', true, 'true', undefined],
      ['no_closed_edits', ['app_user'], 'update', false, "status <> 'closed'", "status <> 'closed'"],
      ['insert_open_only', ['app_user'], 'insert', true, undefined, "status = 'open'"],
    ]);
  });

  it('accepts the near misses as written', async () => {
    const model = await loadPolicy(path.join(VALID, 'near-misses.yaml'));
    expect(model.tenant.setting).toBe('app.tenant.id');
    expect(model.roles.app).toEqual(['app_user', 'select']);
    expect(model.schemas).toEqual(['My Schema', 'empty_schema', 'null_tables', 'bare_schema']);
    const names = model.tables.map((t) => `${t.name}:${t.mode}`);
    expect(names).toEqual(['Order:tenant', 'select:shared', 'plain_default:tenant', `${'a'.repeat(63)}:tenant`, `${'é'.repeat(31)}a:tenant`, 'notes:tenant']);
    const notes = model.tables.find((t) => t.name === 'notes');
    // The alias `*app_roles` is the list it names.
    expect(notes?.policies[0].to).toEqual(['app_user', 'select']);
    expect(notes?.policies[3].using).toBe('owner = current_user\nOR reviewer = current_user\n');
  });

  it('merges the files of a folder, sorted by name, *.yaml and *.yml only', async () => {
    const model = await loadPolicy(path.relative(process.cwd(), path.join(FIXTURES, 'multi')));
    expect(model.files).toEqual([rel('multi/00-base.yaml'), rel('multi/10-app.yml'), rel('multi/20-billing.yaml')]);
    expect(model.tenant).toEqual({ setting: 'app.current_org', type: 'uuid', column: 'org_id' });
    expect(model.roles).toEqual({ app: ['app_user'], bypass: ['migrator'] });
    expect(model.schemas).toEqual(['app', 'billing']);
    expect(model.tables.map((t) => [t.location.file, `${t.schema}.${t.name}`])).toEqual([
      [rel('multi/10-app.yml'), 'app.projects'],
      [rel('multi/10-app.yml'), 'app.tasks'],
      [rel('multi/20-billing.yaml'), 'billing.invoices'],
      [rel('multi/20-billing.yaml'), 'billing.plans'],
    ]);
  });

  it('parsePolicy validates sources held in memory, as diff does for git revisions', async () => {
    const model = await parsePolicy([{ file: 'git:main:policies/p.yaml', text: 'version: 1\nroles: { app: [a] }\n' }]);
    expect(model.files).toEqual(['git:main:policies/p.yaml']);
    await expect(parsePolicy([{ file: 'x.yaml', text: 'version: 1\n' }])).rejects.toBeInstanceOf(PolicyInvalid);
  });

  it('every complete example in docs/policy-file.md (one with version and roles) is valid', async () => {
    const docs = readFileSync(path.join(ROOT, 'docs/policy-file.md'), 'utf8');
    const examples = [...docs.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]).filter((text) => /^version: 1$/m.test(text) && /^roles:/m.test(text));
    expect(examples.length).toBeGreaterThanOrEqual(2);
    for (const [i, text] of examples.entries()) {
      expect(validatePolicy([{ file: `docs example ${i + 1}`, text }]).diagnostics).toEqual([]);
    }
  });
});

describe('the path given to --policies', () => {
  it('a missing path is a usage error that says what to do', async () => {
    await expect(readPolicySources(path.join(FIXTURES, 'no-such-file.yaml'))).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringContaining('no-such-file.yaml: no such file or folder'),
      hint: 'check the path given to --policies',
    });
  });

  it('a folder without YAML files is a usage error', async () => {
    await expect(readPolicySources(path.join(ROOT, 'src/report'))).rejects.toMatchObject({
      exitCode: 2,
      message: `the folder ${path.join(ROOT, 'src/report')} holds no *.yaml or *.yml policy file`,
    });
  });
});
