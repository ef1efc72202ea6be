import { beforeAll, describe, expect, it } from 'vitest';
import { analyzeExpression } from '../../src/audit/analyze-expression.js';
import {
  addMissingOk,
  dropFailOpenBranches,
  isTenantEquality,
  nullifSettingCasts,
  unwrapColumnCasts,
  wrapPerRowCalls,
} from '../../src/audit/fix-expression.js';
import { buildFixScript, splitStatements } from '../../src/audit/fix-script.js';
import { loadParser } from '../../src/policy/expression.js';
import { fingerprintOf, type Finding } from '../../src/report/finding.js';
import { formatSarif } from '../../src/report/format-sarif.js';
import { formatFindingsText } from '../../src/report/format-text.js';
import { formatFindingsJson } from '../../src/report/format-json.js';
import { AUDIT_RULES } from '../../src/audit/registry.js';

/**
 * The rewrites of a policy in its own source (src/audit/fix-expression.ts) on
 * texts as pg_get_expr prints them, with string literals and quoted names that
 * look like syntax; and the fix script's order. Pure: no server (the fixes run
 * for real in test/rules/fix-proof.test.ts).
 */

beforeAll(async () => {
  await loadParser();
});

const failsOpen = (branch: string) =>
  analyzeExpression(`(${branch}) OR false`).failOpenBranches.length > analyzeExpression(`(${branch}) AND true`).failOpenBranches.length;

describe('policy rewrites', () => {
  it('adds missing_ok to each one-argument current_setting, and only there', () => {
    expect(addMissingOk(`(tenant_id = (current_setting('app.tenant_id'::text))::uuid)`)).toBe(
      `(tenant_id = (current_setting('app.tenant_id'::text, true))::uuid)`,
    );
    expect(addMissingOk(`(x = pg_catalog.current_setting('a.b'::text, false))`)).toBe(`(x = pg_catalog.current_setting('a.b'::text, false))`);
  });

  it("puts NULLIF(..., '') before a setting's cast, JSON path and all, and leaves string literals alone", () => {
    const text = `(tenant_id = (((current_setting('request.jwt.claims'::text, true))::jsonb ->> 'org_id('::text))::uuid)`;
    const fixed = nullifSettingCasts(text)!;
    expect(fixed).toBe(`(tenant_id = ((NULLIF((current_setting('request.jwt.claims'::text, true)), '')::jsonb ->> 'org_id('::text))::uuid)`);
    expect(analyzeExpression(fixed).castsWithoutNullif).toEqual([]);
  });

  it('drops only the fail-open branch, even when a string literal holds OR and parentheses', () => {
    const text = `((name <> 'a OR (b'::text) AND ((current_setting('app.tenant_id'::text, true) IS NULL) OR (tenant_id = (SELECT 1))))`;
    const fixed = dropFailOpenBranches(text, failsOpen)!;
    expect(fixed).toBe(`((name <> 'a OR (b'::text) AND ((tenant_id = (SELECT 1))))`);
    expect(analyzeExpression(fixed).failOpenBranches).toEqual([]);
  });

  it('refuses a fail-open OR whose every branch fails open: nothing sound is left', () => {
    expect(
      dropFailOpenBranches(`((current_setting('a.b'::text, true) IS NULL) OR (current_setting('a.b'::text, true) = ''::text))`, failsOpen),
    ).toBeUndefined();
  });

  it('wraps each per-row call where it stands, with its schema, and not one already in a scalar sub-select', () => {
    const text = `((tenant_id = auth.uid()) AND (owner = ( SELECT auth.uid() AS uid)))`;
    expect(wrapPerRowCalls(text, new Set(['uid']))).toBe(`((tenant_id = (SELECT auth.uid())) AND (owner = ( SELECT auth.uid() AS uid)))`);
  });

  it('moves a cast off the tenant column to the other side, and leaves a quoted name that looks like a cast alone', () => {
    const text = `(((tenant_id)::text = ( SELECT current_setting('app.tenant_id'::text, true) AS current_setting)) AND ("a::text" IS NOT NULL))`;
    expect(unwrapColumnCasts(text, 'tenant_id', 'uuid')).toBe(
      `(((tenant_id) = (SELECT NULLIF(( SELECT current_setting('app.tenant_id'::text, true) AS current_setting), '')::uuid)) AND ("a::text" IS NOT NULL))`,
    );
    expect(unwrapColumnCasts(`(lower(tenant_id::text) = 'x'::text)`, 'tenant_id', 'uuid')).toBeUndefined();
  });

  it('knows a tenant predicate when the whole expression is column = <not the row>', () => {
    expect(isTenantEquality(`(tenant_id = ( SELECT 1))`, 'tenant_id')).toBe(true);
    expect(isTenantEquality(`((tenant_id = ( SELECT 1)) OR is_public)`, 'tenant_id')).toBe(false);
    expect(isTenantEquality(`(tenant_id = other_id)`, 'tenant_id')).toBe(false);
  });
});

