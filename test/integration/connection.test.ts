import { chownSync, copyFileSync, chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, resolveConnection, redactUrl } from '../../src/db/connection.js';
import { DatabaseError, UsageError } from '../../src/errors.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { ROOT, runCli } from '../helpers/cli.js';
import { startEmbeddedServer } from '../../src/embedded/embedded-server.js';

/**
 * Where the database comes from (--db, DATABASE_URL, PG*), sslmode with
 * libpq's meaning, and failures: exit 3 with a hint, never the password.
 */

describe('resolveConnection', () => {
  it('takes --db, then DATABASE_URL, then the PG* variables, then the embedded default', () => {
    const env = { DATABASE_URL: 'postgres://a@h1/d', PGHOST: 'h2' };
    expect(resolveConnection('postgres://b@h0/d', env)).toEqual({ kind: 'url', url: 'postgres://b@h0/d', from: '--db' });
    expect(resolveConnection(undefined, env)).toEqual({ kind: 'url', url: 'postgres://a@h1/d', from: 'DATABASE_URL' });
    expect(resolveConnection(undefined, { PGHOST: 'h2' })).toEqual({ kind: 'libpq' });
    expect(resolveConnection(undefined, { PGSSLMODE: 'require' })).toEqual({ kind: 'libpq' });
    expect(resolveConnection(undefined, {})).toEqual({ kind: 'embedded' });
    expect(() => resolveConnection('mysql://x', {})).toThrow(UsageError);
  });

  it('redacts the password of a connection string, in the authority and in a parameter', () => {
    expect(redactUrl('postgres://u:s3cr%40t@h:5432/d?sslmode=require')).toBe('postgres://u:***@h:5432/d?sslmode=require');
    expect(redactUrl('postgres://u@h/d?password=s3cret&x=1')).toBe('postgres://u@h/d?password=***&x=1');
  });
});

describeEachServer('connection', (ctx) => {
  const login = uniqueName('login');
  const password = `pw-${uniqueName('x')}`;
  let work = '';
  let policy = '';
  const parts = () => new URL(ctx.db.url);
  const urlAs = (user: string, pass: string, query = '') => {
    const u = parts();
    u.username = user;
    u.password = pass;
    return u.toString() + query;
  };

  beforeAll(async () => {
    await ctx.db.runScript(`CREATE ROLE ${login} LOGIN PASSWORD '${password}'; CREATE SCHEMA conn; CREATE TABLE conn.t (tenant_id uuid NOT NULL);`);
    work = mkdtempSync(path.join(tmpdir(), 'rlsctl-conn-'));
    policy = path.join(work, 'policy.yaml');
    writeFileSync(policy, `version: 1\nroles: { app: [${login}] }\nschemas:\n  conn:\n    tables:\n      t: tenant\n`);
  });

  it('connects with the PG* variables alone, sslmode prefer by default (falls back to plain on a server without SSL)', async () => {
    const u = parts();
    const env = { PGHOST: u.hostname, PGPORT: u.port, PGUSER: login, PGPASSWORD: password, PGDATABASE: ctx.db.name };
    const db = await openDatabase({ env });
    try {
      expect(db.label).toBe(`postgres://${login}@${u.hostname}:${u.port}/${ctx.db.name} (from PG* variables)`);
      expect((await db.pool.query('SELECT current_user AS u')).rows[0].u).toBe(login);
    } finally {
      await db.close();
    }
  });

  it('honours sslmode: require and verify-full refuse a server without SSL, disable and prefer connect', async () => {
    for (const mode of ['disable', 'prefer', 'allow']) {
      const db = await openDatabase({ db: `${ctx.db.url}?sslmode=${mode}` });
      expect((await db.pool.query('SELECT 1 AS one')).rows[0].one).toBe(1);
      await db.close();
    }
    for (const mode of ['require', 'verify-full']) {
      const error = await openDatabase({ db: `${ctx.db.url}?sslmode=${mode}` }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DatabaseError);
      expect((error as DatabaseError).message).toMatch(/does not support SSL/);
      expect((error as DatabaseError).hint).toMatch(/sslmode=prefer/);
    }
    const u = parts();
    const viaEnv = await openDatabase({
      env: { PGHOST: u.hostname, PGPORT: u.port, PGUSER: login, PGPASSWORD: password, PGDATABASE: ctx.db.name, PGSSLMODE: 'require' },
    }).catch((e: unknown) => e);
    expect(viaEnv).toBeInstanceOf(DatabaseError);
    await expect(openDatabase({ db: `${ctx.db.url}?sslmode=sometimes` })).rejects.toThrow(UsageError);
  });

  it('a wrong password exits 3 with a hint, and the password appears nowhere in the output', async () => {
    const wrong = 'Wr0ng-Passw0rd-Zq9';
    const result = await runCli(['plan', '--policies', policy, '--db', urlAs(login, wrong), '--verbose']);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/password authentication failed/);
    expect(result.stderr).toMatch(/hint: the password was refused/);
    expect(result.stderr + result.stdout).not.toContain(wrong);
    expect(result.stderr).toContain(`${login}:***@`);
  });

  it('a refused port exits 3 with a hint, without the password', async () => {
    const u = new URL(urlAs(login, password));
    u.port = '1';
    const result = await runCli(['plan', '--policies', policy, '--db', u.toString()]);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/cannot connect to .*ECONNREFUSED/);
    expect(result.stderr).toMatch(/hint: is the server running and listening on that host and port\?/);
    expect(result.stderr + result.stdout).not.toContain(password);
  });

  it('--db wins over DATABASE_URL, which wins over the PG* variables', async () => {
    const refused = new URL(ctx.db.url);
    refused.port = '1';
    const env = { DATABASE_URL: refused.toString(), PGHOST: '127.0.0.1', PGPORT: '1' };
    const withDb = await runCli(['plan', '--policies', policy, '--db', urlAs(login, password), '--format', 'json'], { env });
    expect(withDb.code).toBe(0);
    expect(JSON.parse(withDb.stdout).command).toBe('plan');
    const withUrl = await runCli(['plan', '--policies', policy], { env });
    expect(withUrl.code).toBe(3);
    expect(withUrl.stderr).toContain(':1/');
    const good = { DATABASE_URL: urlAs(login, password), PGHOST: '127.0.0.1', PGPORT: '1' };
    expect((await runCli(['plan', '--policies', policy], { env: good })).code).toBe(0);
  });

  it('a password in the connection string stays hidden when a later step fails too', async () => {
    writeFileSync(
      path.join(work, 'ghost.yaml'),
      `version: 1\nroles: { app: [${login}] }\nschemas:\n  conn:\n    tables:\n      t: tenant\n      ghost: tenant\n`,
    );
    const result = await runCli(['apply', '--policies', path.join(work, 'ghost.yaml'), '--db', urlAs(login, password), '--verbose']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('conn.ghost');
    expect(result.stderr + result.stdout).not.toContain(password);
  });
});

