import { beforeAll, describe, expect, it } from 'vitest';
import { analyzeExpression, ExpressionAnalyzer } from '../../src/audit/analyze-expression.js';
import { analyzeHelpers } from '../../src/audit/tenant-sources.js';
import { loadParser } from '../../src/policy/expression.js';

/**
 * The expression questions the rules ask, on texts as pg_get_expr prints
 * them (explicit ::text casts, parentheses, AS "nullif"). Pure: no server.
 */
const GENERATED = `(tenant_id = ( SELECT (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::uuid AS "nullif"))`;

beforeAll(async () => {
  await loadParser();
});

describe('analyzeExpression', () => {
  it('finds nothing wrong in the predicate rlsctl generates', () => {
    const f = analyzeExpression(GENERATED);
    expect(f).toMatchObject({
      unparsable: false,
      settingsWithoutMissingOk: [],
      castsWithoutNullif: [],
      failOpenBranches: [],
      alwaysTrue: false,
      perRowCalls: [],
      wrappedColumns: [],
    });
    expect(f.settingCalls).toEqual([{ name: 'app.tenant_id', missingOk: true }]);
    expect([...f.columns]).toEqual(['tenant_id']);
  });

  it('RLS020: a one-argument current_setting of a custom setting, whatever it is cast to', () => {
    expect(analyzeExpression(`(tenant_id = (current_setting('app.tenant_id'::text))::uuid)`).settingsWithoutMissingOk).toEqual(['app.tenant_id']);
    expect(analyzeExpression(`(current_setting('app.tenant_id'::text, true) IS NOT NULL)`).settingsWithoutMissingOk).toEqual([]);
  });

  it('RLS021: a cast of the setting without NULLIF, also through COALESCE; not with NULLIF, not to text', () => {
    expect(analyzeExpression(`(tenant_id = ( SELECT (current_setting('app.tenant_id'::text, true))::uuid AS current_setting))`).castsWithoutNullif).toEqual([
      { setting: 'app.tenant_id', type: 'uuid' },
    ]);
    expect(analyzeExpression(`(tenant_id = (COALESCE(current_setting('app.t'::text, true), '0'::text))::bigint)`).castsWithoutNullif).toEqual([
      { setting: 'app.t', type: 'int8' },
    ]);
    expect(analyzeExpression(GENERATED).castsWithoutNullif).toEqual([]);
    expect(analyzeExpression(`(name = (current_setting('app.t'::text, true))::text)`).castsWithoutNullif).toEqual([]);
  });

  it('RLS022: OR branches that hold when the setting is unset or empty', () => {
    const cases: Array<[string, number]> = [
      [`((current_setting('app.tenant_id'::text, true) IS NULL) OR (tenant_id = 1))`, 1],
      [`((current_setting('app.tenant_id'::text, true) = ''::text) OR (tenant_id = 1))`, 1],
      [`((COALESCE(current_setting('app.tenant_id'::text, true), ''::text) = ''::text) OR (tenant_id = 1))`, 1],
      [`((NULLIF(current_setting('app.tenant_id'::text, true), ''::text) IS NULL) OR (tenant_id = 1))`, 1],
      [`((length(current_setting('app.tenant_id'::text, true)) = 0) OR (tenant_id = 1))`, 1],
      [`((current_setting('app.tenant_id'::text, true) IS NOT NULL) AND (tenant_id = 1))`, 0],
      [`((current_setting('app.tenant_id'::text, true) IS NULL) AND (tenant_id = 1))`, 0],
      [`((name IS NULL) OR (tenant_id = 1))`, 0],
    ];
    for (const [text, n] of cases) expect(analyzeExpression(text).failOpenBranches, text).toHaveLength(n);
  });

  it('RLS030: always true', () => {
    for (const t of ['true', '(1 = 1)', "('t'::text)::boolean", '(true OR (tenant_id = 1))']) expect(analyzeExpression(t).alwaysTrue, t).toBe(true);
    for (const t of ['false', '(tenant_id = 1)', '(1 = 2)', '(true AND (tenant_id = 1))', GENERATED]) expect(analyzeExpression(t).alwaysTrue, t).toBe(false);
  });

  it('RLS041: row-independent calls outside a scalar sub-select; not calls of the row, not calls inside one', () => {
    expect(analyzeExpression(`(tenant_id = (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::uuid)`).perRowCalls).toEqual(['current_setting']);
    expect(analyzeExpression(`(owner_id = auth.uid())`).perRowCalls).toEqual(['uid']);
    expect(analyzeExpression(`(lower(name) = 'x'::text)`).perRowCalls).toEqual([]);
    expect(analyzeExpression(GENERATED).perRowCalls).toEqual([]);
    // Inside EXISTS the call runs for every outer row too: not a scalar sub-select.
    expect(analyzeExpression(`(EXISTS ( SELECT 1 FROM m WHERE (m.org = (current_setting('app.t'::text, true))::uuid)))`).perRowCalls).toEqual([
      'current_setting',
    ]);
    // A sub-select that reads no table and no column (Supabase's SECURITY DEFINER helper pattern) does not
    // depend on the row: PostgreSQL runs it once per statement (an InitPlan, or a hashed SubPlan for IN).
    expect(analyzeExpression(`(org_id IN ( SELECT private.user_org_ids() AS user_org_ids))`).perRowCalls).toEqual([]);
    expect(analyzeExpression(`(org_id = ANY (ARRAY( SELECT private.user_org_ids() AS user_org_ids)))`).perRowCalls).toEqual([]);
    // Near misses: one that reads a table runs the call for each row it reads; one that names a column may read the row.
    expect(analyzeExpression(`(org_id IN ( SELECT m.org_id FROM m WHERE (m.user_id = auth.uid())))`).perRowCalls).toEqual(['uid']);
    expect(analyzeExpression(`(org_id IN ( SELECT private.orgs_of(owner_id) AS orgs_of))`).perRowCalls).toEqual([]);
    expect(analyzeExpression(`(org_id IN ( SELECT private.orgs_of(owner_id, auth.uid()) AS orgs_of))`).perRowCalls).toEqual(['uid']);
  });

  it('RLS042: the tenant column under a cast, a function or COALESCE', () => {
    expect(analyzeExpression(`((tenant_id)::text = current_setting('app.t'::text, true))`).wrappedColumns).toEqual([
      { column: 'tenant_id', wrapper: '::text' },
    ]);
    expect(analyzeExpression(`(lower(tenant_id) = 'x'::text)`).wrappedColumns).toEqual([{ column: 'tenant_id', wrapper: 'lower()' }]);
    expect(analyzeExpression(`(COALESCE(tenant_id, 0) = 1)`).wrappedColumns).toEqual([{ column: 'tenant_id', wrapper: 'COALESCE()' }]);
    expect(analyzeExpression(GENERATED).wrappedColumns).toEqual([]);
  });

  it('reads a via predicate: a sub-query, and the columns of the row outside it', () => {
    const f = analyzeExpression(`(EXISTS ( SELECT 1 FROM app.tasks rls_parent WHERE (rls_parent.id = task_comments.task_id)))`);
    expect(f.hasSubquery).toBe(true);
    expect([...f.columnsAnywhere].sort()).toEqual(['id', 'task_id']);
    expect([...f.columns]).toEqual([]);
  });

  it('parses each distinct text once', () => {
    const analyzer = new ExpressionAnalyzer();
    for (let i = 0; i < 100; i++) analyzer.analyze(GENERATED);
    analyzer.analyze('true');
    expect(analyzer.parsed).toBe(2);
  });

  it('RLS022: fail-open branches on any tenant source: auth.uid(), a JSON claim, a helper, COALESCE(..., true)', () => {
    const helpers = analyzeHelpers([
      {
        schema: 'private',
        name: 'current_org',
        body: `SELECT (current_setting('request.jwt.claims', true)::jsonb ->> 'org_id')::uuid`,
        securityDefiner: false,
      },
    ]);
    const cases: Array<[string, number]> = [
      [`((owner_id = auth.uid()) OR (auth.uid() IS NULL))`, 1],
      [`((owner_id = ( SELECT auth.uid() AS uid)) OR (( SELECT auth.uid() AS uid) IS NULL))`, 1],
      [`((org_id = private.current_org()) OR (private.current_org() IS NULL))`, 1],
      [`((((current_setting('request.jwt.claims'::text, true))::jsonb ->> 'org_id'::text) IS NULL) OR (org_id = 1))`, 1],
      [`COALESCE((tenant_id = (current_setting('app.t'::text, true))::uuid), true)`, 1],
      // near misses: a null test of a row column, COALESCE(..., false), a helper that reads no tenant source
      [`((owner_id = auth.uid()) OR (owner_id IS NULL))`, 0],
      [`COALESCE((tenant_id = (current_setting('app.t'::text, true))::uuid), false)`, 0],
      [`((org_id = private.other()) OR (private.other() IS NULL))`, 0],
      [`((auth.uid() IS NOT NULL) AND (owner_id = auth.uid()))`, 0],
    ];
    for (const [text, n] of cases) expect(analyzeExpression(text, helpers).failOpenBranches, text).toHaveLength(n);
  });

  it('tenant sources: a setting, a path in a JSON claim, auth.* wrappers, SQL helpers read through their bodies', () => {
    const helpers = analyzeHelpers([
      { schema: 'private', name: 'user_org_ids', body: `SELECT org_id FROM public.members WHERE user_id = auth.uid()`, securityDefiner: true },
      {
        schema: 'private',
        name: 'meta_org',
        body: `SELECT (raw_user_meta_data ->> 'org_id')::uuid FROM auth.users WHERE id = auth.uid()`,
        securityDefiner: false,
      },
      { schema: 'private', name: 'wraps_meta', body: `SELECT private.meta_org()`, securityDefiner: false },
      { schema: 'private', name: 'pure', body: `SELECT 1`, securityDefiner: false },
    ]);
    const s = (t: string) => analyzeExpression(t, helpers).sources.map((x) => `${x.kind}:${x.name}${x.path ? `:${x.path.join('/')}` : ''}`);
    expect(s(`(tenant_id = current_setting('app.t'::text, true))`)).toEqual(['setting:app.t']);
    expect(s(`(org_id = ((((current_setting('request.jwt.claims'::text, true))::jsonb -> 'app_metadata'::text) ->> 'org_id'::text))::uuid)`)).toEqual([
      'setting:request.jwt.claims',
      'claim:request.jwt.claims:app_metadata/org_id',
    ]);
    expect(s(`(org_id = ((auth.jwt() ->> 'org_id'::text))::uuid)`)).toEqual(['function:auth.jwt', 'claim:auth.jwt:org_id']);
    expect(s(`(user_id = ( SELECT auth.uid() AS uid))`)).toEqual(['function:auth.uid']);
    expect(s(`(org_id IN ( SELECT private.user_org_ids() AS user_org_ids))`)).toEqual(['function:private.user_org_ids']);
    expect(s(`(org_id = private.pure())`)).toEqual([]);
    expect(s(`(org_id = 1)`)).toEqual([]);
    const editable = (t: string) => analyzeExpression(t, helpers).userEditable;
    expect(editable(`(org_id = (((auth.jwt() -> 'user_metadata'::text) ->> 'org_id'::text))::uuid)`)).toEqual(['auth.jwt -> user_metadata']);
    expect(editable(`(org_id = private.wraps_meta())`)).toEqual(['private.wraps_meta() reads raw_user_meta_data']);
    expect(editable(`(org_id = (((auth.jwt() -> 'app_metadata'::text) ->> 'org_id'::text))::uuid)`)).toEqual([]);
    expect(editable(`(org_id = ( SELECT ((users.raw_user_meta_data ->> 'org_id'::text))::uuid FROM auth.users WHERE (users.id = auth.uid())))`)).toEqual([
      'raw_user_meta_data',
    ]);
    // A column of the policy's own row named user_metadata is the application's.
    expect(editable(`((owner_id = auth.uid()) AND (user_metadata IS NOT NULL))`)).toEqual([]);
    // What a helper reads: its tables (a policy that calls it reads them too, unless it is SECURITY DEFINER).
    expect(helpers.byQualified.get('private.user_org_ids')?.relations).toEqual([{ schema: 'public', name: 'members' }]);
    expect(analyzeExpression(`(org_id IN ( SELECT private.user_org_ids() AS user_org_ids))`, helpers).relationsRead).toEqual([]);
    expect(analyzeExpression(`(org_id = private.meta_org())`, helpers).relationsRead).toEqual([{ schema: 'auth', name: 'users' }]);
  });

  it('column references inside sub-queries that name the policy table (correlated) count as the row', () => {
    const f = analyzeExpression(`(EXISTS ( SELECT 1 FROM app.members m WHERE ((m.org_id = items.org_id) AND (m.user_id = auth.uid()))))`);
    expect([...f.outerColumns.entries()].map(([q, c]) => `${q}.${[...c].join(',')}`)).toEqual(['items.org_id']);
    // members.org_id names the sub-query's own table: not the row
    const g = analyzeExpression(`(EXISTS ( SELECT 1 FROM app.members WHERE ((members.org_id = 1) AND (members.user_id = auth.uid()))))`);
    expect(g.outerColumns.size).toBe(0);
    expect(analyzeExpression(`(EXISTS ( SELECT 1 FROM app.members m WHERE (m.org_id = items.org_id)))`).relationsRead).toEqual([
      { schema: 'app', name: 'members' },
    ]);
  });

  it('helper bodies: one that does not parse is unknown, mutual recursion ends, text that mentions a source is not a read', () => {
    const helpers = analyzeHelpers([
      { schema: 'p', name: 'broken', body: 'SELECT FROM WHERE (((', securityDefiner: false },
      { schema: 'p', name: 'a', body: 'SELECT p.b() FROM app.t1', securityDefiner: false },
      { schema: 'p', name: 'b', body: `SELECT p.a() FROM app.t2 WHERE x = current_setting('app.t', true)`, securityDefiner: false },
      { schema: 'p', name: 'quoted', body: `SELECT 'current_setting(''app.t'') auth.uid() user_metadata'::text`, securityDefiner: false },
      { schema: 'p', name: 'atomic', body: `BEGIN ATOMIC\n SELECT auth.uid();\nEND`, securityDefiner: false },
      { schema: 'p', name: 'ret', body: `RETURN auth.uid()`, securityDefiner: false },
      { schema: 'p', name: 'deep', body: `SELECT ${'('.repeat(500)}current_setting('app.t', true)${')'.repeat(500)}`, securityDefiner: false },
    ]);
    expect(helpers.byQualified.has('p.broken')).toBe(false);
    expect(helpers.byQualified.get('p.a')).toMatchObject({ readsSource: true });
    expect(
      helpers.byQualified
        .get('p.a')
        ?.relations.map((r) => r.name)
        .sort(),
    ).toEqual(['t1', 't2']);
    expect(helpers.byQualified.get('p.quoted')).toMatchObject({ readsSource: false });
    expect(helpers.byQualified.get('p.quoted')?.userEditable).toBeUndefined();
    expect(helpers.byQualified.get('p.atomic')).toMatchObject({ readsSource: true });
    expect(helpers.byQualified.get('p.ret')).toMatchObject({ readsSource: true });
    expect(helpers.byQualified.get('p.deep')?.readsSource ?? false).toBe(true);
    // Overloads are read as one: a source if any overload reads one, SECURITY DEFINER only if all are.
    const overloads = analyzeHelpers([
      { schema: 'p', name: 'org', body: `SELECT org_id FROM app.m WHERE user_id = auth.uid()`, securityDefiner: false },
      { schema: 'p', name: 'org', body: `SELECT 1`, securityDefiner: true },
    ]);
    expect(overloads.byQualified.get('p.org')).toMatchObject({ readsSource: true, securityDefiner: false, relations: [{ schema: 'app', name: 'm' }] });
    // Unqualified calls resolve when one helper has the name; a name two schemas share is not guessed.
    const two = analyzeHelpers([
      { schema: 'x', name: 'org', body: `SELECT current_setting('app.t', true)`, securityDefiner: false },
      { schema: 'y', name: 'org', body: `SELECT 1`, securityDefiner: false },
      { schema: 'y', name: 'just_one', body: `SELECT current_setting('app.t', true)`, securityDefiner: false },
    ]);
    expect(analyzeExpression(`(org_id = org())`, two).sources).toEqual([]);
    expect(analyzeExpression(`(org_id = just_one())`, two).sources).toEqual([{ kind: 'function', name: 'y.just_one' }]);
  });
});

describe('user-editable claims (RLS024)', () => {
  it.each([
    [`(org_id = ((auth.jwt() -> 'user_metadata'::text) ->> 'org_id'::text)::uuid)`, true],
    [
      `(org_id = (( SELECT (NULLIF(current_setting('request.jwt.claims'::text, true), ''::text))::jsonb #>> ARRAY['user_metadata'::text, 'org_id'::text]))::uuid)`,
      true,
    ],
    [`(org_id = ((current_setting('request.jwt.claims'::text, true))::jsonb #>> '{user_metadata,org_id}'::text[])::uuid)`, true],
    [`(org_id = ((auth.jwt() -> 'app_metadata'::text) ->> 'org_id'::text)::uuid)`, false],
    [`((auth.jwt() #>> ARRAY['app_metadata'::text, 'user_metadata'::text]) = 'x'::text)`, false],
    [`(user_metadata IS NOT NULL)`, false],
    [`((data ->> 'note'::text) = 'user_metadata'::text)`, false],
  ])('%s: %s', (text, expected) => {
    expect(analyzeExpression(text).userEditable.length > 0).toBe(expected);
  });
});
