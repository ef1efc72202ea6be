import { parseSync } from 'libpg-query';
import { beforeAll, describe, expect, it } from 'vitest';
import { createEventTriggerSql, createFunctionSql, planPartitionTrigger, triggerFunctionBody } from '../../../src/compile/partition-trigger.js';
import { compileScript } from '../../../src/compile/render-sql.js';
import { loadParser } from '../../../src/policy/expression.js';
import { parsePolicy } from '../../../src/policy/load-policy.js';

/** The SQL of the partition event trigger, offline: what PostgreSQL's parser makes of it with hostile input. */

beforeAll(async () => {
  await loadParser();
});

const HOSTILE = [
  'version: 1',
  'roles: { app: [app_user] }',
  'partitions: { protect_new: true }',
  'schemas:',
  `  "s'$rlsctl_fn$":`,
  '    tables:',
  `      "t$rlsctl_fn1$ %I \\\\ '":`,
  '        mode: tenant',
  '        policies:',
  `          - { name: p, to: [app_user], for: select, using: "'$rlsctl_fn$ \\\\ $$' <> '%s' -- comment" }`,
].join('\n');

function kinds(sql: string): string[] {
  const { stmts } = parseSync(sql) as { stmts: Array<{ stmt: Record<string, unknown> }> };
  return stmts.map(({ stmt }) => Object.keys(stmt)[0]);
}

describe('partition trigger SQL', () => {
  it('is one CREATE FUNCTION whose dollar quote no declared name or expression can end, with hostile names', async () => {
    const model = await parsePolicy([{ file: 'policy.yaml', text: HOSTILE }]);
    const sql = createFunctionSql(model);
    expect(kinds(sql)).toEqual(['CreateFunctionStmt', 'AlterOwnerStmt', 'GrantStmt']);
    expect(sql).toContain('AS $rlsctl_fn2$');
    // The body the server stores is the body plan compares with.
    const { stmts } = parseSync(sql) as { stmts: Array<{ stmt: { CreateFunctionStmt: { options: Array<{ DefElem: { defname: string; arg: unknown } }> } } }> };
    const as = stmts[0].stmt.CreateFunctionStmt.options.find((o) => o.DefElem.defname === 'as')!;
    expect(JSON.stringify(as.DefElem.arg)).toContain(JSON.stringify(triggerFunctionBody(model)).slice(1, -1));
    expect(kinds(createEventTriggerSql())).toEqual(['CreateEventTrigStmt']);
  });

  it('plans nothing without the key and nothing installed; compile says apply installs it', async () => {
    const off = await parsePolicy([{ file: 'policy.yaml', text: HOSTILE.replace('protect_new: true', 'protect_new: false') }]);
    expect(planPartitionTrigger(off, { superuser: true })).toEqual([]);
    expect(compileScript(off)).not.toContain('partitions.protect_new');
    const on = await parsePolicy([{ file: 'policy.yaml', text: HOSTILE }]);
    expect(compileScript(on)).toContain('-- partitions.protect_new: its event trigger is installed by rlsctl apply (as a superuser), not by this script.\n');
  });
});
