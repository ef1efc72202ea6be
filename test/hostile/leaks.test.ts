import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { quoteLiteral } from '../../src/compile/quote.js';
import { redactSecrets } from '../../src/db/connection.js';
import { errorText } from '../../src/verify/hide-values.js';
import { createProgress } from '../../src/cli/progress.js';

/**
 * Issue 14, "Leaks": what rlsctl prints must not carry what it was trusted
 * with. verify's findings name columns and types, never the values of
 * another tenant's rows (values only with --show-values, never in SARIF);
 * a password never appears, in any form it was given (URL, key=value,
 * PGPASSWORD), whatever characters it holds; and verify says when the rows
 * it writes as its privileged role fire user triggers.
 */

const TENANT_A = '00000000-0000-4000-8000-0000000000a1';
const TENANT_B = '00000000-0000-4000-8000-0000000000b2';
const TENANT_C = '00000000-0000-4000-8000-0000000000c3';
/** Distinctive values of the tenants' rows: none may reach a default report. */
const ROW_VALUES = [
  'zelda.leak@victim.example',
  'yorick.leak@other.example',
  'Zelda Quuxworth',
  'Yorick Blimpton',
  'carol.third@bystander.example',
  // hl.contacts: the update probe sets a column the role may update to its own value
  'wanda.update@victim.example',
  'victor.update@other.example',
  // hl.signups: seeding copies this row for tenant B, and a trigger refuses it, quoting it
  'xavier.seed@victim.example',
];

/** A password with every character a URL or a key=value string treats specially, and parts long enough to spot. */
const HOSTILE_PASSWORD = 'Sekr3t@Hunt3r:Brav0/D3lta?Ech0#F0xy%G0lf H0tel';
/** One a URL can carry without encoding except for its `@` (the redaction used to keep what followed the first one). */
const AT_PASSWORD = 'Sekr3t@Hunt3r@Brav0';

