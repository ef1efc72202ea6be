import fc from 'fast-check';
import { parseSync } from 'libpg-query';
import { beforeAll, describe, expect, it } from 'vitest';
import { desiredState, indexName } from '../../src/compile/desired-state.js';
import { identBytes, qualify, quoteLiteral } from '../../src/compile/quote.js';
import { compileScript, createIndexSql, createPolicySql, dropPolicySql } from '../../src/compile/render-sql.js';
import { freeName } from '../../src/plan/plan-indexes.js';
import { checkExpression, isPositionKey, loadParser } from '../../src/policy/expression.js';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { validatePolicy } from '../../src/policy/validate-policy.js';
import { controlName, expression, fileCase, fullName, identifier, policyYaml } from './arbitraries.js';

/**
 * Property-based tests of issue 14, without a database: for arbitrary names
 * (any Unicode, quotes, dollar signs, backslashes, up to 63 bytes) and for
 * expressions the validator accepts, the script of `compile` and the SQL that
 * `plan` / `apply` build parse (libpg-query, PostgreSQL's own parser) into
 * exactly the statements rlsctl meant to write, with the very names and
 * expression trees of the policy file. test/property/run-on-server.test.ts
 * runs them on real servers.
 */

const RUNS = 1000;

beforeAll(async () => {
  await loadParser();
});

type Node = Record<string, any>;

/** No lone UTF-16 surrogate: the text is valid UTF-8 once encoded. */
const wellFormed = (text: string) => !/\p{Cs}/u.test(text);

function parse(sql: string): Node[] {
  return (parseSync(sql) as { stmts: Array<{ stmt: Node }> }).stmts.map((s) => s.stmt);
}

/** A parse tree without source positions. */
function tree(node: unknown): string {
  return JSON.stringify(node, (key, value) => (isPositionKey(key) ? undefined : value));
}

function expressionTree(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const checked = checkExpression(text);
  if (!checked.ok) throw new Error(`rlsctl wrote an expression its own validator refuses: ${text}`);
  return tree(checked.tree);
}

