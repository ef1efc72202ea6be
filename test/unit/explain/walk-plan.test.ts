import { beforeAll, describe, expect, it } from 'vitest';
import { parseSync } from 'libpg-query';
import { loadParser } from '../../../src/policy/expression.js';
import {
  bitmapBounded,
  collectScans,
  columnRefPattern,
  comparedColumns,
  condBoundsColumns,
  planFragment,
  type PlanNode,
} from '../../../src/explain/walk-plan.js';
import { analyzeTenantPredicate, planTextToSql } from '../../../src/explain/tenant-predicate.js';
import { inspectQuery, maxParam } from '../../../src/explain/inspect-query.js';
import { queryColumnUses, suggestIndex } from '../../../src/explain/suggest-index.js';
import type { TenantRelation } from '../../../src/explain/read-explain-catalog.js';

/** Plan trees as EXPLAIN (FORMAT JSON, VERBOSE) prints them on 14 and 18 (trimmed to the keys read). */

beforeAll(async () => {
  await loadParser();
});

const initPlan18: PlanNode = { 'Node Type': 'Result', 'Parent Relationship': 'InitPlan', 'Subplan Name': 'InitPlan 1' };
const initPlan14: PlanNode = { 'Node Type': 'Result', 'Parent Relationship': 'InitPlan', 'Subplan Name': 'InitPlan 1 (returns $0)' };

describe('collectScans', () => {
  it('finds scans under joins, appends and sub-plans, but not the ModifyTable node', () => {
    const plan: PlanNode = {
      'Node Type': 'ModifyTable',
      'Relation Name': 'tasks',
      Schema: 'app',
      Plans: [
        initPlan18,
        {
          'Node Type': 'Nested Loop',
          'Parent Relationship': 'Outer',
          Plans: [
            {
              'Node Type': 'Index Scan',
              'Parent Relationship': 'Outer',
              Schema: 'app',
              'Relation Name': 'tasks',
              Alias: 't',
              'Index Name': 'tasks_org_id_idx',
              'Index Cond': '(t.org_id = (InitPlan 1).col1)',
              Filter: '(t.done = $1)',
            },
            {
              'Node Type': 'Append',
              'Parent Relationship': 'Inner',
              Plans: [
                {
                  'Node Type': 'Seq Scan',
                  'Parent Relationship': 'Member',
                  Schema: 'app',
                  'Relation Name': 'events_1',
                  Alias: 'e_1',
                  Filter: '(e_1.org_id = (InitPlan 1).col1)',
                },
                {
                  'Node Type': 'Index Only Scan',
                  'Parent Relationship': 'Member',
                  Schema: 'app',
                  'Relation Name': 'events_2',
                  Alias: 'e_2',
                  'Index Name': 'events_2_pkey',
                },
              ],
            },
          ],
        },
      ],
    };
    const scans = collectScans(plan);
    expect(scans.map((s) => [s.relation, s.alias, s.access])).toEqual([
      ['tasks', 't', 'index'],
      ['events_1', 'e_1', 'seq'],
      ['events_2', 'e_2', 'full-index'],
    ]);
    expect(condBoundsColumns(scans[0].indexConds[0], 't', ['org_id'])).toBe(true);
  });

  it('reads a bitmap heap scan through BitmapOr: bounded only when every branch is', () => {
    const plan: PlanNode = {
      'Node Type': 'Bitmap Heap Scan',
      Schema: 's',
      'Relation Name': 'items',
      Alias: 'i',
      Plans: [
        {
          'Node Type': 'BitmapOr',
          'Parent Relationship': 'Outer',
          Plans: [
            { 'Node Type': 'Bitmap Index Scan', 'Index Name': 'items_tenant_a_idx', 'Index Cond': '((i.tenant_id = $0) AND (i.a = $1))' },
            { 'Node Type': 'Bitmap Index Scan', 'Index Name': 'items_b_idx', 'Index Cond': '(i.b = $2)' },
          ],
        },
      ],
    };
    const [scan] = collectScans(plan);
    expect(scan.access).toBe('index');
    expect(scan.indexNames).toEqual(['items_tenant_a_idx', 'items_b_idx']);
    const tenant = (cond: string) => condBoundsColumns(cond, 'i', ['tenant_id']);
    expect(bitmapBounded(scan.bitmap!, tenant)).toBe(false);
    const and = { kind: 'and' as const, children: scan.bitmap!.kind === 'or' ? scan.bitmap!.children : [] };
    expect(bitmapBounded(and, tenant)).toBe(true);
  });

  it('tells a hashed SubPlan from a per-row one, in the notations of 14 and 18', () => {
    const sub: PlanNode = {
      'Node Type': 'Index Scan',
      'Parent Relationship': 'SubPlan',
      'Subplan Name': 'SubPlan 4',
      Schema: 'app',
      'Relation Name': 'tasks',
      Alias: 'rls_parent',
    };
    const scan = (filter: string) =>
      collectScans({ 'Node Type': 'Seq Scan', Schema: 'app', 'Relation Name': 'c', Alias: 'c', Filter: filter, Plans: [sub] })[0];
    expect(scan('(hashed SubPlan 4)').subPlans[0].hashed).toBe(true);
    expect(scan('(ANY (c.task_id = (hashed SubPlan 4).col1))').subPlans[0].hashed).toBe(true);
    expect(scan('(c.tenant_id = (SubPlan 4))').subPlans[0].hashed).toBe(false);
    expect(scan('((hashed SubPlan 41) AND (c.x = (SubPlan 4)))').subPlans[0].hashed).toBe(false);
  });

  it('prints the offending fragment as EXPLAIN text does', () => {
    const [scan] = collectScans({
      'Node Type': 'Seq Scan',
      Schema: 'app',
      'Relation Name': 'tasks',
      Alias: 't',
      Filter: '((t.org_id = $0) AND (t.project_id = $1))',
      Plans: [initPlan14],
    });
    expect(planFragment(scan)).toEqual(['Seq Scan on app.tasks t', '  Filter: ((t.org_id = $0) AND (t.project_id = $1))']);
  });
});

