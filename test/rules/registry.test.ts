import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AUDIT_RULES } from '../../src/audit/registry.js';
import { ROOT } from '../helpers/cli.js';

/** The audit rules of cli.md, "Audit rules": every code must exist, with its name. */
const SPEC: Record<string, string> = {
  RLS001: 'rls-disabled',
  RLS002: 'rls-not-forced',
  RLS003: 'no-policy',
  RLS004: 'policy-without-rls',
  RLS005: 'undeclared-table',
  RLS006: 'policy-drift',
  RLS010: 'app-role-bypasses-rls',
  RLS011: 'undeclared-bypass-role',
  RLS012: 'row-security-off',
  RLS020: 'setting-not-missing-ok',
  RLS021: 'empty-setting-cast',
  RLS022: 'fail-open-context',
  RLS023: 'persistent-tenant-default',
  RLS030: 'permissive-always-true',
  RLS031: 'multiple-permissive',
  RLS032: 'write-not-tenant-checked',
  RLS040: 'missing-tenant-index',
  RLS041: 'per-row-setting-call',
  RLS042: 'non-sargable-tenant-predicate',
  RLS043: 'invalid-index',
  RLS044: 'missing-membership-index',
  RLS050: 'view-bypasses-rls',
  RLS051: 'unprotectable-relation',
  RLS052: 'security-definer-function',
  RLS053: 'partition-without-rls',
  RLS060: 'cross-tenant-foreign-key',
  RLS061: 'global-unique-constraint',
  RLS062: 'nullable-tenant-column',
  RLS063: 'rls-bypassing-grant',
  RLS064: 'public-grant',
  RLS070: 'vulnerable-server-version',
};

describe('the audit rule registry', () => {
  it('has unique codes and names, in code order', () => {
    const codes = AUDIT_RULES.map((r) => r.code);
    expect(new Set(codes).size).toBe(codes.length);
    expect(new Set(AUDIT_RULES.map((r) => r.name)).size).toBe(codes.length);
    expect([...codes].sort()).toEqual(codes);
    for (const r of AUDIT_RULES) {
      expect(r.code).toMatch(/^RLS\d{3}$/);
      expect(r.name).toMatch(/^[a-z]+(-[a-z]+)*$/);
    }
  });

  it('holds every rule of the spec under its spec name', () => {
    for (const [code, name] of Object.entries(SPEC)) expect(AUDIT_RULES.find((r) => r.code === code)?.name, code).toBe(name);
  });

  it('gives every rule a static description apart from the per-object message', () => {
    for (const r of AUDIT_RULES) {
      expect(['error', 'warning', 'info']).toContain(r.severity);
      for (const text of [r.title, r.description, r.remediation]) expect(text.length, r.code).toBeGreaterThan(15);
      // Static: no object names, no template leftovers.
      expect(r.description).not.toMatch(/\$\{|undefined/);
    }
  });

  it('has one source file per rule, named after its code and name', () => {
    const files = readdirSync(path.join(ROOT, 'src/audit/rules')).filter((f) => /^rls\d{3}-/.test(f));
    for (const r of AUDIT_RULES) expect(files, r.code).toContain(`${r.code.toLowerCase()}-${r.name}.ts`);
    expect(files).toHaveLength(AUDIT_RULES.length);
  });

  it('gives every rule a docs page with the four sections, and a bad and a good fixture', () => {
    for (const r of AUDIT_RULES) {
      const doc = path.join(ROOT, 'docs/rules', `${r.code}.md`);
      expect(existsSync(doc), doc).toBe(true);
      const text = readFileSync(doc, 'utf8');
      expect(text, r.code).toContain(`# ${r.code} ${r.name}`);
      for (const heading of ['## What it finds', '## Why it matters', '## How to fix it', '## When to ignore it'])
        expect(text, `${r.code}: ${heading}`).toContain(heading);
      expect(text, `${r.code}: severity`).toContain(`Severity: **${r.severity}**`);
      expect(text, `${r.code}: before / after`).toMatch(/Before:\s+```(sql|yaml)\n[\s\S]*?```\s+After:\s+```(sql|yaml)\n/);
      for (const f of ['bad.sql', 'good.sql']) expect(existsSync(path.join(ROOT, 'fixtures/audit', r.code, f)), `${r.code}/${f}`).toBe(true);
    }
  });
});
