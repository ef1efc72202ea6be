import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { ROOT, runCli } from '../helpers/cli.js';

/** `rlsctl init`: a starter policy file from a live database, which `rlsctl validate` accepts. */

function fixture(name: string, roles: Record<string, string>): string {
  return readFileSync(path.join(ROOT, 'fixtures/live', name), 'utf8').replace(/\{\{(\w+)\}\}/g, (_, k: string) => roles[k]);
}

/** The lines of the file that are not comments. */
function active(text: string): string[] {
  return text.split('\n').filter((l) => !/^\s*#/.test(l) && l.trim() !== '');
}

describeEachServer('init', (ctx) => {
  const roles = { app: uniqueName('app'), owner: uniqueName('owner'), other: uniqueName('other') };
  let work = '';

  beforeAll(async () => {
    await ctx.db.runScript(fixture('schema.sql', roles));
    // A policy made by hand before rlsctl: init summarises it and learns the app role and the setting from it.
    await ctx.db.runScript(`
      ALTER TABLE shop.accounts ENABLE ROW LEVEL SECURITY;
      CREATE POLICY legacy ON shop.accounts TO ${roles.app} USING (tenant_id = current_setting('app.current_org', true)::uuid);`);
    work = mkdtempSync(path.join(tmpdir(), 'rlsctl-init-'));
  });

  it('writes a starter file that validate accepts: tenant tables declared, partitions folded, the rest left to decide', async () => {
    const file = path.join(work, 'policies', 'policies.yaml');
    const result = await runCli(['init', '--db', ctx.db.url, '--schema', 'shop', '-o', file]);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(
      `wrote ${file}: 4 tenant tables; 5 tables without tenant_id to decide (listed in comments): shop.Odd Table, shop.currencies, shop.migrations, shop.notes, shop.order_lines`,
    );
    const text = readFileSync(file, 'utf8');
    const doc = parseYaml(text);
    expect(doc.tenant).toEqual({ setting: 'app.current_org', type: 'uuid', column: 'tenant_id' });
    // (bypass: only BYPASSRLS roles that matter to this database; see init-real-schemas.test.ts)
    expect(doc.roles.app).toEqual([roles.app]);
    // partitions are not declared: they follow their parent
    expect(doc.schemas.shop.tables).toEqual({ accounts: 'tenant', audit_log: 'tenant', events: 'tenant', orders: 'tenant' });
    expect(active(text).some((l) => /events_(a|b|old)/.test(l))).toBe(false);
    // tables without the tenant column are listed in comments, never silently exempt
    expect(text).not.toMatch(/^\s+\w+:\s*\{\s*mode: exempt/m);
    // a foreign key to a tenant table suggests `via`
    expect(text).toContain('      # order_lines: { via: { parent: orders, columns: [order_tenant, order_id], references: [tenant_id, id] } }');
    expect(text).toContain('      # currencies: shared');
    expect(text).toContain('      # Odd Table: { mode: exempt, reason: "..." }');
    // the existing policy is summarised
    expect(text).toMatch(
      /# existing on accounts: RLS enabled, not forced; 1 policy\n\s+#\s+legacy: permissive for all to \S+ USING \(tenant_id = \(current_setting\('app\.current_org'::text, true\)\)::uuid\)/,
    );

    const validate = await runCli(['validate', '--policies', file]);
    expect(validate.code).toBe(0);
    expect(validate.stderr).toContain('valid (4 tables in 1 schema)');
    // plan refuses to run until a person has decided about the other tables
    const plan = await runCli(['plan', '--policies', file, '--db', ctx.db.url]);
    expect(plan.code).toBe(2);
    expect(plan.stderr).toContain(
      '5 tables in a managed schema are not declared in the policy file: shop.Odd Table, shop.currencies, shop.migrations, shop.notes, shop.order_lines',
    );
  });

  it('refuses to overwrite a file without --force; -o - prints it; options override what is inferred', async () => {
    const file = path.join(work, 'existing.yaml');
    writeFileSync(file, 'keep me\n');
    const refused = await runCli(['init', '--db', ctx.db.url, '-o', file]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/exists already/);
    expect(readFileSync(file, 'utf8')).toBe('keep me\n');
    const forced = await runCli([
      'init',
      '--db',
      ctx.db.url,
      '--schema',
      'shop',
      '-o',
      file,
      '--force',
      '--tenant-column',
      'Org Id',
      '--tenant-setting',
      'app.org',
      '--app-role',
      roles.other,
    ]);
    expect(forced.code).toBe(0);
    const doc = parseYaml(readFileSync(file, 'utf8'));
    expect(doc.tenant).toEqual({ setting: 'app.org', type: 'uuid', column: 'Org Id' });
    expect(doc.roles.app).toEqual([roles.other]);
    expect(doc.schemas.shop.tables).toEqual({ 'Odd Table': 'tenant' });
    expect((await runCli(['validate', '--policies', file])).code).toBe(0);

    const printed = await runCli(['init', '--db', ctx.db.url, '--schema', 'shop', '-o', '-']);
    expect(printed.code).toBe(0);
    expect(parseYaml(printed.stdout).version).toBe(1);
    expect(existsSync(path.join(ROOT, '-'))).toBe(false);
  });
});

describe('init with the embedded default', () => {
  it('loads --schema SQL into an embedded PostgreSQL and drafts from it', async () => {
    const result = await runCli(['init', '--schema', 'fixtures/demo/schema.sql', '--schema', 'app', '--tenant-column', 'org_id', '-o', '-'], {
      env: { DATABASE_URL: '', PGHOST: '', PGPORT: '', PGUSER: '', PGDATABASE: '', PGPASSWORD: '', PGSSLMODE: '' },
    });
    expect(result.code).toBe(0);
    const doc = parseYaml(result.stdout);
    expect(Object.keys(doc.schemas)).toEqual(['app']);
    // organizations is the tenant root: the org_id columns reference its id
    expect(doc.schemas.app.tables).toEqual({
      events: 'tenant',
      organizations: { column: 'id' },
      projects: 'tenant',
      support_tickets: 'tenant',
      tasks: 'tenant',
      users: 'tenant',
    });
    // a foreign key to a tenant table suggests `via`
    expect(result.stdout).toContain('# task_comments: { via: { parent: tasks, columns: [task_id], references: [id] } }');
  });
});
