import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { runCli } from '../helpers/cli.js';

/**
 * Issue 14, names as map keys: a real role named `Public` is not the PUBLIC
 * pseudo-role, and a role named `__proto__` is a role like any other. Roles
 * are cluster-wide: these two names cannot be made unique, so this file
 * creates them if missing and drops them when done (no other file uses them).
 */

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';

const createRoleIfMissing = (name: string) =>
  `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '${name}') THEN CREATE ROLE "${name}" NOLOGIN; END IF; END $$`;

describeEachServer('names that are special words in JavaScript or SQL', (ctx) => {
  const app = uniqueName('nk_app');
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'rlsctl-names-as-keys-'));
    await ctx.db.query(createRoleIfMissing('Public'));
    await ctx.db.query(createRoleIfMissing('__proto__'));
    await ctx.db.query(`CREATE ROLE ${app} NOLOGIN`);
    await ctx.db.runScript(`
      CREATE SCHEMA app;
      CREATE SCHEMA pub;
      GRANT USAGE ON SCHEMA app TO "__proto__", ${app};
      CREATE TABLE pub.docs (id int PRIMARY KEY, tenant_id uuid NOT NULL, body text);
      CREATE POLICY docs_read ON pub.docs USING (true);
      CREATE TABLE app.notes (id int PRIMARY KEY, tenant_id uuid NOT NULL, body text);
      INSERT INTO app.notes VALUES (1, '${A}', 'a'), (2, '${B}', 'b');
      GRANT SELECT ON app.notes TO "__proto__";`);
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    for (const role of ['"Public"', '"__proto__"', app]) {
      await ctx.db.query(`DROP OWNED BY ${role} CASCADE`).catch(() => undefined);
      await ctx.db.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
    }
  });

  it('plan: a policy to the real role "Public" is not the existing policy TO PUBLIC', async () => {
    const policy = path.join(dir, 'public.yaml');
    writeFileSync(
      policy,
      `version: 1\nroles:\n  app: [${app}]\nschemas:\n  pub:\n    tables:\n      docs:\n        mode: shared\n        policies:\n          - { name: docs_read, to: [Public], using: "true" }\n`,
    );
    const r = await runCli(['plan', '--db', ctx.db.url, '--policies', policy, '--format', 'json']);
    expect(r.stderr).toBe('');
    const plan = JSON.parse(r.stdout) as { statements: Array<{ sql: string; target: { kind: string; name: string }; hazards: string[] }> };
    const change = plan.statements.filter((s) => s.target.kind === 'policy' && s.target.name === 'docs_read');
    expect(change).toHaveLength(1);
    expect(change[0].sql).toContain('TO "Public"');
  });

  it('plan: a missing role spelled like PUBLIC in another case is reported missing, not taken for PUBLIC', async () => {
    const policy = path.join(dir, 'missing.yaml');
    writeFileSync(
      policy,
      `version: 1\nroles:\n  app: [${app}]\nschemas:\n  pub:\n    tables:\n      docs:\n        mode: shared\n        policies:\n          - { name: docs_read, to: [PUBLIC], using: "true" }\n`,
    );
    const r = await runCli(['plan', '--db', ctx.db.url, '--policies', policy]);
    expect(r.stderr).toMatch(/PUBLIC/);
    expect(r.stderr).toMatch(/role/);
    expect(r.code).toBe(2);
  });

  it('verify: a role named __proto__ is probed, and its cross-tenant read is found', async () => {
    const r = await runCli([
      'verify',
      '--db',
      ctx.db.url,
      '--schema',
      'app',
      '--tenant-column',
      'tenant_id',
      '--tenant-setting',
      'app.tenant_id',
      '--app-role',
      '__proto__',
      '--format',
      'json',
      '--quiet',
    ]);
    expect(r.stderr).toBe('');
    const doc = JSON.parse(r.stdout) as { findings: Array<{ rule: string; fingerprint: string }>; stats: { roles: string[]; probes: number } };
    expect(doc.stats.roles).toEqual(['__proto__']);
    expect(doc.findings.map((f) => f.fingerprint)).toContain('VER001:app.notes:__proto__');
    expect(r.code).toBe(1);
  });
});

describeEachServer('a type named like an Object.prototype property', (ctx) => {
  const app = uniqueName('nk_type');

  beforeAll(async () => {
    await ctx.db.query(`CREATE ROLE ${app} NOLOGIN`);
    await ctx.db.runScript(`
      CREATE SCHEMA odd;
      CREATE DOMAIN odd."constructor" AS text;
      GRANT USAGE ON SCHEMA odd TO ${app};
      CREATE TABLE odd.items (id int PRIMARY KEY, tenant_id odd."constructor" NOT NULL, body text);
      GRANT SELECT ON odd.items TO ${app};`);
  });
  afterAll(async () => {
    await ctx.db.query(`DROP OWNED BY ${app} CASCADE`).catch(() => undefined);
    await ctx.db.query(`DROP ROLE IF EXISTS ${app}`).catch(() => undefined);
  });

  it('explain: a tenant column of type "constructor" is a type rlsctl does not know (text), not Object\'s constructor', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rlsctl-names-type-'));
    try {
      writeFileSync(path.join(dir, 'q.sql'), 'SELECT body FROM odd.items WHERE id = 1;\n');
      const r = await runCli([
        'explain',
        '--db',
        ctx.db.url,
        '--schema',
        'odd',
        '--tenant-setting',
        'app.tenant_id',
        '--app-role',
        app,
        path.join(dir, 'q.sql'),
        '--format',
        'json',
        '--quiet',
      ]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout).findings).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