describe('column patterns', () => {
  it('match the bare and the quoted spelling, and not a longer name', () => {
    expect(columnRefPattern('t', 'org_id').test('(t.org_id = $0)')).toBe(true);
    expect(columnRefPattern('t', 'org_id').test('(t."org_id" = $0)')).toBe(true);
    expect(columnRefPattern('t', 'org_id').test('(t.org_id2 = $0)')).toBe(false);
    expect(columnRefPattern('t', 'org_id').test('(xt.org_id = $0)')).toBe(false);
    expect(columnRefPattern('Odd Name', 'Tenant').test('("Odd Name"."Tenant" = $0)')).toBe(true);
  });

  it('comparedColumns reads equality and range columns of one alias', () => {
    const known = new Set(['org_id', 'a', 'c', 'b']);
    expect(comparedColumns('((t.c > $2) AND (t.org_id = $0) AND (t.a = $1) AND (u.b = $3))', 't', known)).toEqual([
      { column: 'c', op: 'range' },
      { column: 'org_id', op: 'eq' },
      { column: 'a', op: 'eq' },
    ]);
  });
});

describe('analyzeTenantPredicate', () => {
  const cols = ['tenant_id'];
  it('a comparison with an InitPlan or a parameter is sargable, on 14 and on 18', () => {
    expect(analyzeTenantPredicate('((t.tenant_id = (InitPlan 1).col1) AND (t.a = $1))', cols, 't', { planText: true }).shape).toBe('sargable');
    expect(analyzeTenantPredicate('(t.tenant_id = $0)', cols, 't', { planText: true }).shape).toBe('sargable');
  });

  it('a fail-open OR is `or`', () => {
    const text = "((f.tenant_id = (current_setting('app.tenant_id'::text))::uuid) OR (current_setting('app.tenant_id'::text) = ''::text))";
    expect(analyzeTenantPredicate(text, cols, 'f', { planText: true }).shape).toBe('or');
    // the same predicate as pg_get_expr prints the policy (unqualified columns)
    expect(analyzeTenantPredicate(text.replace(/f\./g, ''), cols, 'failopen').shape).toBe('or');
  });

  it('a function outside a sub-select is per-row work; inside a scalar sub-select it is not', () => {
    expect(analyzeTenantPredicate('(v.tenant_id = s.cur())', cols, 'v', { planText: true })).toMatchObject({ shape: 'per-row-function', culprit: 's.cur()' });
    expect(analyzeTenantPredicate('(tenant_id = (SELECT s.cur()))', cols, 'v').shape).toBe('sargable');
  });

  it('a per-row SubPlan, a wrapped column, a join comparison and an absent predicate', () => {
    expect(analyzeTenantPredicate('(c.tenant_id = (SubPlan 1))', cols, 'c', { planText: true }).shape).toBe('subplan');
    expect(analyzeTenantPredicate("((c.tenant_id)::text = current_setting('x'::text))", cols, 'c', { planText: true }).shape).toBe('wrapped-column');
    expect(analyzeTenantPredicate('(c.tenant_id = d.tenant_id)', cols, 'c', { planText: true }).shape).toBe('sargable');
    expect(analyzeTenantPredicate('(c.tenant_id = c.other_id)', cols, 'c', { planText: true }).shape).toBe('absent');
    expect(analyzeTenantPredicate('(c.a = $1)', cols, 'c', { planText: true }).shape).toBe('absent');
    expect(analyzeTenantPredicate(undefined, cols, 'c').shape).toBe('absent');
  });

  it('rewrites EXPLAIN notations into SQL the parser reads', () => {
    const sql = planTextToSql('((ANY (c.task_id = (hashed SubPlan 4).col1)) AND (c.x = (InitPlan 1).col1) AND EXISTS(SubPlan 2))');
    expect(() => parseSync(`SELECT (${sql})`)).not.toThrow();
    expect(sql).toBe('((rlsctl_any(c.task_id = rlsctl_hashed_subplan())) AND (c.x = $0) AND rlsctl_subplan())');
  });
});

