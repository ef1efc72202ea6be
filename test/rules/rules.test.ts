import { afterAll, beforeAll, expect, it } from 'vitest';
import type pg from 'pg';
import { AUDIT_RULES } from '../../src/audit/registry.js';
import { runScript } from '../../src/db/run-script.js';
import type { Finding } from '../../src/report/finding.js';
import { describeEachServer } from '../helpers/db.js';
import { auditOpenTransaction, fixtureRoles, readAuditFixture } from '../helpers/audit-fixtures.js';

/**
 * Every audit rule in the "one finding → fix → no finding" form, on a real
 * server: fixtures/audit/<RULE>/bad.sql must give exactly one finding of the
 * rule, good.sql (the fix, with near misses) none. Each fixture runs inside
 * its own transaction on one database per server, and is rolled back: the
 * catalog queries see the uncommitted DDL of their own transaction.
 *
 * Optional per rule: policy.yaml (or bad.yaml / good.yaml) to audit with a
 * policy file instead of inferred facts, options.json for runAudit options.
 */

describeEachServer('audit rules', (ctx) => {
  // Roles are cluster-wide: names unique to this run, shared by the fixtures of this file.
  const fixture = fixtureRoles();
  beforeAll(() => fixture.create(ctx.db));
  afterAll(() => fixture.drop(ctx.db));

  async function auditFixture(rule: string, variant: 'bad' | 'good'): Promise<{ findings: Finding[]; help: string[] }> {
    const client: pg.Client = await ctx.db.client();
    try {
      await client.query('BEGIN');
      await runScript(client, fixture.fill(readAuditFixture(rule, `${variant}.sql`)!));
      const findings = await auditOpenTransaction(client, fixture, ctx.db.name, rule, variant);
      return { findings, help: findings.map((f) => f.help ?? '') };
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end();
    }
  }

  for (const rule of AUDIT_RULES) {
    it(`${rule.code} ${rule.name}: one finding in bad.sql, none once fixed in good.sql`, async () => {
      const bad = (await auditFixture(rule.code, 'bad')).findings.filter((f) => f.rule === rule.code);
      expect(bad, JSON.stringify(bad, null, 2)).toHaveLength(1);
      expect(bad[0]).toMatchObject({ rule: rule.code, name: rule.name, severity: rule.severity });
      expect(bad[0].fingerprint.startsWith(`${rule.code}:`)).toBe(true);
      // Role names are unique to the run: a fingerprint names objects, and never an OID.
      expect(bad[0].message.length).toBeGreaterThan(20);
      const good = (await auditFixture(rule.code, 'good')).findings.filter((f) => f.rule === rule.code);
      expect(good, JSON.stringify(good, null, 2)).toEqual([]);
    });
  }

  it('RLS050 advises security_invoker from PostgreSQL 15, another fix before', async () => {
    const { findings } = await auditFixture('RLS050', 'bad');
    const f = findings.find((x) => x.rule === 'RLS050')!;
    if (ctx.server.major >= 15) expect(f.help).toContain('SET (security_invoker = true)');
    else {
      expect(f.help).toContain('no security_invoker');
      expect(f.help).not.toContain('SET (security_invoker');
    }
  });

  it('a clean tenant table gives no finding of any rule about it', async () => {
    const { findings } = await auditFixture('RLS002', 'good');
    expect(findings.filter((f) => f.object.kind !== 'role' && f.object.kind !== 'database')).toEqual([]);
  });
});
