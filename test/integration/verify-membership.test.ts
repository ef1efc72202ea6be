import { afterAll, beforeAll, expect, it } from 'vitest';
import { parsePolicy } from '../../src/policy/load-policy.js';
import type { PolicyModel } from '../../src/policy/model.js';
import { compileScript } from '../../src/compile/render-sql.js';
import { factsFromModel } from '../../src/facts/resolve-facts.js';
import { runVerify } from '../../src/verify/run-verify.js';
import { openDatabase, type Database } from '../../src/db/connection.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';

/**
 * verify with tenant.membership: as each tenant it acts as a synthetic member of that tenant
 * alone; a user with no membership, and a member acting in a tenant they do not belong to, must
 * read nothing. No leak on the compiled policies; a leak found once the lookup is broken.
 */

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';

function policyYaml(app: string, schema: string, activeTenant: boolean): string {
  return `version: 1
tenant:
  column: org_id
${activeTenant ? '  setting: app.active_org\n' : ''}  membership:
    table: ${schema}.members
    user_column: user_id
    tenant_column: org_id
    user: { setting: app.user_id, type: uuid }
roles:
  app: [${app}]
schemas:
  ${schema}:
    tables:
      members: { mode: exempt, reason: membership table }
      docs: tenant
`;
}

describeEachServer('verify, membership model', (ctx) => {
  const app = uniqueName('vapp');
  let all: PolicyModel;
  let active: PolicyModel;
  let db: Database;

  beforeAll(async () => {
    const tables = (schema: string) => `
      CREATE SCHEMA ${schema};
      CREATE TABLE ${schema}.members (user_id uuid NOT NULL, org_id uuid NOT NULL, PRIMARY KEY (user_id, org_id));
      CREATE TABLE ${schema}.docs (org_id uuid NOT NULL, id int NOT NULL, body text, PRIMARY KEY (org_id, id));
      INSERT INTO ${schema}.docs VALUES ('${A}', 1, 'a'), ('${B}', 2, 'b');
      GRANT USAGE ON SCHEMA ${schema} TO ${app};
      GRANT SELECT, INSERT, UPDATE, DELETE ON ${schema}.docs TO ${app};`;
    await ctx.db.runScript(`CREATE ROLE ${app} NOLOGIN; ${tables('vall')} ${tables('vact')}`);
    all = await parsePolicy([{ file: 'all.yaml', text: policyYaml(app, 'vall', false) }]);
    active = await parsePolicy([{ file: 'active.yaml', text: policyYaml(app, 'vact', true) }]);
    for (const model of [all, active]) await ctx.db.runScript(compileScript(model, { transactional: true }));
    db = await openDatabase({ db: ctx.db.url });
  });
  afterAll(async () => {
    await db?.close();
  });

  const leaks = async (model: PolicyModel) => {
    const result = await runVerify(db, factsFromModel(model), { tenants: [A, B] });
    return { result, messages: result.findings.filter((f) => f.rule === 'VER001').map((f) => f.message) };
  };

  it('no leak on the compiled policies, both forms; the memberships it wrote are rolled back', async () => {
    for (const model of [all, active]) {
      const { result, messages } = await leaks(model);
      expect(messages).toEqual([]);
      expect(result.leaks).toBe(0);
      expect(result.probes).toBeGreaterThan(10);
    }
    expect((await ctx.db.query('SELECT (SELECT count(*) FROM vall.members)::int + (SELECT count(*) FROM vact.members)::int AS n')).rows).toEqual([{ n: 0 }]);
  });

  it('a lookup that ignores the user: the member of one tenant, and a user with no membership, read the other tenant', async () => {
    const client = await ctx.db.client();
    try {
      await client.query('BEGIN');
      // Broken: every tenant that has a member, whoever asks.
      await client.query(`CREATE OR REPLACE FUNCTION vall.rlsctl_member_tenants() RETURNS uuid[] LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp AS $$ SELECT COALESCE(array_agg(org_id), '{}') FROM vall.members $$`);
      await client.query('COMMIT');
      const { messages } = await leaks(all);
      expect(
        messages.some((m) => m.includes(`${app} acting as tenant ${A} reads a row of tenant ${B} in vall.docs`)),
        messages.join('\n'),
      ).toBe(true);
      expect(
        messages.some((m) => m.includes(`${app} acting as a user with no membership reads a row of tenant`)),
        messages.join('\n'),
      ).toBe(true);
    } finally {
      await client.end();
      await ctx.db.runScript(compileScript(all, { transactional: true }));
    }
  });

  it('a lookup that trusts the active tenant without the membership: the member of one tenant acting in another reads it', async () => {
    const client = await ctx.db.client();
    try {
      await client.query(`CREATE OR REPLACE FUNCTION vact.rlsctl_member_tenants() RETURNS uuid[] LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp AS $$ SELECT ARRAY[NULLIF(current_setting('app.active_org', true), '')::uuid] $$`);
      const { messages } = await leaks(active);
      expect(messages).toHaveLength(2);
      expect(messages).toEqual(
        expect.arrayContaining([
          expect.stringContaining(
            `${app} acting as the member of tenant ${A} acting in tenant ${B}, of which they are not a member reads a row of tenant ${B} in vact.docs`,
          ),
          expect.stringContaining(`${app} acting as a user with no membership (acting in tenant ${A}) reads a row of tenant ${A} in vact.docs`),
        ]),
      );
    } finally {
      await client.end();
      await ctx.db.runScript(compileScript(active, { transactional: true }));
    }
  });

  it('tenant.claim beside a user claim in the same request.jwt.claims: verify sets one claims JSON per identity; no leak, nothing skipped; a lookup that ignores the active tenant leaks', async () => {
    await ctx.db.runScript(`
      CREATE SCHEMA vclaim;
      CREATE TABLE vclaim.members (user_id uuid NOT NULL, org_id uuid NOT NULL, PRIMARY KEY (user_id, org_id));
      CREATE TABLE vclaim.docs (org_id uuid NOT NULL, id int NOT NULL, body text, PRIMARY KEY (org_id, id));
      INSERT INTO vclaim.docs VALUES ('${A}', 1, 'a'), ('${B}', 2, 'b');
      GRANT USAGE ON SCHEMA vclaim TO ${app};
      GRANT SELECT, INSERT, UPDATE, DELETE ON vclaim.docs TO ${app};`);
    const text = policyYaml(app, 'vclaim', false)
      .replace('  column: org_id\n', '  column: org_id\n  claim: app_metadata.org_id\n')
      .replace('user: { setting: app.user_id, type: uuid }', 'user: { setting: request.jwt.claims, claim: sub, type: uuid }');
    const claim = await parsePolicy([{ file: 'claim.yaml', text }]);
    await ctx.db.runScript(compileScript(claim, { transactional: true }));
    const { result, messages } = await leaks(claim);
    expect(messages).toEqual([]);
    expect(result.leaks).toBe(0);
    expect(result.skipped).toBe(0);
    expect(result.probes).toBeGreaterThan(10);
    // Broken: the user's memberships, whatever the active tenant.
    await ctx.db.runScript(`CREATE OR REPLACE FUNCTION vclaim.rlsctl_member_tenants() RETURNS uuid[] LANGUAGE sql STABLE SECURITY DEFINER
      SET search_path = pg_catalog, pg_temp AS $$ SELECT COALESCE(array_agg(org_id), '{}') FROM vclaim.members
        WHERE user_id = (current_setting('request.jwt.claims', true)::jsonb ->> 'sub')::uuid $$`);
    try {
      const broken = await leaks(claim);
      expect(
        broken.messages.some((m) => m.includes(`acting as the member of tenant ${A} acting in tenant ${B}, of which they are not a member`)),
        broken.messages.join('\n'),
      ).toBe(true);
    } finally {
      await ctx.db.runScript(compileScript(claim, { transactional: true }));
    }
  });
});