function finding(code: string, name: string, sql: string | null, note?: string): Finding {
  const rule = AUDIT_RULES.find((r) => r.code === code)!;
  const object = { kind: 'table' as const, schema: 'app', name };
  return {
    rule: code,
    name: rule.name,
    severity: rule.severity,
    message: `${name}\n-- not a comment any more? DROP TABLE x;`,
    object,
    help: sql ?? note,
    fix: sql === null ? { sql: null, runnable: false, note: note ?? '' } : { sql, runnable: true },
    fingerprint: fingerprintOf(code, object),
  };
}

describe('the fix script', () => {
  const findings = [
    finding('RLS040', 'a', 'CREATE INDEX CONCURRENTLY a_tenant_id_idx ON app.a (tenant_id);'),
    finding('RLS001', 'b', 'CREATE POLICY p ON app.b USING (true);\nALTER TABLE app.b ENABLE ROW LEVEL SECURITY;\nALTER TABLE app.b FORCE ROW LEVEL SECURITY;'),
    finding('RLS004', 'b', 'ALTER TABLE app.b ENABLE ROW LEVEL SECURITY;\nALTER TABLE app.b FORCE ROW LEVEL SECURITY;'),
    finding('RLS030', 'c', 'CREATE POLICY g ON app.c USING (true);\n-- or: DROP POLICY x ON app.c;'),
    finding('RLS031', 'd', null, 'merge them'),
  ];

  it('orders policies, then ENABLE and FORCE, in one transaction, index builds after COMMIT; writes a shared statement once', () => {
    const { text, fixed, manual } = buildFixScript(findings, { warnings: true });
    expect(fixed).toBe(4);
    expect(manual).toBe(1);
    const at = (s: string) => text.indexOf(s);
    expect(at('BEGIN;')).toBeLessThan(at('CREATE POLICY p ON app.b'));
    expect(at('CREATE POLICY g ON app.c')).toBeLessThan(at('ALTER TABLE app.b ENABLE'));
    expect(at('ALTER TABLE app.b FORCE')).toBeLessThan(at('COMMIT;'));
    expect(at('COMMIT;')).toBeLessThan(at('CREATE INDEX CONCURRENTLY'));
    expect(text.split('ALTER TABLE app.b ENABLE ROW LEVEL SECURITY;')).toHaveLength(2);
    expect(text).toContain('-- or: DROP POLICY x ON app.c;');
    expect(text).toContain('--   to decide: merge them');
    // A line break in a message cannot end its comment: the script's statements are only the fixes'.
    const statements = splitStatements(text)!.statements.map((s) => s.sql.split('\n')[0]);
    expect(statements).toEqual([
      'BEGIN;',
      'CREATE POLICY p ON app.b USING (true);',
      'CREATE POLICY g ON app.c USING (true);',
      'ALTER TABLE app.b ENABLE ROW LEVEL SECURITY;',
      'ALTER TABLE app.b FORCE ROW LEVEL SECURITY;',
      'COMMIT;',
      'CREATE INDEX CONCURRENTLY a_tenant_id_idx ON app.a (tenant_id);',
    ]);
  });

  it('leaves warnings out without --fix-warnings', () => {
    expect(buildFixScript(findings, { warnings: false }).text).not.toContain('CREATE INDEX');
  });

  it('the fix is data in JSON and in SARIF properties, and the text report says when it needs a decision', () => {
    const json = JSON.parse(formatFindingsJson('audit', findings));
    expect(json.findings.find((f: Finding) => f.rule === 'RLS031').fix).toEqual({ sql: null, runnable: false, note: 'merge them' });
    const sarif = JSON.parse(formatSarif(findings, [...AUDIT_RULES], '0.1.0'));
    expect(sarif.runs[0].results.find((r: { ruleId: string }) => r.ruleId === 'RLS040').properties.fix).toEqual({
      sql: 'CREATE INDEX CONCURRENTLY a_tenant_id_idx ON app.a (tenant_id);',
      runnable: true,
    });
    const text = formatFindingsText(findings, { color: false });
    expect(text).toContain('to decide: merge them');
    expect(text).toContain('fix: CREATE INDEX CONCURRENTLY a_tenant_id_idx');
  });
});