/** The password, its percent-encoded form, and every part of it longer than 2 characters. */
function secretForms(password: string): string[] {
  return [password, encodeURIComponent(password), ...password.split(/[@:/?#% ]/).filter((p) => p.length > 2)];
}

function expectNoSecret(result: CliResult, password: string): void {
  const output = result.stdout + result.stderr;
  for (const form of secretForms(password)) expect(output, `"${form}" printed`).not.toContain(form);
}

describe('redactSecrets', () => {
  it('redacts a URL password up to the last @ before the host, and a URL in the middle of a message', () => {
    const env = {};
    expect(redactSecrets('postgres://app:p@ss@host/db', env)).toBe('postgres://app:***@host/db');
    expect(redactSecrets(`cannot connect to postgres://app:${AT_PASSWORD}@127.0.0.1:1/db: connect ECONNREFUSED`, env)).toBe(
      'cannot connect to postgres://app:***@127.0.0.1:1/db: connect ECONNREFUSED',
    );
    expect(redactSecrets('postgres://u@h/d?password=s3cret&x=1 and postgresql://v:w0rd@h2/d', env)).toBe(
      'postgres://u@h/d?password=***&x=1 and postgresql://v:***@h2/d',
    );
  });

  it("redacts key=value passwords as libpq reads them: unquoted, quoted with \\' escapes, PGPASSWORD=", () => {
    const env = {};
    expect(redactSecrets("host=h password='Sekr3t Hunt3r\\'s' dbname=d", env)).toBe('host=h password=*** dbname=d');
    expect(redactSecrets('host=h password = Sekr3t:Hunt3r dbname=d', env)).toBe('host=h password = *** dbname=d');
    expect(redactSecrets('PGPASSWORD=Sekr3t rlsctl plan', env)).toBe('PGPASSWORD=*** rlsctl plan');
    // A column named password in SQL is not a connection string.
    expect(redactSecrets('SELECT t.password = $1 FROM t', env)).toBe('SELECT t.password = $1 FROM t');
  });

  it('redacts the literal PGPASSWORD and DATABASE_URL password wherever they appear, also percent-encoded and JSON-escaped', () => {
    const env = { PGPASSWORD: 'Sekr3t "Hunt3r"', DATABASE_URL: `postgres://u:${encodeURIComponent('D3lta/Ech0')}@h/d` };
    const json = JSON.stringify({ m: `a ${env.PGPASSWORD} b ${encodeURIComponent(env.PGPASSWORD)} c D3lta/Ech0` });
    const out = redactSecrets(json, env);
    expect(JSON.parse(out)).toEqual({ m: 'a *** b *** c ***' });
  });
});

describe('progress lines', () => {
  it('a drawn progress line and a note on a terminal carry no password', () => {
    const written: string[] = [];
    const stream = { isTTY: true, columns: 200, write: (text: string) => written.push(text) };
    const progress = createProgress({ stream, intervalMs: 0 });
    progress.update(`connecting to postgres://app:${AT_PASSWORD}@db:5432/app`);
    progress.note(`note: host=db password='${HOSTILE_PASSWORD}' dbname=app`);
    progress.done();
    const all = written.join('');
    expect(all).toContain('postgres://app:***@db:5432/app');
    expect(all).toContain('password=***');
    for (const form of [...secretForms(AT_PASSWORD), ...secretForms(HOSTILE_PASSWORD)]) expect(all).not.toContain(form);
  });
});

describe('errorText (a server error quoted in a verify finding)', () => {
  const row = new Map([
    ['email', { kind: 'literal' as const, text: 'zelda.leak@victim.example' }],
    ['note', { kind: 'literal' as const, text: 'leak' }],
  ]);
  it("cuts the probe row's values (as whole words) and the quoted inputs of data exceptions, unless --show-values", () => {
    const raise = { code: 'P0001', message: 'email zelda.leak@victim.example is taken in table insert_leak: leak' };
    expect(errorText(raise, false, row)).toBe('email … is taken in table insert_leak: … [P0001]');
    expect(errorText(raise, true, row)).toBe(`${raise.message} [P0001]`);
    const cast = { code: '22P02', message: 'invalid input syntax for type integer: "yorick.leak@other.example"' };
    expect(errorText(cast, false)).toBe('invalid input syntax for type integer: "…" [22P02]');
    // The empty tenant setting is no row's value: VER003's usual cause stays readable.
    expect(errorText({ code: '22P02', message: 'invalid input syntax for type uuid: ""' }, false)).toBe('invalid input syntax for type uuid: "" [22P02]');
  });
});

describeEachServer('hostile input: leaks', (ctx) => {
  const app = uniqueName('hlapp');
  const hostile = uniqueName('hlhost');
  const atRole = uniqueName('hlat');
  let policy = '';
  let host = '';
  let port = '';
  let superuser = '';
  const urlFor = (user: string, password: string, options: { encode?: boolean; port?: string } = {}) =>
    `postgres://${user}:${options.encode === false ? password : encodeURIComponent(password)}@${host}:${options.port ?? port}/${ctx.db.name}`;

  beforeAll(async () => {
    const u = new URL(ctx.db.url);
    host = u.hostname;
    port = u.port;
    superuser = decodeURIComponent(u.username);
    await ctx.db.runScript(`
      CREATE ROLE ${app} NOLOGIN;
      CREATE ROLE ${hostile} LOGIN SUPERUSER PASSWORD ${quoteLiteral(HOSTILE_PASSWORD)};
      CREATE ROLE ${atRole} LOGIN SUPERUSER PASSWORD ${quoteLiteral(AT_PASSWORD)};
      CREATE SCHEMA hl;
      CREATE TABLE hl.customers (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), org_id uuid NOT NULL, email text NOT NULL, name text NOT NULL);
      ALTER TABLE hl.customers ENABLE ROW LEVEL SECURITY;
      -- the leak: a permissive policy that admits every row
      CREATE POLICY leak ON hl.customers USING (true) WITH CHECK (true);
      INSERT INTO hl.customers (org_id, email, name) VALUES
        ('${TENANT_A}', '${ROW_VALUES[0]}', '${ROW_VALUES[2]}'),
        ('${TENANT_B}', '${ROW_VALUES[1]}', '${ROW_VALUES[3]}'),
        ('${TENANT_C}', '${ROW_VALUES[4]}', 'Carol');
      CREATE TABLE hl.audited (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, org_id uuid NOT NULL, note text NOT NULL);
      ALTER TABLE hl.audited ENABLE ROW LEVEL SECURITY;
      ALTER TABLE hl.audited FORCE ROW LEVEL SECURITY;
      CREATE POLICY tenant ON hl.audited USING (org_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))
        WITH CHECK (org_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid));
      CREATE TABLE hl.audit_trail (at timestamptz NOT NULL DEFAULT now(), who text NOT NULL);
      CREATE FUNCTION hl.remember() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO hl.audit_trail (who) VALUES (current_user); RETURN NEW; END $$;
      CREATE TRIGGER hl_remember AFTER INSERT ON hl.audited FOR EACH ROW EXECUTE FUNCTION hl.remember();
      CREATE TRIGGER hl_off AFTER INSERT ON hl.audited FOR EACH ROW EXECUTE FUNCTION hl.remember();
      ALTER TABLE hl.audited DISABLE TRIGGER hl_off;
      CREATE TABLE hl.contacts (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, org_id uuid NOT NULL, email text NOT NULL);
      ALTER TABLE hl.contacts ENABLE ROW LEVEL SECURITY;
      CREATE POLICY leak ON hl.contacts USING (true) WITH CHECK (true);
      INSERT INTO hl.contacts (org_id, email) VALUES ('${TENANT_A}', '${ROW_VALUES[5]}'), ('${TENANT_B}', '${ROW_VALUES[6]}');
      GRANT SELECT, UPDATE (email) ON hl.contacts TO ${app};
      CREATE TABLE hl.signups (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, org_id uuid NOT NULL, email text NOT NULL);
      ALTER TABLE hl.signups ENABLE ROW LEVEL SECURITY;
      ALTER TABLE hl.signups FORCE ROW LEVEL SECURITY;
      CREATE POLICY tenant ON hl.signups USING (org_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid));
      INSERT INTO hl.signups (org_id, email) VALUES ('${TENANT_A}', '${ROW_VALUES[7]}');
      CREATE FUNCTION hl.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no new signups: % for %', NEW.email, NEW.org_id; END $$;
      CREATE TRIGGER hl_refuse BEFORE INSERT ON hl.signups FOR EACH ROW EXECUTE FUNCTION hl.refuse();
      GRANT SELECT ON hl.signups TO ${app};
      -- probed last (verify goes by name): its last probe, an insert for the other tenant, fails (42501)
      CREATE TABLE hl.zz_refused (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, org_id uuid NOT NULL);
      ALTER TABLE hl.zz_refused ENABLE ROW LEVEL SECURITY;
      ALTER TABLE hl.zz_refused FORCE ROW LEVEL SECURITY;
      CREATE POLICY tenant ON hl.zz_refused USING (org_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))
        WITH CHECK (org_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid));
      CREATE TRIGGER zz_remember AFTER INSERT ON hl.zz_refused FOR EACH ROW EXECUTE FUNCTION hl.remember();
      GRANT SELECT, INSERT ON hl.zz_refused TO ${app};
      GRANT USAGE ON SCHEMA hl TO ${app};
      GRANT SELECT, INSERT, UPDATE, DELETE ON hl.customers, hl.audited TO ${app};
      GRANT ${app} TO ${hostile}, ${atRole};
    `);
    policy = path.join(mkdtempSync(path.join(tmpdir(), 'rlsctl-leaks-')), 'policy.yaml');
    writeFileSync(
      policy,
      `version: 1\ntenant: { setting: app.tenant_id, type: uuid, column: org_id }\nroles:\n  app: [${app}]\nschemas:\n  hl:\n    tables:\n      customers: tenant\n      audited: tenant\n      contacts: tenant\n      signups: tenant\n      zz_refused: tenant\n`,
    );
  });

  afterAll(async () => {
    for (const role of [app, hostile, atRole]) {
      await ctx.db.query(`DROP OWNED BY ${role}`).catch(() => undefined);
      await ctx.db.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
    }
  });

  const verify = (args: string[], options: { db?: string; env?: NodeJS.ProcessEnv } = {}) =>
    runCli(
      ['verify', ...(options.db === '' ? [] : ['--db', options.db ?? ctx.db.url]), '--policies', policy, '--tenant', TENANT_A, '--tenant', TENANT_B, ...args],
      {
        env: options.env,
      },
    );

  describe('verify findings quote no row values by default', () => {
    it('text, JSON and SARIF name the leak, its columns and types, and none of the rows values', async () => {
      for (const format of ['text', 'json', 'sarif']) {
        const r = await verify(['--format', format]);
        expect(r.code, r.stderr).toBe(1);
        expect(r.stdout).toContain('hl.customers');
        expect(r.stdout).toContain('VER004');
        // The statement names the columns and gives each value's type only.
        expect(r.stdout).toMatch(
          /INSERT INTO hl\.customers \(org_id, email, name\) VALUES \('00000000-0000-4000-8000-0000000000[ab][12]'::uuid, \$2::text, \$3::text\)/,
        );
        expect(r.stdout).toContain('UPDATE hl.contacts SET email = $1::text WHERE CURRENT OF rlsctl_row');
        // The row seeding could not write: the trigger's message and the INSERT, without the copied values.
        expect(r.stdout).toContain('no new signups: … for … [P0001] (INSERT INTO hl.signups (org_id, email) VALUES (');
        for (const value of [...ROW_VALUES, TENANT_C]) expect(r.stdout + r.stderr, `${format} quotes ${value}`).not.toContain(value);
      }
    });

    it('--show-values quotes them in text and JSON, and never in SARIF', async () => {
      const text = await verify(['--show-values']);
      expect(text.code).toBe(1);
      expect(text.stdout).toMatch(/yorick\.leak@other\.example|zelda\.leak@victim\.example/);
      expect(text.stdout).toMatch(/UPDATE hl\.contacts SET email = '(wanda|victor)\.update@[a-z.]+'::text/);
      expect(text.stdout).toContain(`no new signups: ${ROW_VALUES[7]} for ${TENANT_B} [P0001]`);
      const json = await verify(['--show-values', '--format', 'json']);
      const doc = JSON.parse(json.stdout);
      const insert = doc.findings.find((f: { rule: string }) => f.rule === 'VER004');
      expect(insert.message).toMatch(/yorick\.leak@other\.example|zelda\.leak@victim\.example/);
      const sarif = await verify(['--show-values', '--format', 'sarif']);
      expect(sarif.code).toBe(1);
      expect(sarif.stderr).toContain('--show-values is ignored with --format sarif');
      expect(JSON.parse(sarif.stdout).runs[0].results.length).toBeGreaterThan(0);
      for (const value of [...ROW_VALUES, TENANT_C]) expect(sarif.stdout, `SARIF quotes ${value}`).not.toContain(value);
    });
  });

  describe('verify says when the rows it writes fire user triggers', () => {
    it('the text header and the JSON stats name the table, its enabled triggers and the role they run as', async () => {
      const text = await verify([]);
      const header = text.stdout.slice(0, text.stdout.indexOf('\n\n'));
      expect(header).toContain('triggers: hl.audited (hl_remember), hl.signups (hl_refuse), hl.zz_refused (zz_remember)');
      expect(header).toContain(
        `inserts the tenants' rows into these tables as ${superuser}, a role that bypasses row level security, so their triggers run with its rights`,
      );
      expect(header).not.toContain('hl_off');
      expect(header).not.toContain('hl.customers (');
      const json = JSON.parse((await verify(['--format', 'json'])).stdout);
      expect(json.stats.connectingRole).toBe(superuser);
      expect(json.stats.triggers).toEqual([
        { schema: 'hl', name: 'audited', triggers: ['hl_remember'] },
        { schema: 'hl', name: 'signups', triggers: ['hl_refuse'] },
        { schema: 'hl', name: 'zz_refused', triggers: ['zz_remember'] },
      ]);
    });
  });

  describe('a password never appears, whatever it holds and however it was given', () => {
    it('a successful run prints the connection header with the password redacted (URL, percent-encoded)', async () => {
      const r = await verify([], { db: urlFor(hostile, HOSTILE_PASSWORD) });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stdout).toContain(`rlsctl verify of postgres://${hostile}:***@${host}:${port}/${ctx.db.name}`);
      expectNoSecret(r, HOSTILE_PASSWORD);
    });

    it('a successful run with an unencoded @ in the URL password redacts all of it (up to the last @)', async () => {
      const r = await verify([], { db: urlFor(atRole, AT_PASSWORD, { encode: false }) });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stdout).toContain(`rlsctl verify of postgres://${atRole}:***@${host}:${port}/${ctx.db.name}`);
      expectNoSecret(r, AT_PASSWORD);
    });

    it('JSON and SARIF runs and progress notes over a URL with the password carry none of it', async () => {
      for (const format of ['json', 'sarif']) {
        const r = await verify(['--format', format], { db: urlFor(hostile, HOSTILE_PASSWORD) });
        expect(r.code).toBe(1);
        JSON.parse(r.stdout);
        expectNoSecret(r, HOSTILE_PASSWORD);
      }
    });

    it('connection failures (refused port, wrong password, unparsable URL) print none of it, also with --verbose', async () => {
      const runs = [
        await verify(['--verbose'], { db: urlFor(hostile, HOSTILE_PASSWORD, { port: '1' }) }),
        await verify(['--verbose'], { db: urlFor(hostile, HOSTILE_PASSWORD, { encode: false, port: '1' }) }),
        await verify(['--verbose'], { db: urlFor(atRole, AT_PASSWORD, { encode: false, port: '1' }) }),
        await verify(['--verbose'], { db: urlFor(hostile, `${HOSTILE_PASSWORD}x`) }),
        await verify(['--verbose'], { db: '', env: { DATABASE_URL: urlFor(hostile, HOSTILE_PASSWORD, { encode: false, port: '1' }) } }),
      ];
      for (const r of runs) {
        expect(r.code, r.stderr).toBe(3);
        expect(r.stderr).toMatch(/cannot connect to postgres:\/\//);
        expectNoSecret(r, HOSTILE_PASSWORD);
        expectNoSecret(r, AT_PASSWORD);
      }
    });

    it('a key=value connection string (not accepted: exit 2) is echoed without its password, quoted or not', async () => {
      const escaped = HOSTILE_PASSWORD.replace(/['\\]/g, '\\$&');
      const kv = [
        `host=${host} port=${port} user=${hostile} password='${escaped}' dbname=${ctx.db.name}`,
        `host=${host} password=${AT_PASSWORD} dbname=${ctx.db.name}`,
      ];
      for (const db of kv) {
        for (const r of [await verify([], { db }), await verify([], { db: '', env: { DATABASE_URL: db } })]) {
          expect(r.code).toBe(2);
          expect(r.stderr).toContain('is not a postgres:// connection string');
          expect(r.stderr).toContain('password=***');
          expectNoSecret(r, HOSTILE_PASSWORD);
          expectNoSecret(r, AT_PASSWORD);
        }
      }
    });

    it("a usage error that echoes an argument (commander's own message) hides a password in it", async () => {
      const r = await runCli(['verify', '--format', `postgres://${hostile}:${AT_PASSWORD}@${host}:${port}/db`]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`argument 'postgres://${hostile}:***@${host}:${port}/db' is invalid`);
      expectNoSecret(r, AT_PASSWORD);
    });

    it('PGPASSWORD: a successful run and a refused port print none of it', async () => {
      const env = { PGHOST: host, PGPORT: port, PGUSER: hostile, PGDATABASE: ctx.db.name, PGPASSWORD: HOSTILE_PASSWORD };
      const ok = await verify(['--verbose'], { db: '', env });
      expect(ok.code, ok.stderr).toBe(1);
      expect(ok.stdout).toContain(`rlsctl verify of postgres://${hostile}@${host}:${port}/${ctx.db.name} (from PG* variables)`);
      expectNoSecret(ok, HOSTILE_PASSWORD);
      const refused = await verify(['--verbose'], { db: '', env: { ...env, PGPORT: '1' } });
      expect(refused.code).toBe(3);
      expectNoSecret(refused, HOSTILE_PASSWORD);
      // The literal password is blanked wherever it appears, also in a value verify prints (here: a tenant it acts as).
      await ctx.db.query(`ALTER ROLE ${atRole} PASSWORD ${quoteLiteral(TENANT_B)}`);
      const echoed = await verify(['--format', 'json'], { db: '', env: { ...env, PGUSER: atRole, PGPASSWORD: TENANT_B } });
      expect(echoed.code, echoed.stderr).toBe(1);
      expect(JSON.parse(echoed.stdout).stats.tenants).toEqual([TENANT_A, '***']);
      expect(echoed.stdout + echoed.stderr).not.toContain(TENANT_B);
      await ctx.db.query(`ALTER ROLE ${atRole} PASSWORD ${quoteLiteral(AT_PASSWORD)}`);
    });
  });
});
