import fc from 'fast-check';
import { stringify } from 'yaml';
import { identBytes } from '../../src/compile/quote.js';
import { checkExpression } from '../../src/policy/expression.js';

/**
 * Generators for the property tests (issue 14): names and expressions that try
 * every way out of the SQL rlsctl writes. Call `loadParser()` before using
 * `expression` (it keeps only what the validator accepts).
 */

/** Pieces that mean something to PostgreSQL's lexer, psql's, or rlsctl's own templates. */
const HOSTILE = [
  '"',
  "'",
  '$',
  '\\',
  ';',
  '-',
  '--',
  '/*',
  '*/',
  ' ',
  '(',
  ')',
  '%',
  '%1$s',
  '$rlsctl$',
  '$rlsctl_1$',
  'E',
  'a',
  'Z',
  '_',
  '0',
  'é',
  'ß',
  '😀',
  '\u00a0',
  '\u2028',
  'ﬀ',
];

/** What the validator refuses in a name (control characters, lone surrogates, blank). */
export function refusedName(name: string): boolean {
  return /[\u0000-\u001f\u007f-\u009f]|\p{Cs}/u.test(name) || name.trim() === '';
}

/** Any name PostgreSQL can store and the validator accepts: up to 63 bytes, any Unicode, quotes, dollars, backslashes. */
export const identifier: fc.Arbitrary<string> = fc
  .oneof(
    { weight: 3, arbitrary: fc.string({ unit: fc.constantFrom(...HOSTILE), minLength: 1, maxLength: 24 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 16 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 16 }) },
    // Long names, near the 63-byte limit, of multi-byte characters.
    { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom('é', '😀', 'a', '"', '$'), minLength: 20, maxLength: 40 }) },
  )
  .filter((name) => identBytes(name) <= 63 && !refusedName(name));

/** A name of exactly 63 bytes that ends in a character of several bytes: where cutting a name can split one. */
export const fullName: fc.Arbitrary<string> = fc.tuple(identifier, fc.constantFrom('😀', 'é', '€')).map(([name, last]) => {
  const head = Array.from(name);
  while (identBytes(head.join('')) > 63 - identBytes(last)) head.pop();
  return head.join('').padEnd(63 - identBytes(last), 'a') + last;
});

/** A name with a line break or another control character in it: the validator must refuse it. */
export const controlName: fc.Arbitrary<string> = fc
  .tuple(identifier, fc.constantFrom('\n', '\r', '\t', '\u0000', '\u001b', '\u007f', '\u0085'), identifier)
  .map(([a, c, b]) => `${a}${c}${b}`)
  .filter((name) => identBytes(name) <= 63);

const content = fc.string({ unit: fc.constantFrom(...HOSTILE, '\n', "''", "\\'"), maxLength: 12 });

/** A string literal in each of PostgreSQL's forms, whose value is `content`. */
const literal: fc.Arbitrary<string> = fc.oneof(
  content.map((c) => `'${c.replace(/'/g, "''")}'`),
  content.map((c) => `E'${c.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`),
  fc
    .tuple(fc.constantFrom('', 'q', 'rlsctl', 'rlsctl_1'), content)
    .filter(([tag, c]) => `${c}$${tag}$`.indexOf(`$${tag}$`) === c.length && !c.endsWith('$'))
    .map(([tag, c]) => `$${tag}$${c}$${tag}$`),
);

/**
 * A policy expression over the column `note` that the validator accepts:
 * comparisons with hostile literals, joined by AND / OR, perhaps with a
 * trailing `--` comment.
 */
export const expression: fc.Arbitrary<string> = fc
  .tuple(
    fc.array(fc.tuple(fc.constantFrom('<>', '=', 'IS DISTINCT FROM'), literal), { minLength: 1, maxLength: 3 }),
    fc.constantFrom(' AND ', ' OR '),
    fc.option(fc.string({ unit: fc.constantFrom(...HOSTILE), maxLength: 10 }), { nil: undefined }),
  )
  .map(([parts, join, comment]) => parts.map(([op, lit]) => `note ${op} ${lit}`).join(join) + (comment === undefined ? '' : ` -- ${comment}`))
  .filter((text) => checkExpression(text).ok);

export interface TableCase {
  name: string;
  column: string;
  mode: 'tenant' | 'shared';
  commands?: string[];
  policies: Array<{ name: string; using: string }>;
}

export interface FileCase {
  schema: string;
  role: string;
  tables: TableCase[];
}

const COMMAND_SETS = [undefined, ['select'], ['select', 'insert'], ['update', 'delete']];

export function tableCase(options: { maxPolicies: number }): fc.Arbitrary<TableCase> {
  return fc.record({
    name: identifier,
    column: identifier,
    mode: fc.constantFrom('tenant' as const, 'shared' as const),
    commands: fc.constantFrom(...COMMAND_SETS),
    policies: fc.uniqueArray(fc.record({ name: identifier.filter((n) => !n.startsWith('rlsctl_')), using: expression }), {
      maxLength: options.maxPolicies,
      selector: (p) => p.name,
    }),
  });
}

export function fileCase(options: { maxTables: number; maxPolicies: number }): fc.Arbitrary<FileCase> {
  return fc.record({
    schema: identifier,
    role: identifier.filter((r) => r !== 'public' && !/^pg_/i.test(r)),
    tables: fc.uniqueArray(tableCase(options), { minLength: 1, maxLength: options.maxTables, selector: (t) => t.name }),
  });
}

/** The policy file of a case, as YAML (the yaml library quotes every name as needed). */
export function policyYaml(c: FileCase): string {
  const tables: Record<string, unknown> = {};
  for (const t of c.tables) {
    const policies = t.policies.map((p) => ({ name: p.name, for: 'select', to: [c.role], using: p.using }));
    tables[t.name] =
      t.mode === 'shared'
        ? { mode: 'shared', ...(policies.length > 0 ? { policies } : {}) }
        : { column: t.column, ...(t.commands ? { commands: t.commands } : {}), ...(policies.length > 0 ? { policies } : {}) };
  }
  return stringify({
    version: 1,
    tenant: { setting: 'app.tenant_id', type: 'text', column: 'tenant_id' },
    roles: { app: [c.role] },
    schemas: { [c.schema]: { tables } },
  });
}
