import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/connection.js';
import { inferFacts } from '../../src/facts/resolve-facts.js';
import type { Finding } from '../../src/report/finding.js';
import { LEAK_RULES, VERIFY_RULES } from '../../src/verify/registry.js';
import { runVerify } from '../../src/verify/run-verify.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { ROOT } from '../helpers/cli.js';

/**
 * Every verify rule in the "one finding → fix → no finding" form, from a real
 * verify run on each server: fixtures/verify/<RULE>/bad.sql must give exactly
 * one finding, of the rule, and good.sql (the fix, with near misses) none at
 * all. Each runs after fixtures/verify/rules-base.sql (the table and its rows).
 * verify commits nothing and works on its own connection, so each fixture is
 * committed, verified, and its schema dropped.
 */

const DIR = path.join(ROOT, 'fixtures/verify');

describe('the verify rule registry', () => {
  it('has unique codes and names, in code order, VER001-VER006 as the spec names them', () => {
    const codes = VERIFY_RULES.map((r) => r.code);
    expect(codes).toEqual(['VER001', 'VER002', 'VER003', 'VER004', 'VER005', 'VER006', 'VER010']);
    expect(VERIFY_RULES.map((r) => r.name)).toEqual([
      'cross-tenant-read',
      'unset-context-visible',
      'unset-context-error',
      'cross-tenant-insert',
      'cross-tenant-update',
      'cross-tenant-delete',
      'probe-skipped',
    ]);
    expect([...LEAK_RULES].sort()).toEqual(['VER001', 'VER002', 'VER004', 'VER005', 'VER006']);
  });

  it('has one source file per rule, named after its code and name', () => {
    const files = readdirSync(path.join(ROOT, 'src/verify/rules')).filter((f) => /^ver\d{3}-/.test(f));
    for (const r of VERIFY_RULES) expect(files, r.code).toContain(`${r.code.toLowerCase()}-${r.name}.ts`);
    expect(files).toHaveLength(VERIFY_RULES.length);
  });

  it('gives every rule a docs page with the four sections, and a bad and a good fixture', () => {
    for (const r of VERIFY_RULES) {
      const text = readFileSync(path.join(ROOT, 'docs/rules', `${r.code}.md`), 'utf8');
      expect(text.split('\n')[0]).toBe(`# ${r.code} ${r.name}`);
      expect(text, `${r.code}: severity`).toContain(`**Severity:** ${r.severity}`);
      for (const heading of ['## What it finds', '## Why it matters', '## How to fix', '## When to ignore it'])
        expect(text, `${r.code}: ${heading}`).toContain(heading);
      for (const f of ['bad.sql', 'good.sql']) expect(existsSync(path.join(DIR, r.code, f)), `${r.code}/${f}`).toBe(true);
    }
  });
});

describeEachServer('verify rules', (ctx) => {
  // Roles are cluster-wide: names unique to this run.
  const roles: Record<string, string> = { app: uniqueName('vrapp'), other: uniqueName('vrother') };
  const fill = (text: string) => text.replace(/\{\{(\w+)\}\}/g, (_, k: string) => roles[k] ?? `{{${k}}}`);
  let db: Database;

  beforeAll(async () => {
    for (const role of Object.values(roles)) await ctx.db.query(`CREATE ROLE ${role} NOLOGIN`);
    db = await openDatabase({ db: ctx.db.url });
  });
  afterAll(async () => {
    await db?.close();
    await ctx.db.query('DROP SCHEMA IF EXISTS app CASCADE').catch(() => undefined);
    for (const role of Object.values(roles)) {
      await ctx.db.query(`DROP OWNED BY ${role}`).catch(() => undefined);
      await ctx.db.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
    }
  });

  async function verifyFixture(rule: string, variant: 'bad' | 'good'): Promise<Finding[]> {
    for (const file of ['rules-base.sql', path.join(rule, `${variant}.sql`)]) await ctx.db.runScript(fill(readFileSync(path.join(DIR, file), 'utf8')));
    try {
      const client = await ctx.db.client();
      const facts = await inferFacts({ schema: ['app'], tenantColumn: 'tenant_id', tenantSetting: 'app.tenant_id', appRole: [roles.app] }, client).finally(() =>
        client.end(),
      );
      return (await runVerify(db, facts)).findings;
    } finally {
      await ctx.db.query('DROP SCHEMA app CASCADE');
    }
  }

  for (const rule of VERIFY_RULES) {
    it(`${rule.code} ${rule.name}: exactly its finding from bad.sql, none once fixed in good.sql`, async () => {
      const bad = await verifyFixture(rule.code, 'bad');
      expect(
        bad.map((f) => f.fingerprint),
        JSON.stringify(bad, null, 2),
      ).toHaveLength(1);
      expect(bad[0]).toMatchObject({ rule: rule.code, name: rule.name, severity: rule.severity, object: { schema: 'app', name: 'items' } });
      expect(bad[0].fingerprint.startsWith(`${rule.code}:app.items:`)).toBe(true);
      expect(bad[0].message).toContain('app.items');
      // Its help is the fix for that object; VER010 has none to give (the message says what was missing).
      if (rule.code === 'VER010') expect(bad[0].help).toBeUndefined();
      else expect(bad[0].help).toContain('app.items');
      const good = await verifyFixture(rule.code, 'good');
      expect(good, JSON.stringify(good, null, 2)).toEqual([]);
    });
  }
});
