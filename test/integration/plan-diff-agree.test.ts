import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { applyPlan } from '../../src/apply/apply-plan.js';
import type { Hazard } from '../../src/compile/statement.js';
import { openDatabase, type Database } from '../../src/db/connection.js';
import { diffModels } from '../../src/diff/diff-models.js';
import { buildPlan } from '../../src/plan/build-plan.js';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { foldVerdicts, type AccessVerdict } from '../../src/rls/judge-policy-change.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';

/**
 * plan and diff ask one row-security model (src/rls/): fed the same edit of a
 * policy file, plan's AUTHZ hazards and diff's classes must give the same
 * verdict, and the verdict the edit is known to have.
 *
 * Every edit gets a table of its own in one base file, applied once; the
 * head file is the base with that one table edited, so its plan holds only
 * that table's statements. plan reads the real catalog (pg_get_expr's forms),
 * diff reads the two files.
 */

type Policy = { name: string; to: string[]; for?: string; as?: string; using?: string; check?: string };
type Table = { commands?: string[]; policies?: Policy[]; mode?: 'shared' };
interface Edit {
  name: string;
  base: Table;
  head: Table;
  verdict: AccessVerdict;
}

const APP = uniqueName('app');
const OTHER = uniqueName('other');
const THIRD = uniqueName('third');

const p = (over: Partial<Policy> = {}): Policy => ({ name: 'extra', to: [OTHER], for: 'select', using: "status = 'open'", ...over });
const withPolicies = (...policies: Policy[]): Table => ({ policies });