describe('compile and apply SQL for arbitrary names and expressions', () => {
  it(`the compiled script, and the policy SQL of plan and apply, are exactly the statements rlsctl means, names and expressions intact (${RUNS} files)`, async () => {
    await fc.assert(
      fc.asyncProperty(fileCase({ maxTables: 2, maxPolicies: 2 }), async (c) => {
        const model = await parsePolicy([{ file: 'p.yaml', text: policyYaml(c) }]);
        const script = compileScript(model);
        // psql's \\gexec line sends the query before it, as a `;` would.
        const stmts = parse(script.replace(/^\\gexec$/gm, ';'));
        const expected: Array<(s: Node) => void> = [(s) => expect(s.VariableSetStmt).toMatchObject({ name: 'standard_conforming_strings' })];
        expected.push((s) => expect(s.TransactionStmt.kind).toBe('TRANS_STMT_BEGIN'));
        const state = desiredState(model);
        for (const table of state.tables) {
          const relation = { schemaname: table.schema, relname: table.name };
          for (const policy of table.policies) {
            expected.push((s) => expect(s.DropStmt.objects[0].List.items.map((i: Node) => i.String.sval)).toEqual([table.schema, table.name, policy.name]));
            expected.push((s) => {
              expect(s.CreatePolicyStmt).toMatchObject({ policy_name: policy.name, table: relation, cmd_name: policy.command });
              expect(s.CreatePolicyStmt.permissive ?? false).toBe(policy.permissive);
              expect(s.CreatePolicyStmt.roles.map((r: Node) => r.RoleSpec.rolename)).toEqual(policy.roles);
              expect(tree(s.CreatePolicyStmt.qual)).toBe(expressionTree(policy.using));
              expect(tree(s.CreatePolicyStmt.with_check)).toBe(expressionTree(policy.check));
            });
          }
          expected.push((s) => expect(s.AlterTableStmt.relation).toMatchObject(relation));
          expected.push((s) => expect(s.AlterTableStmt.relation).toMatchObject(relation));
          expected.push((s) => {
            // The block ends where compile ended it: no name or literal of the file cut it short.
            const body: string = s.DoStmt.args[0].DefElem.arg.String.sval;
            expect(body.startsWith('\nDECLARE\n') && body.endsWith('\nEND\n')).toBe(true);
          });
        }
        expected.push((s) => expect(s.TransactionStmt.kind).toBe('TRANS_STMT_COMMIT'));
        for (const table of state.tables) {
          for (const index of table.indexes) {
            // The query psql's \\gexec runs: for a table that is not partitioned, the statement below, as a literal.
            const statement = createIndexSql(index, { concurrently: true, ifNotExists: true });
            const [built] = parse(statement);
            expect(built.IndexStmt).toMatchObject({ idxname: index.name, relation: { schemaname: table.schema, relname: table.name }, concurrent: true });
            expect(built.IndexStmt.indexParams.map((p: Node) => p.IndexElem.name)).toEqual(index.columns);
            expected.push((s) => {
              expect(s.SelectStmt).toBeDefined();
              expect(script).toContain(quoteLiteral(statement));
            });
            expected.push((s) => {
              const body: string = s.DoStmt.args[0].DefElem.arg.String.sval;
              expect(body.startsWith('\nDECLARE\n') && body.endsWith('\nEND\n')).toBe(true);
            });
          }
        }
        expect(stmts).toHaveLength(expected.length);
        expected.forEach((check, i) => check(stmts[i]));
        // The same policies as plan and apply write them, one statement each.
        for (const table of state.tables) {
          const tableSql = qualify(table.schema, table.name);
          for (const policy of table.policies) {
            const [create, ...rest] = parse(createPolicySql(tableSql, policy));
            expect(rest).toEqual([]);
            expect(create.CreatePolicyStmt).toMatchObject({ policy_name: policy.name, table: { schemaname: table.schema, relname: table.name } });
            expect(tree(create.CreatePolicyStmt.qual)).toBe(expressionTree(policy.using));
            expect(tree(create.CreatePolicyStmt.with_check)).toBe(expressionTree(policy.check));
            const drop = parse(dropPolicySql(tableSql, policy.name));
            expect(drop).toHaveLength(1);
            expect(drop[0].DropStmt.objects[0].List.items.map((i: Node) => i.String.sval)).toEqual([table.schema, table.name, policy.name]);
          }
        }
      }),
      { numRuns: RUNS },
    );
  }, 300_000); // 1,000 files parsed and compared: well over the default 60 s on a loaded 2-core machine

  it(`a name with a line break or another control character is refused, never written (${RUNS} names)`, () => {
    fc.assert(
      fc.property(controlName, fc.constantFrom('schema', 'table', 'column', 'role', 'policy'), (name, where) => {
        const q = JSON.stringify(name);
        const parts = { schema: 'app', table: 't', column: 'tenant_id', role: 'app_user', policy: 'p', [where]: name } as Record<string, string>;
        const p = (k: string) => (k === where ? q : parts[k]);
        const text = `version: 1\ntenant: { setting: app.tenant_id, type: text, column: ${p('column')} }\nroles: { app: [${p('role')}] }\nschemas:\n  ${p('schema')}:\n    tables:\n      ${p('table')}:\n        policies:\n          - { name: ${p('policy')}, for: select, to: [${p('role')}], using: "true" }\n`;
        const result = validatePolicy([{ file: 'p.yaml', text }]);
        expect(result.model).toBeUndefined();
        expect(result.diagnostics.map((d) => d.message).join('\n')).toMatch(/not a valid|control character|identifier/);
      }),
      { numRuns: RUNS },
    );
  });

  it(`index names cut to 63 bytes never split a character, and stay apart (${RUNS} names)`, () => {
    fc.assert(
      fc.property(fc.oneof(identifier, fullName), fc.array(identifier, { minLength: 1, maxLength: 3 }), (table, columns) => {
        const name = indexName(table, columns);
        expect(identBytes(name)).toBeLessThanOrEqual(63);
        expect(wellFormed(name)).toBe(true);
        // What PostgreSQL stores is what rlsctl names: UTF-8 there and back unchanged.
        expect(Buffer.from(name, 'utf8').toString('utf8')).toBe(name);
        // A name taken already (a declared index name is any name, as long as the table's) gets a free variant.
        for (const base of [name, table]) {
          const taken = new Set([base]);
          for (let i = 0; i < 3; i++) {
            const free = freeName(base, taken);
            expect(taken.has(free)).toBe(false);
            expect(identBytes(free)).toBeLessThanOrEqual(63);
            expect(wellFormed(free)).toBe(true);
            taken.add(free);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('freeName cuts a name of surrogate pairs at a whole character', () => {
    const name = `abc${'😀'.repeat(15)}`; // 63 bytes
    const free = freeName(name, new Set([name]));
    expect(free).toBe(`abc${'😀'.repeat(14)}1`);
    expect(wellFormed(free)).toBe(true);
  });

  it(`expressions the validator accepts embed as themselves (${RUNS} expressions)`, () => {
    fc.assert(
      fc.property(expression, (text) => {
        const [stmt] = parse(
          createPolicySql('t', { name: 'p', permissive: true, command: 'select', roles: ['r'], using: text, generated: false, forRelation: () => ({}) }),
        );
        expect(tree(stmt.CreatePolicyStmt.qual)).toBe(expressionTree(text));
      }),
      { numRuns: RUNS },
    );
  });
});