describe('inspectQuery', () => {
  it('accepts one plannable statement and counts its parameters', () => {
    const q = inspectQuery('SELECT * FROM t WHERE a = $1 AND b = ANY($3::int[])');
    expect(q).toMatchObject({ ok: true, kind: 'SelectStmt', paramCount: 3 });
    expect(maxParam({})).toBe(0);
    expect(inspectQuery('MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE')).toMatchObject({ ok: true, kind: 'MergeStmt' });
  });

  it('refuses what is not a query, and smuggled statements', () => {
    expect(inspectQuery('SET search_path = x')).toMatchObject({ ok: false, reason: 'not-a-query' });
    expect(inspectQuery('EXPLAIN ANALYZE DELETE FROM t')).toMatchObject({ ok: false, reason: 'not-a-query' });
    expect(inspectQuery('SELECT 1 INTO new_table')).toMatchObject({ ok: false, reason: 'not-a-query' });
    expect(inspectQuery('SELECT 1; DROP TABLE t')).toMatchObject({ ok: false, reason: 'statements' });
    expect(inspectQuery('SELEC 1')).toMatchObject({ ok: false, reason: 'syntax', position: 0 });
  });
});

describe('suggestIndex', () => {
  const relation: TenantRelation = {
    table: { schema: 'app', name: 'tasks', column: 'org_id' },
    lead: ['org_id'],
    partitioned: false,
    columns: new Set(['org_id', 'id', 'project_id', 'number', 'done', 'created_at']),
    indexes: [{ schema: 'app', name: 'tasks_pkey', columns: ['id'], unique: true, partial: false }],
    policies: [],
  };
  const stmt = (sql: string) => {
    const q = inspectQuery(sql);
    if (!q.ok) throw new Error(q.message);
    return q.stmt;
  };

  it('puts the tenant column first, then equality columns, then one range column', () => {
    const uses = queryColumnUses(
      stmt('SELECT * FROM app.tasks t WHERE t.created_at > $2 AND t.project_id = $1 AND NOT t.done ORDER BY t.number'),
      'app',
      new Set(['tasks']),
      relation.columns,
    );
    const byColumn = (a: { column: string }, b: { column: string }) => a.column.localeCompare(b.column);
    expect([...uses].sort(byColumn)).toEqual([
      { column: 'created_at', op: 'range' },
      { column: 'number', op: 'order' },
      { column: 'project_id', op: 'eq' },
    ]);
    const s = suggestIndex(relation, uses, undefined, 't');
    expect(s.columns).toEqual(['org_id', 'project_id', 'created_at']);
    expect(s.sql).toBe('CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_org_id_project_id_created_at_idx ON app.tasks (org_id, project_id, created_at);');
    expect(s.existing).toBeUndefined();
  });

  it('uses join columns and the sort column, ignores other tables and the other schema', () => {
    const uses = queryColumnUses(
      stmt('SELECT * FROM app.projects p JOIN app.tasks t ON t.project_id = p.id JOIN other.tasks o ON o.number = 1 WHERE p.name = $1 ORDER BY t.id'),
      'app',
      new Set(['tasks']),
      relation.columns,
    );
    expect([...uses].sort((a, b) => a.column.localeCompare(b.column))).toEqual([
      { column: 'id', op: 'order' },
      { column: 'project_id', op: 'eq' },
    ]);
    expect(suggestIndex(relation, uses, undefined, 't').columns).toEqual(['org_id', 'project_id', 'id']);
  });

  it('takes columns from the plan filter too, and knows an existing index; partitioned tables get no CONCURRENTLY', () => {
    const withIndex = {
      ...relation,
      partitioned: true,
      indexes: [{ schema: 'app', name: 'tasks_org_id_done_idx', columns: ['org_id', 'done', 'id'], unique: false, partial: false }],
    };
    const s = suggestIndex(withIndex, [], '((t.org_id = $0) AND (t.done = $1))', 't');
    expect(s.columns).toEqual(['org_id', 'done']);
    expect(s.existing?.name).toBe('tasks_org_id_done_idx');
    expect(s.sql).toMatch(/^CREATE INDEX IF NOT EXISTS tasks_org_id_done_idx ON app\.tasks \(org_id, done\);/);
  });
});
