import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { runCli } from '../helpers/cli.js';

/**
 * apply, plan, audit, verify and explain, the real binary, on databases
 * applied from a claim-model and a Citus policy file (issue 17): what rlsctl
 * generated is what audit and plan expect (no finding, no drift), verify sets
 * the tenant the model's way and finds no leak on a correct database and a
 * leak on a broken one, explain plans with the tenant set the model's way.
 * The setting model runs the same steps, as the control.
 */

const MODELS: Array<{ name: string; header: string }> = [
  { name: 'setting', header: 'tenant: { setting: app.tenant_id, column: org_id }' },
  { name: 'claim', header: 'tenant: { claim: app_metadata.org_id, column: org_id }' },
  { name: 'citus', header: 'engine: citus\ntenant: { setting: app.tenant_id, column: org_id }' },
  { name: 'citus with a claim', header: 'engine: citus\ntenant: { setting: request.jwt.claims, claim: org, type: bigint, column: org_id }' },
];

for (const model of MODELS) {
  describeEachServer(`rlsctl on a ${model.name}-model database`, (ctx) => {
    const app = uniqueName('tm_app');
    const owner = uniqueName('tm_owner');
    const type = model.header.includes('bigint') ? 'bigint' : 'uuid';
    const [a, b] = type === 'bigint' ? ['1', '2'] : ['00000000-0000-4000-8000-00000000000a', '00000000-0000-4000-8000-00000000000b'];
    let dir = '';
    let policy = '';
    let queries = '';

    beforeAll(async () => {
      dir = mkdtempSync(path.join(tmpdir(), 'rlsctl-models-'));
      policy = path.join(dir, 'policy.yaml');
      queries = path.join(dir, 'queries.sql');
      await ctx.db.runScript(`
        CREATE ROLE ${app} NOLOGIN; CREATE ROLE ${owner} NOLOGIN;
        CREATE SCHEMA app AUTHORIZATION ${owner};
        GRANT USAGE ON SCHEMA app TO ${app};
        SET ROLE ${owner};
        CREATE TABLE app.items (org_id ${type} NOT NULL, id int NOT NULL, name text, PRIMARY KEY (org_id, id));
        CREATE TABLE app.events (org_id ${type} NOT NULL, at int NOT NULL, what text) PARTITION BY RANGE (at);
        CREATE TABLE app.events_1 PARTITION OF app.events FOR VALUES FROM (0) TO (100);
        CREATE TABLE app.currencies (code text PRIMARY KEY);
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO ${app};
        INSERT INTO app.items VALUES ('${a}', 1, 'a'), ('${b}', 2, 'b');
        INSERT INTO app.events VALUES ('${a}', 1, 'a'), ('${b}', 2, 'b');
        INSERT INTO app.currencies VALUES ('EUR');
        RESET ROLE;
      `);
      writeFileSync(
        policy,
        `version: 1\n${model.header}\nroles: { app: [${app}] }\nschemas:\n  app:\n    tables:\n      items: tenant\n      events: tenant\n      currencies: shared\n`,
      );
      writeFileSync(queries, '-- name: by id\nSELECT name FROM app.items WHERE id = $1;\n');
      const r = await runCli(['apply', '--db', ctx.db.url, '--policies', policy, '--quiet']);
      expect(r.code, r.stderr + r.stdout).toBe(0);
    });

    afterAll(async () => {
      rmSync(dir, { recursive: true, force: true });
      for (const role of [app, owner]) {
        await ctx.db.query(`DROP OWNED BY ${role} CASCADE`).catch(() => undefined);
        await ctx.db.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
      }
    });

    it('after apply, plan is empty and audit finds nothing: no RLS041, RLS021 or RLS006 for the generated form', async () => {
      const plan = await runCli(['plan', '--db', ctx.db.url, '--policies', policy, '--check', '--quiet']);
      expect(plan.code, plan.stdout + plan.stderr).toBe(0);
      const audit = await runCli(['audit', '--db', ctx.db.url, '--policies', policy, '--format', 'json', '--fail-on', 'never']);
      expect(audit.code, audit.stderr).toBe(0);
      // Findings about the tables and policies of the schema; roles are cluster-wide, and other test
      // files make roles (BYPASSRLS ones too, RLS011) on the same servers at the same time.
      const findings = JSON.parse(audit.stdout)
        .findings.filter((f: { object: { schema?: string } }) => f.object.schema === 'app')
        .map((f: { rule: string; message: string }) => `${f.rule} ${f.message}`);
      expect(findings).toEqual([]);
    });

    it('verify sets the tenant the way of the model and finds no leak on the applied database', async () => {
      const r = await runCli(['verify', '--db', ctx.db.url, '--policies', policy, '--format', 'json']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc.findings).toEqual([]);
      expect(doc.stats.probes).toBeGreaterThan(10);
    });

    it('verify finds the leak of a broken policy', async () => {
      await ctx.db.query(`ALTER POLICY rlsctl_tenant_guard ON app.items USING (true) WITH CHECK (true)`);
      await ctx.db.query(`ALTER POLICY rlsctl_tenant_access ON app.items USING (true) WITH CHECK (true)`);
      try {
        const r = await runCli(['verify', '--db', ctx.db.url, '--policies', policy, '--format', 'json']);
        expect(r.code, r.stderr).toBe(1);
        const rules = new Set(JSON.parse(r.stdout).findings.map((f: { rule: string; object: { name: string } }) => `${f.rule} ${f.object.name}`));
        expect(
          [...rules].some((x) => /^VER00\d items$/.test(x as string)),
          [...rules].join(', '),
        ).toBe(true);
      } finally {
        const r = await runCli(['apply', '--db', ctx.db.url, '--policies', policy, '--quiet']);
        expect(r.code, r.stderr).toBe(0);
      }
    });

    it('explain plans with the tenant set the way of the model: the tenant predicate is an index condition', async () => {
      const r = await runCli(['explain', '--db', ctx.db.url, '--policies', policy, '--format', 'json', '--tenant', a, queries]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).findings).toEqual([]);
      // The text report names what the setting held: the claims JSON for the claim model.
      const text = await runCli(['explain', '--db', ctx.db.url, '--policies', policy, '--tenant', a, queries]);
      expect(text.code, text.stderr).toBe(0);
      const claim = /claim: ([\w.]+)/.exec(model.header)?.[1].split('.');
      const held = claim ? JSON.stringify(claim.reduceRight<unknown>((v, k) => ({ [k]: v }), a)) : a;
      expect(text.stdout).toContain(`${claim ? (/setting: ([\w.]+)/.exec(model.header)?.[1] ?? 'request.jwt.claims') : 'app.tenant_id'} = '${held}'`);
    });
  });
}
