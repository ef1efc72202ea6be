import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { parse, parseDocument } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadParser } from '../../../src/policy/expression.js';
import { readPolicySources } from '../../../src/policy/load-policy.js';
import { validatePolicy } from '../../../src/policy/validate-policy.js';
import { ROOT } from '../../helpers/cli.js';

/**
 * The JSON Schema that editors use and the validator must agree: what one
 * accepts the other accepts, and what the schema can express it rejects as
 * the validator does. What a schema cannot express is listed by name, so a
 * new invalid fixture forces a decision about which side it falls on.
 */

const SCHEMA_FILE = path.join(ROOT, 'schema/policy-file.schema.json');
const FIXTURES = path.join(ROOT, 'fixtures/policy');
const INVALID = path.join(FIXTURES, 'invalid');

/** Invalid fixtures whose problem a JSON Schema can say: both reject them. */
const SCHEMA_EXPRESSIBLE = [
  'unknown-key-near-miss.yaml', // additionalProperties: false (the "did you mean" is the validator's)
  'unknown-key.yaml',
  'wrong-type-list.yaml', // type
  'wrong-type-boolean.yaml',
  'partitions-not-boolean.yaml', // type
  'missing-version.yaml', // required
  'version-2.yaml', // const
  'setting-without-dot.yaml', // pattern
  'unknown-type.yaml', // enum
  'claim-path-invalid.yaml', // pattern
  'unknown-mode.yaml',
  'empty-app-roles.yaml', // minItems
  'exempt-without-reason.yaml', // if mode = exempt then required reason
  'exempt-shorthand.yaml', // the shorthand enum holds tenant and shared only
  'key-not-for-mode.yaml', // if mode = shared then propertyNames
  'identifier-too-long.yaml', // maxLength: 64 ASCII characters are 64 bytes
  'invalid-identifier.yaml', // pattern: no control characters
  'policy-name-reserved.yaml', // not pattern ^rlsctl_
  'several-errors.yaml',
  'membership-errors.yaml', // required, additionalProperties, pattern, enum
];

/** Invalid fixtures a JSON Schema cannot express, and why; the validator alone rejects them. */
const VALIDATOR_ONLY: Record<string, string> = {
  'missing-roles.yaml': 'roles may live in another file of the folder: a per-file schema cannot require them',
  'identifier-too-many-bytes.yaml': 'maxLength counts characters, PostgreSQL counts UTF-8 bytes',
  'expression-syntax-error.yaml': "only PostgreSQL's parser knows SQL",
  'expression-second-statement.yaml': "only PostgreSQL's parser knows SQL",
  'expression-from-clause.yaml': "only PostgreSQL's parser knows SQL",
  'role-in-app-and-bypass.yaml': 'a relation between two lists',
  'via-parent-undeclared.yaml': 'a reference to another table',
  'via-parent-shared.yaml': 'a reference to another table and its mode',
  'via-cycle.yaml': 'a cycle of references',
  'index-name-clash.yaml': 'names unique across tables of a schema, derived names included',
  'schema-in-two-files': 'a duplicate across files',
  'roles-in-two-files': 'a duplicate across files',
  'invalid-yaml-syntax.yaml': 'not YAML at all: there is no document to check',
  'duplicate-key.yaml': 'a YAML-level error: the parsed document keeps one of the keys',
  'membership-table-declared.yaml': 'a reference to another table and its mode, and two settings that must differ',
};

let validateSchema: (data: unknown) => boolean;
let schemaErrors: () => string;