const EDITS: Edit[] = [
  // policies added and dropped
  { name: 'permissive policy added', base: {}, head: withPolicies(p()), verdict: 'widening' },
  { name: 'restrictive policy added', base: {}, head: withPolicies(p({ as: 'restrictive' })), verdict: 'narrowing' },
  { name: 'permissive policy dropped', base: withPolicies(p()), head: {}, verdict: 'narrowing' },
  { name: 'restrictive policy dropped', base: withPolicies(p({ as: 'restrictive' })), head: {}, verdict: 'widening' },
  {
    name: 'permissive insert policy added',
    base: {},
    head: withPolicies(p({ for: 'insert', using: undefined, check: "status = 'open'" })),
    verdict: 'widening',
  },
  { name: 'restrictive delete policy dropped', base: withPolicies(p({ for: 'delete', as: 'restrictive' })), head: {}, verdict: 'widening' },
  // permissive <-> restrictive
  { name: 'permissive -> restrictive', base: withPolicies(p()), head: withPolicies(p({ as: 'restrictive' })), verdict: 'narrowing' },
  { name: 'restrictive -> permissive', base: withPolicies(p({ as: 'restrictive' })), head: withPolicies(p()), verdict: 'widening' },
  {
    name: 'permissive -> restrictive with a looser USING',
    base: withPolicies(p()),
    head: withPolicies(p({ as: 'restrictive', using: 'true' })),
    verdict: 'narrowing',
  },
  {
    name: 'restrictive -> permissive with a stricter USING',
    base: withPolicies(p({ as: 'restrictive' })),
    head: withPolicies(p({ using: "status = 'open' AND amount > 0" })),
    verdict: 'widening',
  },
  // each command
  { name: 'permissive select -> all', base: withPolicies(p()), head: withPolicies(p({ for: 'all' })), verdict: 'widening' },
  { name: 'permissive all -> select', base: withPolicies(p({ for: 'all' })), head: withPolicies(p()), verdict: 'narrowing' },
  { name: 'permissive select -> delete', base: withPolicies(p()), head: withPolicies(p({ for: 'delete' })), verdict: 'widening' },
  { name: 'permissive update -> all', base: withPolicies(p({ for: 'update' })), head: withPolicies(p({ for: 'all' })), verdict: 'widening' },
  {
    name: 'restrictive select -> all',
    base: withPolicies(p({ as: 'restrictive' })),
    head: withPolicies(p({ as: 'restrictive', for: 'all' })),
    verdict: 'narrowing',
  },
  {
    name: 'restrictive all -> update',
    base: withPolicies(p({ as: 'restrictive', for: 'all' })),
    head: withPolicies(p({ as: 'restrictive', for: 'update' })),
    verdict: 'widening',
  },
  {
    name: 'permissive insert -> update (same check)',
    base: withPolicies(p({ for: 'insert', using: undefined, check: "status = 'open'" })),
    head: withPolicies(p({ for: 'update', using: undefined, check: "status = 'open'" })),
    verdict: 'widening',
  },
  // role lists
  { name: 'permissive: a role added', base: withPolicies(p()), head: withPolicies(p({ to: [OTHER, THIRD] })), verdict: 'widening' },
  { name: 'permissive: a role removed', base: withPolicies(p({ to: [OTHER, THIRD] })), head: withPolicies(p()), verdict: 'narrowing' },
  { name: 'permissive: role swapped', base: withPolicies(p()), head: withPolicies(p({ to: [THIRD] })), verdict: 'widening' },
  { name: 'permissive: role -> public', base: withPolicies(p()), head: withPolicies(p({ to: ['public'] })), verdict: 'widening' },
  { name: 'permissive: public -> role', base: withPolicies(p({ to: ['public'] })), head: withPolicies(p()), verdict: 'narrowing' },
  {
    name: 'restrictive: a role added',
    base: withPolicies(p({ as: 'restrictive' })),
    head: withPolicies(p({ as: 'restrictive', to: [OTHER, THIRD] })),
    verdict: 'narrowing',
  },
  {
    name: 'restrictive: a role removed',
    base: withPolicies(p({ as: 'restrictive', to: [OTHER, THIRD] })),
    head: withPolicies(p({ as: 'restrictive' })),
    verdict: 'widening',
  },
  {
    name: 'restrictive: public -> role',
    base: withPolicies(p({ as: 'restrictive', to: ['public'] })),
    head: withPolicies(p({ as: 'restrictive' })),
    verdict: 'widening',
  },
  { name: 'role list reordered', base: withPolicies(p({ to: [OTHER, THIRD] })), head: withPolicies(p({ to: [THIRD, OTHER] })), verdict: 'neutral' },
  // expressions made stricter and looser
  {
    name: 'permissive USING: a conjunct added',
    base: withPolicies(p()),
    head: withPolicies(p({ using: "status = 'open' AND amount > 0" })),
    verdict: 'narrowing',
  },
  {
    name: 'permissive USING: a conjunct dropped',
    base: withPolicies(p({ using: "status = 'open' AND amount > 0" })),
    head: withPolicies(p()),
    verdict: 'widening',
  },
  {
    name: 'permissive USING: a disjunct added',
    base: withPolicies(p()),
    head: withPolicies(p({ using: "status = 'open' OR amount > 0" })),
    verdict: 'widening',
  },
  {
    name: 'permissive USING: a disjunct dropped',
    base: withPolicies(p({ using: "status = 'open' OR amount > 0" })),
    head: withPolicies(p()),
    verdict: 'narrowing',
  },
  { name: 'permissive USING -> true', base: withPolicies(p()), head: withPolicies(p({ using: 'true' })), verdict: 'widening' },
  { name: 'permissive USING true -> a condition', base: withPolicies(p({ using: 'true' })), head: withPolicies(p()), verdict: 'narrowing' },
  { name: 'permissive USING -> false', base: withPolicies(p()), head: withPolicies(p({ using: 'false' })), verdict: 'narrowing' },
  { name: 'permissive USING: another condition', base: withPolicies(p()), head: withPolicies(p({ using: 'amount > 0' })), verdict: 'widening' },
  { name: 'permissive USING: a constant changed', base: withPolicies(p()), head: withPolicies(p({ using: "status = 'closed'" })), verdict: 'widening' },
  {
    name: 'restrictive USING: a conjunct added',
    base: withPolicies(p({ as: 'restrictive' })),
    head: withPolicies(p({ as: 'restrictive', using: "status = 'open' AND amount > 0" })),
    verdict: 'narrowing',
  },
  {
    name: 'restrictive USING: a disjunct added',
    base: withPolicies(p({ as: 'restrictive' })),
    head: withPolicies(p({ as: 'restrictive', using: "status = 'open' OR amount > 0" })),
    verdict: 'widening',
  },
  {
    name: 'permissive USING reformatted',
    base: withPolicies(p({ using: "status = 'open' AND amount > 0" })),
    head: withPolicies(p({ using: "(STATUS = 'open')  and (amount>0)" })),
    verdict: 'neutral',
  },
  {
    name: 'permissive USING conjuncts reordered',
    base: withPolicies(p({ using: "status = 'open' AND amount > 0" })),
    head: withPolicies(p({ using: "amount > 0 AND status = 'open'" })),
    verdict: 'neutral',
  },
  {
    name: 'permissive WITH CHECK: a conjunct added',
    base: withPolicies(p({ for: 'insert', using: undefined, check: "status = 'open'" })),
    head: withPolicies(p({ for: 'insert', using: undefined, check: "status = 'open' AND amount > 0" })),
    verdict: 'narrowing',
  },
  {
    name: 'permissive WITH CHECK: a conjunct dropped',
    base: withPolicies(p({ for: 'insert', using: undefined, check: "status = 'open' AND amount > 0" })),
    head: withPolicies(p({ for: 'insert', using: undefined, check: "status = 'open'" })),
    verdict: 'widening',
  },
  {
    name: 'permissive update: WITH CHECK added (followed USING)',
    base: withPolicies(p({ for: 'update', using: "status = 'open'" })),
    head: withPolicies(p({ for: 'update', using: "status = 'open'", check: "status = 'open' AND amount > 0" })),
    verdict: 'narrowing',
  },
  {
    name: 'permissive all: WITH CHECK removed (now follows a looser USING)',
    base: withPolicies(p({ for: 'all', using: 'true', check: "status = 'open'" })),
    head: withPolicies(p({ for: 'all', using: 'true' })),
    verdict: 'widening',
  },
  {
    name: 'permissive all: USING stricter, WITH CHECK follows',
    base: withPolicies(p({ for: 'all' })),
    head: withPolicies(p({ for: 'all', using: "status = 'open' AND amount > 0" })),
    verdict: 'narrowing',
  },
  {
    name: 'stricter USING and a role added',
    base: withPolicies(p()),
    head: withPolicies(p({ using: "status = 'open' AND amount > 0", to: [OTHER, THIRD] })),
    verdict: 'widening',
  },
  { name: 'permissive policy renamed', base: withPolicies(p()), head: withPolicies(p({ name: 'renamed' })), verdict: 'neutral' },
  // judged on the table's policies as a whole
  {
    name: 'a permissive policy added that admits what another already does',
    base: withPolicies(p()),
    head: withPolicies(p(), p({ name: 'twin' })),
    verdict: 'neutral',
  },
  {
    name: 'a FOR ALL policy split into one per command, same expression',
    base: withPolicies(p({ for: 'all' })),
    head: withPolicies(
      ...['select', 'insert', 'update', 'delete'].map((c) =>
        p({ name: `extra_${c}`, for: c, using: c === 'insert' ? undefined : "status = 'open'", check: c === 'insert' ? "status = 'open'" : undefined }),
      ),
    ),
    verdict: 'neutral',
  },
  {
    name: 'a restrictive policy added for a role that only members of the app role could hold too',
    base: {},
    head: withPolicies(p({ as: 'restrictive', to: [THIRD] })),
    verdict: 'narrowing',
  },
  // generated policies: the table's commands and mode
  { name: 'tenant table: insert allowed', base: { commands: ['select'] }, head: { commands: ['select', 'insert'] }, verdict: 'widening' },
  {
    name: 'tenant table: delete no longer allowed',
    base: { commands: ['select', 'insert', 'update', 'delete'] },
    head: { commands: ['select', 'insert', 'update'] },
    verdict: 'narrowing',
  },
  { name: 'tenant table -> shared', base: {}, head: { mode: 'shared' }, verdict: 'widening' },
];

