import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { runAudit } from '../../src/audit/run-audit.js';
import { factsFromModel, inferFacts, type FactOptions } from '../../src/facts/resolve-facts.js';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { planOnClient } from '../../src/plan/build-plan.js';
import type { Finding } from '../../src/report/finding.js';
import { uniqueName, type TestDatabase } from './db.js';
import { ROOT } from './cli.js';

/**
 * The audit fixtures, fixtures/audit/<RULE>/{bad,good}.sql (with policy.yaml,
 * bad.yaml / good.yaml, options.json where a rule needs them), as
 * test/rules/rules.test.ts and test/rules/fix-proof.test.ts read them.
 * `{{app}}`, `{{owner}}`, `{{bypass}}`, `{{other}}`, `{{extra}}` are role
 * names unique to the test run.
 */

const DIR = path.join(ROOT, 'fixtures/audit');

export function readAuditFixture(rule: string, name: string): string | undefined {
  const file = path.join(DIR, rule, name);
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

export interface FixtureRoles {
  roles: Record<string, string>;
  fill(text: string): string;
  create(db: TestDatabase): Promise<void>;
  drop(db: TestDatabase): Promise<void>;
  /** Findings about this test's objects only: other test files make roles on the same cluster at the same time. */
  ours(findings: Finding[], database: string): Finding[];
}

export function fixtureRoles(): FixtureRoles {
  const roles: Record<string, string> = {
    app: uniqueName('app'),
    owner: uniqueName('owner'),
    bypass: uniqueName('bypass'),
    other: uniqueName('other'),
    extra: uniqueName('extra'),
  };
  const made = [roles.app, roles.owner, roles.bypass, roles.other];
  return {
    roles,
    fill: (text) => text.replace(/\{\{(\w+)\}\}/g, (_, k: string) => roles[k] ?? `{{${k}}}`),
    async create(db) {
      await db.query(`CREATE ROLE ${roles.app} LOGIN PASSWORD 'secret'`);
      await db.query(`CREATE ROLE ${roles.owner} NOLOGIN`);
      await db.query(`CREATE ROLE ${roles.bypass} LOGIN BYPASSRLS PASSWORD 'secret'`);
      await db.query(`CREATE ROLE ${roles.other} LOGIN PASSWORD 'secret'`);
    },
    async drop(db) {
      for (const r of [...made, roles.extra]) {
        await db.query(`DROP OWNED BY ${r}`).catch(() => undefined);
        await db.query(`DROP ROLE IF EXISTS ${r}`).catch(() => undefined);
      }
    },
    ours(findings, database) {
      const mine = new Set(Object.values(roles));
      return findings.filter((f) => (f.object.kind === 'role' ? mine.has(f.object.name) : f.object.kind === 'database' ? f.object.name === database : true));
    },
  };
}

/**
 * Audit what `client`'s open transaction holds, with the fixture's facts: its
 * policy file when it has one, else the flags every fixture is written for
 * (schema app, tenant_id, app.tenant_id, the app and bypass roles) with `facts` over them.
 */
export async function auditOpenTransaction(
  client: pg.Client,
  fixtureRoles: FixtureRoles,
  database: string,
  rule: string,
  variant: 'bad' | 'good',
  facts: Partial<FactOptions> = {},
): Promise<Finding[]> {
  const yaml = readAuditFixture(rule, `${variant}.yaml`) ?? readAuditFixture(rule, 'policy.yaml');
  const options = JSON.parse(readAuditFixture(rule, 'options.json') ?? '{}') as { serverVersionNum?: number };
  const { roles, fill } = fixtureRoles;
  const model = yaml ? await parsePolicy([{ file: `${rule}/${variant}.yaml`, text: fill(yaml) }]) : undefined;
  const resolved = model
    ? factsFromModel(model)
    : await inferFacts(
        { schema: ['app'], tenantColumn: 'tenant_id', tenantSetting: 'app.tenant_id', appRole: [roles.app], bypassRole: [roles.bypass], ...facts },
        client,
      );
  const result = await runAudit(client, resolved, {
    transaction: 'caller',
    serverVersionNum: options.serverVersionNum,
    plan: model ? () => planOnClient(client, model, { prune: false, inTransaction: true }) : undefined,
  });
  return fixtureRoles.ours(result.findings, database);
}

/**
 * A fix script without the fixes of other tests' roles and databases. Roles
 * and database settings are cluster-wide, and test files run at the same time
 * on one cluster: a script from `audit --fix-script` rightly fixes every login
 * role that bypasses RLS (RLS011) and every role or database default
 * (RLS010, RLS012, RLS023), which here would change the roles of other test
 * files under their feet. Blocks (a finding's title, then its lines, up to a
 * blank line) of those rules are kept only when their title names one of
 * `mine`.
 */
export function ownFixesOnly(script: string, mine: string[]): string {
  return script
    .split('\n\n')
    .filter((block) => {
      const title = /^-- (RLS010|RLS011|RLS012|RLS023) \S+ (.*)$/m.exec(block);
      return !title || mine.some((name) => title[2].startsWith(`${name.split(/\r\n|\r|\n/)[0]}`));
    })
    .join('\n\n');
}