beforeAll(async () => {
  await loadParser();
  // strict: unknown keywords or ambiguous types in the schema are errors, not silently ignored.
  // strictRequired is off: `required` inside if/then names properties declared beside the if.
  const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
  const validate = ajv.compile(JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')));
  validateSchema = (data) => validate(data) as boolean;
  schemaErrors = () => ajv.errorsText(validate.errors);
});

function filesOf(fixture: string): string[] {
  return statSync(fixture).isDirectory()
    ? readdirSync(fixture)
        .filter((f) => /\.ya?ml$/.test(f))
        .sort()
        .map((f) => path.join(fixture, f))
    : [fixture];
}

function schemaAccepts(file: string): boolean {
  return validateSchema(parse(readFileSync(file, 'utf8')));
}

async function validatorAccepts(fixture: string): Promise<boolean> {
  return validatePolicy(await readPolicySources(fixture)).diagnostics.length === 0;
}

describe('the JSON Schema of the policy file', () => {
  it('is a draft-07 schema (what editors support best) with a description on every property', () => {
    const schema = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8'));
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    const missing: string[] = [];
    const visit = (node: unknown, where: string): void => {
      if (Array.isArray(node)) return node.forEach((n, i) => visit(n, `${where}[${i}]`));
      if (typeof node !== 'object' || node === null) return;
      const record = node as Record<string, unknown>;
      // In draft-07 keywords beside $ref are ignored: constraints must sit in an allOf.
      if ('$ref' in record && Object.keys(record).length > 1) missing.push(`${where}: keywords beside $ref`);
      for (const [key, value] of Object.entries((record.properties ?? {}) as Record<string, Record<string, unknown>>)) {
        if (typeof value.description !== 'string') missing.push(`${where}.properties.${key}`);
      }
      // An `if` only tests a value; the properties it names are described where they are declared.
      for (const [key, value] of Object.entries(record)) if (key !== 'if') visit(value, `${where}.${key}`);
    };
    visit(schema, '#');
    expect(missing).toEqual([]);
  });

  it('is the one policies/saas.yaml names for editors', () => {
    const first = readFileSync(path.join(ROOT, 'policies/saas.yaml'), 'utf8').split('\n')[0];
    const match = /^# yaml-language-server: \$schema=(.+)$/.exec(first);
    expect(match).not.toBeNull();
    expect(path.resolve(ROOT, 'policies', match![1])).toBe(SCHEMA_FILE);
  });

  it.each([...readdirSync(path.join(FIXTURES, 'valid')).map((f) => `valid/${f}`), 'multi'])('accepts %s, as the validator does', async (fixture) => {
    const full = path.join(FIXTURES, fixture);
    expect(await validatorAccepts(full)).toBe(true);
    for (const file of filesOf(full)) expect(schemaAccepts(file), `${file}: ${schemaErrors()}`).toBe(true);
  });

  it('accepts policies/saas.yaml, as the validator does', async () => {
    const file = path.join(ROOT, 'policies/saas.yaml');
    expect(await validatorAccepts(file)).toBe(true);
    expect(schemaAccepts(file), schemaErrors()).toBe(true);
  });

  it('sorts every invalid fixture into exactly one of the two lists', () => {
    const listed = [...SCHEMA_EXPRESSIBLE, ...Object.keys(VALIDATOR_ONLY)];
    expect(new Set(listed).size).toBe(listed.length);
    expect(listed.sort()).toEqual(readdirSync(INVALID).sort());
  });

  it.each(SCHEMA_EXPRESSIBLE)('rejects %s, as the validator does', async (fixture) => {
    const file = path.join(INVALID, fixture);
    expect(await validatorAccepts(file)).toBe(false);
    expect(schemaAccepts(file)).toBe(false);
  });

  it.each(Object.entries(VALIDATOR_ONLY))('%s is rejected by the validator alone (%s)', async (fixture) => {
    const full = path.join(INVALID, fixture);
    expect(await validatorAccepts(full)).toBe(false);
    for (const file of filesOf(full)) {
      const doc = parseDocument(readFileSync(file, 'utf8'), { uniqueKeys: true });
      if (doc.errors.length > 0) {
        // YAML-level: the file never reaches a schema check.
        expect(['invalid-yaml-syntax.yaml', 'duplicate-key.yaml']).toContain(fixture);
        continue;
      }
      // Every file of it passes the schema: if the schema learns to say it, move the fixture to the other list.
      expect(schemaAccepts(file), `${file}: ${schemaErrors()}`).toBe(true);
    }
  });

  it.each([
    ['a policy for insert with a USING expression', { name: 'p', to: ['r'], for: 'insert', using: 'true' }],
    ['a policy for select with a WITH CHECK expression', { name: 'p', to: ['r'], for: 'select', check: 'true' }],
    ['a policy with neither expression', { name: 'p', to: ['r'] }],
    ['a policy with no roles', { name: 'p', to: [], using: 'true' }],
  ])('rejects %s, as the validator does', async (_, policy) => {
    const doc = { version: 1, roles: { app: ['app_user'] }, schemas: { app: { tables: { t: { policies: [policy] } } } } };
    expect(validateSchema(doc)).toBe(false);
    const text = JSON.stringify(doc); // JSON is YAML
    expect(validatePolicy([{ file: 'p.yaml', text }]).diagnostics).not.toEqual([]);
  });

  it.each([
    ['via with a tenant column', { via: { parent: 'p', columns: ['a'], references: ['id'] }, column: 'org_id' }],
    ['commands on a shared table', { mode: 'shared', commands: ['select'] }],
    ['indexes on an exempt table', { mode: 'exempt', reason: 'r', indexes: [['a']] }],
    ['an index without columns', { indexes: [{ unique: true }] }],
    ['an unknown command', { commands: ['select', 'truncate'] }],
  ])('rejects %s, as the validator does', async (_, table) => {
    const doc = { version: 1, roles: { app: ['app_user'] }, schemas: { app: { tables: { p: 'tenant', t: table } } } };
    expect(validateSchema(doc)).toBe(false);
    expect(validatePolicy([{ file: 'p.yaml', text: JSON.stringify(doc) }]).diagnostics).not.toEqual([]);
  });
});