function tableYaml(t: Table): unknown {
  const out: Record<string, unknown> = t.mode === 'shared' ? { mode: 'shared' } : { mode: 'tenant' };
  if (t.commands) out.commands = t.commands;
  if (t.policies?.length) out.policies = t.policies.map((x) => Object.fromEntries(Object.entries(x).filter(([, v]) => v !== undefined)));
  return out;
}

const tableName = (i: number) => `t${String(i + 1).padStart(2, '0')}`;

function policyFile(pick: (edit: Edit) => Table): string {
  const tables: Record<string, unknown> = {};
  EDITS.forEach((e, i) => (tables[tableName(i)] = tableYaml(pick(e))));
  return stringify({
    version: 1,
    tenant: { setting: 'app.tenant_id', type: 'uuid', column: 'org_id' },
    roles: { app: [APP], bypass: [] },
    schemas: { edits: { tables } },
  });
}

function verdictOfHazards(hazards: Hazard[][]): AccessVerdict {
  return foldVerdicts(hazards.flat().map((h) => (h === 'AUTHZ_WIDENS' ? 'widening' : h === 'AUTHZ_NARROWS' ? 'narrowing' : 'neutral')));
}

it('lists at least 40 edits', () => {
  expect(EDITS.length).toBeGreaterThanOrEqual(40);
});

