import { describe, expect, it } from 'vitest';
import type { ExplainCatalog, RelationSecurity, TenantRelation } from '../../../src/explain/read-explain-catalog.js';
import type { ExplainView } from '../../../src/explain/read-view-facts.js';
import { namedRelations, rowSecurityAt, rowSecurityOf, type PlanRole } from '../../../src/explain/scan-security.js';
import type { ScanNode } from '../../../src/explain/walk-plan.js';
import type { SubjectRole } from '../../../src/rls/row-security-subjects.js';
import { parseSync } from 'libpg-query';
import { loadParser } from '../../../src/policy/expression.js';

/**
 * explain asks the row-security model (src/rls/row-security-subjects.ts)
 * whether the policies of a table apply when a query reads it through views
 * (scan-security.ts); test/integration/row-security-subjects.test.ts holds the
 * model against a real server, test/integration/explain-precision.test.ts the
 * findings.
 */

const role = (name: string, over: Partial<SubjectRole> = {}): SubjectRole => ({ name, superuser: false, bypassRls: false, ...over });
const app = role('app_user');
const items: RelationSecurity = {
  schema: 'app',
  name: 'items',
  relation: { kind: 'r', owner: 'owner', rowSecurity: true, forceRowSecurity: false, label: 'app.items' },
  policies: [{ name: 'tenant_access', permissive: true, command: 'all', roles: ['app_user'], using: 'tenant_id = 1', check: null }],
};
const view = (name: string, owner: SubjectRole, reads: string[], securityInvoker = false): ExplainView => ({
  schema: 'app',
  name,
  view: { owner, securityInvoker, label: `app.${name}` },
  reads,
});
const relation = { table: { schema: 'app', name: 'items' } } as unknown as TenantRelation;
const scan = { schema: 'app', relation: 'items' } as unknown as ScanNode;

async function verdictOf(sql: string, views: ExplainView[], major = 18) {
  await loadParser();
  const map = new Map(views.map((v) => [`${v.schema}.${v.name}`, v]));
  const catalog = { security: new Map([['app.items', items]]), views: map, major } as unknown as ExplainCatalog;
  const who: PlanRole = { subject: app, label: app.name, views: map, major };
  const at = rowSecurityOf(catalog, who, relation, scan, namedRelations(parseSync(sql)));
  return rowSecurityAt(at, who, 'SelectStmt');
}

describe('explain: whether the policies of a table apply through a view (the row-security model decides)', () => {
  it('a superuser owner, a BYPASSRLS owner, or the table owner without FORCE bypass them; a plain owner does not', async () => {
    const su = view('su', role('postgres', { superuser: true }), ['app.items']);
    const by = view('by', role('etl', { bypassRls: true }), ['app.items']);
    const own = view('own', role('owner'), ['app.items']);
    const plain = view('plain', role('reporter'), ['app.items']);
    const all = [su, by, own, plain];
    expect((await verdictOf('SELECT * FROM app.su', all)).verdict?.reason.message).toBe(
      'postgres (the owner of the view app.su, which reads it as its owner) is a superuser',
    );
    expect((await verdictOf('SELECT * FROM app.by', all)).verdict?.reason.code).toBe('bypassrls');
    expect((await verdictOf('SELECT * FROM app.own', all)).verdict?.reason.message).toBe(
      'owner (the owner of the view app.own, which reads it as its owner) owns app.items, which does not force row level security',
    );
    // The plain owner is subject, and no policy names it: it sees no row (default deny), no policy of the app role is blamed.
    const viaPlain = await verdictOf('SELECT * FROM app.plain', all);
    expect(viaPlain.verdict?.reason.code).toBe('default-deny');
    expect(viaPlain.policies).toEqual([]);
    // Read directly, the app role's policy applies.
    const direct = await verdictOf('SELECT * FROM app.items', all);
    expect(direct.verdict?.reason.code).toBe('subject');
    expect(direct.policies.map((p) => p.name)).toEqual(['tenant_access']);
  });

  it('a security_invoker view reads as the caller, also inside a view that runs as its owner (as the server does)', async () => {
    const inner = view('inner', role('postgres', { superuser: true }), ['app.items'], true);
    const outer = view('outer', role('postgres', { superuser: true }), ['app.inner']);
    expect((await verdictOf('SELECT * FROM app.inner', [inner, outer])).verdict?.reason.code).toBe('subject');
    expect((await verdictOf('SELECT * FROM app.outer', [inner, outer])).verdict?.reason.code).toBe('subject');
    // Before 15 security_invoker does not exist: the inner view runs as its owner.
    expect((await verdictOf('SELECT * FROM app.outer', [inner, outer], 14)).verdict?.reason.code).toBe('superuser');
  });

  it('a view that runs as its owner inside another view reads as its own owner', async () => {
    const inner = view('inner', role('postgres', { superuser: true }), ['app.items']);
    const outer = view('outer', app, ['app.inner']);
    expect((await verdictOf('SELECT * FROM app.outer', [inner, outer])).verdict?.reason.message).toBe(
      'postgres (the owner of the view app.inner, which reads it as its owner) is a superuser',
    );
  });
});
