import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { runCli } from '../helpers/cli.js';

/**
 * `rlsctl init` on a database whose existing policies read the tenant from the
 * JWT claims (PostgREST's request.jwt.claims, Supabase's auth.jwt()): the draft
 * says `tenant.claim` with the setting, and validate accepts it.
 */
describeEachServer('init on a claim-model database', (ctx) => {
  const app = uniqueName('ic_app');
  let work = '';

  beforeAll(async () => {
    await ctx.db.runScript(`
      CREATE ROLE ${app} NOLOGIN;
      CREATE SCHEMA auth;
      CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$ SELECT NULLIF(current_setting('request.jwt.claims', true), '')::jsonb $$;
      CREATE SCHEMA app;
      CREATE TABLE app.projects (org_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (org_id, id));
      CREATE TABLE app.tasks (org_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (org_id, id));
      CREATE TABLE app.notes (org_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (org_id, id));
      ALTER TABLE app.projects ENABLE ROW LEVEL SECURITY;
      ALTER TABLE app.tasks ENABLE ROW LEVEL SECURITY;
      ALTER TABLE app.notes ENABLE ROW LEVEL SECURITY;
      CREATE POLICY p ON app.projects TO ${app} USING (org_id = ((current_setting('request.jwt.claims', true)::jsonb -> 'app_metadata') ->> 'org_id')::uuid);
      CREATE POLICY t ON app.tasks TO ${app} USING (org_id = (SELECT (auth.jwt() -> 'app_metadata' ->> 'org_id')::uuid));
      CREATE POLICY n ON app.notes TO ${app} USING (org_id = (auth.jwt() ->> 'org')::uuid);
    `);
    work = mkdtempSync(path.join(tmpdir(), 'rlsctl-init-claims-'));
  });

  afterAll(async () => {
    rmSync(work, { recursive: true, force: true });
    await ctx.db.query(`DROP OWNED BY ${app}`).catch(() => undefined);
    await ctx.db.query(`DROP ROLE IF EXISTS ${app}`).catch(() => undefined);
  });

  it('drafts tenant.claim from the path most policies read, with request.jwt.claims, and validate accepts it', async () => {
    const file = path.join(work, 'policy.yaml');
    const result = await runCli(['init', '--db', ctx.db.url, '--schema', 'app', '--tenant-column', 'org_id', '-o', file]);
    expect(result.code, result.stderr).toBe(0);
    const doc = parseYaml(readFileSync(file, 'utf8'));
    expect(doc.tenant).toEqual({ setting: 'request.jwt.claims', claim: 'app_metadata.org_id', type: 'uuid', column: 'org_id' });
    expect(result.stderr + readFileSync(file, 'utf8')).toContain('tenant claim app_metadata.org_id of request.jwt.claims inferred from the existing policies');
    expect((await runCli(['validate', '--policies', file])).code).toBe(0);
  });
});