describeEachServer('plan and diff give the same verdict for every edit', (ctx) => {
  let db: Database;
  const base = () => parsePolicy([{ file: 'base.yaml', text: policyFile((e) => e.base) }]);

  beforeAll(async () => {
    for (const r of [APP, OTHER, THIRD]) await ctx.db.query(`DO $$ BEGIN CREATE ROLE ${r} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
    const ddl = EDITS.map((_, i) => `CREATE TABLE edits.${tableName(i)} (id bigint PRIMARY KEY, org_id uuid NOT NULL, status text, amount int);`);
    await ctx.db.query(`CREATE SCHEMA edits; ${ddl.join('\n')}`);
    db = await openDatabase({ db: ctx.db.url });
    await applyPlan(db, await buildPlan(ctx.db.pool, await base()));
    // The base converged: an edit's plan holds only its own table's statements.
    expect((await buildPlan(ctx.db.pool, await base())).statements).toEqual([]);
  });
  afterAll(async () => {
    await db?.close();
    await ctx.db.query('DROP SCHEMA edits CASCADE');
    for (const r of [APP, OTHER, THIRD]) await ctx.db.query(`DROP ROLE IF EXISTS ${r}`).catch(() => undefined);
  });

  for (const [i, edit] of EDITS.entries()) {
    it(`${tableName(i)}: ${edit.name} is ${edit.verdict}`, async () => {
      const baseModel = await base();
      const head = await parsePolicy([{ file: 'head.yaml', text: policyFile((e) => (e === edit ? e.head : e.base)) }]);
      const plan = await buildPlan(ctx.db.pool, head, { prune: true });
      const statements = plan.statements.filter((s) => s.target.kind === 'policy' || s.target.kind === 'table');
      expect(statements.every((s) => ('table' in s.target ? s.target.table : s.target.name) === tableName(i))).toBe(true);
      const changes = diffModels(baseModel, head);
      const fromPlan = verdictOfHazards(statements.map((s) => s.hazards));
      const fromDiff = foldVerdicts(changes.map((c) => c.class));
      expect({ plan: fromPlan, diff: fromDiff }).toEqual({ plan: edit.verdict, diff: edit.verdict });
    });
  }
});
