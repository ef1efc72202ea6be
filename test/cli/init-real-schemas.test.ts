import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { quoteIdent } from '../../src/compile/quote.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { runCli } from '../helpers/cli.js';
import { createCanary, expectUntouched, snapshotDatabase } from '../helpers/hostile.js';

/**
 * `rlsctl init` on schemas like real ones: two tenant column names (one
 * camelCase), an organizations root, children with and without a foreign key
 * to a tenant table, tables that look like credentials or personal data,
 * BYPASSRLS roles of this database and of others, extension tables; and
 * catalog names that try to rewrite the draft.
 */

/** The lines of the file that are not comments. */
function active(text: string): string[] {
  return text.split('\n').filter((l) => !/^\s*#/.test(l) && l.trim() !== '');
}

describeEachServer('init on real schemas', (ctx) => {
  const roles = {
    app: uniqueName('app'),
    owner: uniqueName('bypass_owner'),
    conn: uniqueName('bypass_conn'),
    elsewhere: uniqueName('bypass_elsewhere'),
  };
  let work = '';

  beforeAll(async () => {
    await ctx.db.runScript(`
      CREATE ROLE ${roles.app} NOLOGIN;
      CREATE ROLE ${roles.owner} LOGIN BYPASSRLS;
      CREATE ROLE ${roles.conn} LOGIN BYPASSRLS;
      CREATE ROLE ${roles.elsewhere} LOGIN BYPASSRLS;
      GRANT CONNECT ON DATABASE ${quoteIdent(ctx.db.name)} TO ${roles.conn};
      CREATE SCHEMA crm;
      CREATE TABLE crm.organizations (id uuid PRIMARY KEY, name text NOT NULL);
      CREATE TABLE crm.contacts ("orgId" uuid NOT NULL REFERENCES crm.organizations (id), id bigint PRIMARY KEY, name text);
      CREATE TABLE crm.deals (tenant_id uuid NOT NULL REFERENCES crm.organizations (id), id bigint NOT NULL, title text, PRIMARY KEY (tenant_id, id));
      CREATE TABLE crm.deal_notes (id bigint PRIMARY KEY, deal_tenant uuid NOT NULL, deal_id bigint NOT NULL, body text,
        FOREIGN KEY (deal_tenant, deal_id) REFERENCES crm.deals (tenant_id, id));
      CREATE TABLE crm.contact_tags (contact_id bigint NOT NULL, tag text NOT NULL);
      CREATE TABLE crm.user_sessions (id bigint PRIMARY KEY, token text NOT NULL);
      CREATE TABLE crm.subscribers (id bigint PRIMARY KEY, email text NOT NULL);
      CREATE TABLE crm.countries (code text PRIMARY KEY);
      CREATE TABLE crm.legacy (tenant_id text NOT NULL);
      ALTER TABLE crm.countries OWNER TO ${roles.owner};
      CREATE EXTENSION citext SCHEMA crm;
      CREATE TABLE crm.citext_cache (v text);
      ALTER EXTENSION citext ADD TABLE crm.citext_cache;
      CREATE SCHEMA partman;
      CREATE EXTENSION pg_trgm SCHEMA partman;
      CREATE TABLE partman.template_crm_events (tenant_id uuid);
      CREATE TABLE partman.template_crm_deals (note text);`);
    work = mkdtempSync(path.join(tmpdir(), 'rlsctl-init-real-'));
  });

  it('fits a real schema: two tenant columns, the root, via only by a unique key, nothing sensitive shared, bypass roles of this database, extension tables exempt', async () => {
    const file = path.join(work, 'crm.yaml');
    const result = await runCli([
      'init',
      '--db',
      ctx.db.url,
      '--schema',
      'crm',
      '--schema',
      'partman',
      '--tenant-column',
      'tenant_id',
      '--tenant-column',
      'orgId',
      '--app-role',
      roles.app,
      '-o',
      file,
    ]);
    expect(result.code).toBe(0);
    const text = readFileSync(file, 'utf8');
    const doc = parseYaml(text);
    // both names are used, each table names the one it has; organizations is the tenant root
    expect(doc.tenant).toEqual({ setting: 'app.tenant_id', type: 'uuid', column: 'tenant_id' });
    expect(doc.schemas.crm.tables).toEqual({ contacts: { column: 'orgId' }, deals: 'tenant', organizations: { column: 'id' } });
    // a template table of an extension is exempt with the reason; the one with a tenant column too (it holds no rows)
    expect(doc.schemas.partman.tables).toEqual({
      template_crm_deals: { mode: 'exempt', reason: 'template table of the extension pg_trgm: holds no rows, its partitions copy its properties' },
      template_crm_events: { mode: 'exempt', reason: 'template table of the extension pg_trgm: holds no rows, its partitions copy its properties' },
    });
    // only the BYPASSRLS roles that own objects here or may connect by name
    expect(doc.roles.bypass).toEqual([roles.owner, roles.conn].sort());
    expect(doc.roles.app).toEqual([roles.app]);
    // via only by a foreign key to a unique key of a tenant table
    expect(text).toContain('      # deal_notes: { via: { parent: deals, columns: [deal_tenant, deal_id], references: [tenant_id, id] } }');
    expect(text).toContain('      # contact_tags: to decide: no tenant_id or orgId column; no foreign key to a unique key of a tenant table');
    expect(text).not.toMatch(/contact_tags: \{ via/);
    // credentials and personal data are never offered as shared, and say why
    expect(text).toContain(
      '      # user_sessions: to decide: no tenant_id or orgId column; no foreign key to a unique key of a tenant table; its name suggests credentials or personal data: never shared',
    );
    expect(text).toContain('its column email suggests credentials or personal data: never shared');
    expect(text).not.toMatch(/# (user_sessions|subscribers): shared/);
    expect(text).toContain('      # countries: shared');
    // a tenant column of another type is named as the reason
    expect(text).toContain('      # legacy: to decide: its tenant_id is text, not uuid');
    // extension-owned tables are exempt and left out: rlsctl does not manage them
    expect(text).toContain('      #   citext_cache: table of the extension citext');
    expect(active(text).some((l) => l.includes('citext_cache'))).toBe(false);

    expect((await runCli(['validate', '--policies', file])).code).toBe(0);
    // the mixed-case column reaches SQL quoted
    const compiled = await runCli(['compile', '--policies', file]);
    expect(compiled.code).toBe(0);
    expect(compiled.stdout).toContain('"orgId"');
  });

  it('a tenant column no table has exits 2 with a did-you-mean', async () => {
    const result = await runCli(['init', '--db', ctx.db.url, '--schema', 'crm', '--tenant-column', 'tenant_id', '--tenant-column', 'orgid_', '-o', '-']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('no table has a column orgid_ (--tenant-column)');
    expect(result.stderr).toContain('did you mean orgId?');
    expect(result.stdout).toBe('');
  });

  it('tenant column names that reference different tables exit 2: a project id is not the tenant id', async () => {
    // As trigger.dev's schema: projects carry organizationId, most tables only projectId.
    await ctx.db.runScript(`
      CREATE SCHEMA ws;
      CREATE TABLE ws.organizations (id uuid PRIMARY KEY);
      CREATE TABLE ws.projects (id uuid PRIMARY KEY, organization_id uuid NOT NULL REFERENCES ws.organizations (id));
      CREATE TABLE ws.members (organization_id uuid NOT NULL REFERENCES ws.organizations (id), name text);
      CREATE TABLE ws.jobs (id uuid PRIMARY KEY, project_id uuid NOT NULL REFERENCES ws.projects (id));
      CREATE TABLE ws.runs (id uuid PRIMARY KEY, project_id uuid NOT NULL REFERENCES ws.projects (id));`);
    const file = path.join(work, 'ws.yaml');
    const result = await runCli([
      'init',
      '--db',
      ctx.db.url,
      '--schema',
      'ws',
      '--tenant-column',
      'organization_id',
      '--tenant-column',
      'project_id',
      '-o',
      file,
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('organization_id references ws.organizations but project_id references ws.projects');
    expect(result.stderr).toContain('hint: name only the column that holds the tenant id');
    expect(existsSync(file)).toBe(false);
  });

  it('a schema whose tables are all to decide: uncommenting an offered line gives a valid file', async () => {
    // As trigger.dev's triggerdotdev_events schema: `tables: {}` followed by a block entry is invalid YAML.
    await ctx.db.runScript(`
      CREATE SCHEMA ev1;
      CREATE TABLE ev1.organizations (id uuid PRIMARY KEY);
      CREATE TABLE ev1.members (org uuid NOT NULL REFERENCES ev1.organizations (id));
      CREATE SCHEMA ev2;
      CREATE TABLE ev2.executions (id bigint PRIMARY KEY, body text);`);
    const file = path.join(work, 'ev.yaml');
    const result = await runCli(['init', '--db', ctx.db.url, '--schema', 'ev1', '--schema', 'ev2', '--tenant-column', 'org', '-o', file]);
    expect(result.code).toBe(0);
    const text = readFileSync(file, 'utf8');
    const line = '      # executions: { mode: exempt, reason: "..." }';
    expect(text).toContain(line);
    writeFileSync(file, text.replace(line, '      executions: { mode: exempt, reason: "an event log of the platform" }'));
    const validated = await runCli(['validate', '--policies', file]);
    expect(validated.stderr).toContain('valid (3 tables in 2 schemas)');
    expect(validated.code).toBe(0);
    expect(parseYaml(readFileSync(file, 'utf8')).schemas.ev2.tables).toEqual({ executions: { mode: 'exempt', reason: 'an event log of the platform' } });
  });

  it('via is offered through a NOT NULL foreign key first: a row whose nullable key is NULL would be invisible', async () => {
    // As trigger.dev's Waitpoint: completedByTaskRunId (nullable) comes before projectId (NOT NULL).
    await ctx.db.runScript(`
      CREATE SCHEMA wp;
      CREATE TABLE wp.organizations (id uuid PRIMARY KEY);
      CREATE TABLE wp.runs (id uuid PRIMARY KEY, org uuid NOT NULL REFERENCES wp.organizations (id));
      CREATE TABLE wp.projects (id uuid PRIMARY KEY, org uuid NOT NULL REFERENCES wp.organizations (id));
      CREATE TABLE wp.waitpoints (id uuid PRIMARY KEY, completed_by_run uuid REFERENCES wp.runs (id), project_id uuid NOT NULL REFERENCES wp.projects (id));`);
    const result = await runCli(['init', '--db', ctx.db.url, '--schema', 'wp', '--tenant-column', 'org', '-o', '-']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('      # waitpoints: { via: { parent: projects, columns: [project_id], references: [id] } }');
    expect(result.stdout).not.toContain('parent: runs');
    // the only key is nullable: offered, with the reason to look twice
    await ctx.db.runScript(`CREATE TABLE wp.alerts (id uuid PRIMARY KEY, run_id uuid REFERENCES wp.runs (id));`);
    const again = await runCli(['init', '--db', ctx.db.url, '--schema', 'wp', '--tenant-column', 'org', '-o', '-']);
    expect(again.stdout).toContain(
      '      # alerts: to decide: no org column; it references a tenant table; its run_id admits NULL: via hides the rows where it is NULL\n',
    );
    expect(again.stdout).toContain('      # alerts: { via: { parent: runs, columns: [run_id], references: [id] } }');
    expect(again.stdout).toContain('      # waitpoints: to decide: no org column; it references a tenant table\n');
  });

  it('the names in that refusal are escaped: a table name cannot write to the terminal', async () => {
    const hostile = 'pro\u001b[31mjects\nfake: line';
    await ctx.db.runScript(`
      CREATE SCHEMA ws2;
      CREATE TABLE ws2.organizations (id uuid PRIMARY KEY);
      CREATE TABLE ws2.members (organization_id uuid NOT NULL REFERENCES ws2.organizations (id));
      CREATE TABLE ws2.${quoteIdent(hostile)} (id uuid PRIMARY KEY);
      CREATE TABLE ws2.jobs (project_id uuid NOT NULL REFERENCES ws2.${quoteIdent(hostile)} (id));`);
    const result = await runCli([
      'init',
      '--db',
      ctx.db.url,
      '--schema',
      'ws2',
      '--tenant-column',
      'organization_id',
      '--tenant-column',
      'project_id',
      '-o',
      '-',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('but project_id references ws2."pro\\u001b[31mjects\\nfake: line"');
    expect(result.stderr).not.toContain('\u001b');
    expect(result.stdout).toBe('');
  });
});

// Its own database: the extensions of the first one change operator resolution for the snapshot's queries.
describeEachServer('init with hostile catalog names', (ctx) => {
  const roles = { app: uniqueName('app'), hostile: `${uniqueName('bypass_nl')}\n  app: [evil]` };

  beforeAll(async () => {
    await ctx.db.runScript(`
      CREATE ROLE ${roles.app} NOLOGIN;
      CREATE ROLE ${quoteIdent(roles.hostile)} LOGIN BYPASSRLS;
      GRANT CONNECT ON DATABASE ${quoteIdent(ctx.db.name)} TO ${quoteIdent(roles.hostile)};`);
  });

  it('catalog names cannot rewrite the draft: newlines and control characters are escaped', async () => {
    await ctx.db.runScript(`
      CREATE SCHEMA hostile;
      CREATE TABLE hostile.accounts (tenant_id uuid NOT NULL, id bigint PRIMARY KEY);
      CREATE TABLE hostile.secrets (v text);
      CREATE TABLE hostile.${quoteIdent('notes\n      audit: { mode: exempt, reason: x }\n      #')} (v text);
      ALTER TABLE hostile.secrets ENABLE ROW LEVEL SECURITY;
      CREATE POLICY ${quoteIdent('p\n      secrets: { mode: exempt, reason: pwned }\n#')} ON hostile.secrets USING (v = E'a\\n      x: 1\\u2028');
      CREATE TABLE hostile.${quoteIdent('bidi\u202etxt.\u0085x')} (v text);`);
    await createCanary(ctx.db);
    const before = await snapshotDatabase(ctx.db);
    const result = await runCli(['init', '--db', ctx.db.url, '--schema', 'hostile', '--app-role', roles.app, '-o', '-']);
    expect(result.code).toBe(0);
    const doc = parseYaml(result.stdout);
    // the decisions are the catalog's: one tenant table, nothing exempt, the others undecided
    expect(doc.schemas).toEqual({ hostile: { tables: { accounts: 'tenant' } } });
    // a role name a policy file cannot hold is left out, and named (escaped) in a comment
    expect(doc.roles.bypass).not.toContain(roles.hostile);
    expect(result.stdout).toContain(
      `left out because a policy file cannot name a role with control characters (rename them): ${JSON.stringify(roles.hostile)}`,
    );
    expect(doc.roles.app).toEqual([roles.app]);
    expect(active(result.stdout).filter((l) => /exempt|secrets|audit/.test(l))).toEqual([]);
    // every name shows, escaped, in the comments
    expect(result.stdout).toContain('# "notes\\n      audit: { mode: exempt, reason: x }\\n      #": to decide');
    expect(result.stdout).toContain('"p\\n      secrets: { mode: exempt, reason: pwned }\\n#": permissive');
    expect(result.stdout).toContain('\\u2028');
    expect(result.stdout).toContain('# "bidi\\u202etxt.\\u0085x": to decide');
    expect(result.stdout).not.toMatch(/[\u0085\u2028\u202e]/);
    expect(result.stderr).not.toMatch(/\n {6}audit/);
    expect(result.stderr).toContain('hostile.notes\\n      audit');
    await expectUntouched(ctx.db, before);
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'rlsctl-init-hostile-')), 'hostile.yaml');
    writeFileSync(file, result.stdout);
    expect((await runCli(['validate', '--policies', file])).code).toBe(0);
  });
});
