import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type pg from 'pg';
import { AUDIT_RULES } from '../../src/audit/registry.js';
import { runAudit } from '../../src/audit/run-audit.js';
import { factsFromModel, inferFacts } from '../../src/facts/resolve-facts.js';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { planOnClient } from '../../src/plan/build-plan.js';
import { runScript } from '../../src/db/run-script.js';
import type { Finding } from '../../src/report/finding.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { ROOT } from '../helpers/cli.js';

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

const DIR = path.join(ROOT, 'fixtures/audit');

function readFixture(rule: string, name: string): string | undefined {
  const file = path.join(DIR, rule, name);
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

describeEachServer('audit rules', (ctx) => {
  // Roles are cluster-wide: names unique to this run, shared by the fixtures of this file.
  const roles: Record<string, string> = {
    app: uniqueName('app'),
    owner: uniqueName('owner'),
    bypass: uniqueName('bypass'),
    other: uniqueName('other'),
    extra: uniqueName('extra'),
  };
  const fill = (text: string) => text.replace(/\{\{(\w+)\}\}/g, (_, k: string) => roles[k] ?? `{{${k}}}`);

  beforeAll(async () => {
    await ctx.db.query(`CREATE ROLE ${roles.app} LOGIN PASSWORD 'secret'`);
    await ctx.db.query(`CREATE ROLE ${roles.owner} NOLOGIN`);
    await ctx.db.query(`CREATE ROLE ${roles.bypass} LOGIN BYPASSRLS PASSWORD 'secret'`);
    await ctx.db.query(`CREATE ROLE ${roles.other} LOGIN PASSWORD 'secret'`);
  });
  afterAll(async () => {
    for (const r of [roles.app, roles.owner, roles.bypass, roles.other]) await ctx.db.query(`DROP ROLE IF EXISTS ${r}`).catch(() => undefined);
  });

  /** Findings about this test's objects only: other test files make roles on the same cluster at the same time. */
  function ours(findings: Finding[]): Finding[] {
    const mine = new Set(Object.values(roles));
    return findings.filter((f) => (f.object.kind === 'role' ? mine.has(f.object.name) : f.object.kind === 'database' ? f.object.name === ctx.db.name : true));
  }

  async function auditFixture(rule: string, variant: 'bad' | 'good'): Promise<{ findings: Finding[]; help: string[] }> {
    const sql = readFixture(rule, `${variant}.sql`)!;
    const yaml = readFixture(rule, `${variant}.yaml`) ?? readFixture(rule, 'policy.yaml');
    const options = JSON.parse(readFixture(rule, 'options.json') ?? '{}') as { serverVersionNum?: number };
    const client: pg.Client = await ctx.db.client();
    try {
      await client.query('BEGIN');
      await runScript(client, fill(sql));
      const model = yaml ? await parsePolicy([{ file: `${rule}/${variant}.yaml`, text: fill(yaml) }]) : undefined;
      const facts = model
        ? factsFromModel(model)
        : await inferFacts(
            { schema: ['app'], tenantColumn: 'tenant_id', tenantSetting: 'app.tenant_id', appRole: [roles.app], bypassRole: [roles.bypass] },
            client,
          );
      const result = await runAudit(client, facts, {
        transaction: 'caller',
        serverVersionNum: options.serverVersionNum,
        plan: model ? () => planOnClient(client, model, { prune: false, inTransaction: true }) : undefined,
      });
      const findings = ours(result.findings);
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