describe('sslmode against a server with SSL (self-signed certificate)', () => {
  it('prefer and require encrypt without verifying; verify-ca checks the chain; verify-full also the host name', async () => {
    // The server reads its key as its own user: PostgreSQL refuses a key others can read.
    const dir = mkdtempSync(path.join(tmpdir(), 'rlsctl-ssl-'));
    chmodSync(dir, 0o755);
    const cert = path.join(dir, 'server.crt');
    const key = path.join(dir, 'server.key');
    copyFileSync(path.join(ROOT, 'fixtures/live/ssl/server.crt'), cert);
    copyFileSync(path.join(ROOT, 'fixtures/live/ssl/server.key'), key);
    chmodSync(cert, 0o644);
    chmodSync(key, 0o600);
    if (process.getuid?.() === 0) {
      // as root, the embedded server runs as the `postgres` system user
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
      chownSync(key, uid, gid);
    }
    const server = await startEmbeddedServer({ settings: { ssl: 'on', ssl_cert_file: cert, ssl_key_file: key } });
    const encrypted = async (db: Awaited<ReturnType<typeof openDatabase>>) =>
      (await db.pool.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0].ssl as boolean;
    try {
      for (const [query, ssl] of [
        ['', true],
        ['?sslmode=prefer', true],
        ['?sslmode=require', true],
        ['?sslmode=disable', false],
      ] as const) {
        const db = await openDatabase({ db: server.url + query });
        try {
          expect(await encrypted(db)).toBe(ssl);
        } finally {
          await db.close();
        }
      }
      // verify-ca with the certificate as the root: the chain is checked, the host name (127.0.0.1) is not
      const verified = await openDatabase({ db: `${server.url}?sslmode=verify-ca&sslrootcert=${encodeURIComponent(cert)}` });
      expect(await encrypted(verified)).toBe(true);
      await verified.close();
      // verify-full: the name on the certificate is not 127.0.0.1
      const full = await openDatabase({ db: `${server.url}?sslmode=verify-full&sslrootcert=${encodeURIComponent(cert)}` }).catch((e: unknown) => e);
      expect(full).toBeInstanceOf(DatabaseError);
      expect((full as Error).message).toMatch(/does not match|altnames|Hostname/i);
      // without the root certificate, verify-full refuses the self-signed certificate
      const unknown = await openDatabase({ db: `${server.url}?sslmode=verify-full` }).catch((e: unknown) => e);
      expect(unknown).toBeInstanceOf(DatabaseError);
      expect((unknown as Error).message).toMatch(/self[- ]signed/i);
      expect((unknown as Error).message).not.toContain(new URL(server.url).password);
      // the same through the libpq variables
      const u = new URL(server.url);
      const env = { PGHOST: u.hostname, PGPORT: u.port, PGUSER: 'postgres', PGPASSWORD: decodeURIComponent(u.password), PGDATABASE: 'postgres' };
      const viaEnv = await openDatabase({ env: { ...env, PGSSLMODE: 'verify-ca', PGSSLROOTCERT: cert } });
      expect(await encrypted(viaEnv)).toBe(true);
      await viaEnv.close();
      await expect(openDatabase({ env: { ...env, PGSSLMODE: 'verify-full' } })).rejects.toThrow(DatabaseError);
    } finally {
      await server.stop();
    }
  });
});
