import pg from 'pg';
import { readdir, stat } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DatabaseError, RlsctlError, UsageError } from '../errors.js';
import { startEmbeddedServer, type EmbeddedServer } from '../embedded/embedded-server.js';
import { runScript } from './run-script.js';
import { pinStandardStrings } from './standard-strings.js';
import { readInputFile } from '../input/read-input-file.js';

/**
 * Where a command's database comes from: `--db`, then DATABASE_URL, then the
 * libpq variables (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, PGSSLMODE,
 * which node-postgres reads itself), then the embedded default.
 */
export type ConnectionSource = { kind: 'url'; url: string; from: '--db' | 'DATABASE_URL' } | { kind: 'libpq' } | { kind: 'embedded' };

const LIBPQ_VARIABLES = ['PGHOST', 'PGPORT', 'PGUSER', 'PGDATABASE', 'PGPASSWORD', 'PGSSLMODE'];

export function resolveConnection(db: string | undefined, env: NodeJS.ProcessEnv = process.env): ConnectionSource {
  if (db) rememberPassword(db);
  if (db) return { kind: 'url', url: checkUrl(db, '--db'), from: '--db' };
  if (env.DATABASE_URL) return { kind: 'url', url: checkUrl(env.DATABASE_URL, 'DATABASE_URL'), from: 'DATABASE_URL' };
  if (LIBPQ_VARIABLES.some((v) => env[v])) return { kind: 'libpq' };
  return { kind: 'embedded' };
}

function checkUrl(url: string, from: string): string {
  if (!/^postgres(ql)?:\/\//.test(url)) {
    throw new UsageError(`${from} is not a postgres:// connection string: ${redactUrl(url)}`, {
      hint: 'write it as postgres://user@host:5432/database',
    });
  }
  return url;
}

/** The connection string with its password replaced: the only form that is ever printed. */
export function redactUrl(url: string): string {
  return redactSecrets(url);
}

/**
 * Passwords of this process that are not in PGPASSWORD or DATABASE_URL (those
 * two are read at each call): the password of every connection string given
 * with --db, remembered by resolveConnection.
 */
const rememberedPasswords = new Set<string>();

/** Remember the password of a connection string (URL or key=value form) so that redactSecrets hides it wherever it appears. */
export function rememberPassword(connection: string): void {
  const password = passwordOf(connection);
  if (password) rememberedPasswords.add(password);
}

/**
 * The password in a connection string: a URL's userinfo after the first `:`,
 * up to the LAST `@` (a password may hold an unencoded `@`), or the value of
 * a `password` key (`?password=` in a URL, `password=…` or `password='…'` in
 * the key=value form, with libpq's backslash escapes).
 */
export function passwordOf(connection: string): string | undefined {
  const url = /^[a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:(.*)@/is.exec(connection);
  if (url) return url[1];
  const query = /[?&]password=([^&#]*)/i.exec(connection);
  if (query) return query[1];
  const key = new RegExp(`${KEYWORD.source}(${VALUE.source})`, 'i').exec(connection);
  if (!key) return undefined;
  const value = key[1];
  return value.startsWith("'") ? value.replace(/^'|'$/g, '').replace(/\\(.)/g, '$1') : value.replace(/\\(.)/g, '$1');
}

/** `password =` in a key=value connection string (also PGPASSWORD=), not a column `x.password` nor `?password=` (URL_QUERY). */
const KEYWORD = /(?<![\w.?&])(?:PG)?password\s*=\s*/;
/** A key=value value as libpq reads it: single-quoted with backslash escapes (to the end if unterminated), or up to white space. */
const VALUE = /'(?:[^'\\]|\\.)*(?:'|$)|(?:\\.|[^\s\\"])+/;
/** A URL's userinfo password: from the first `:` after the user to the last `@` of the run of non-space characters (not past a `"`: a JSON string's end). */
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s:/@"]*):[^\s"]*@/gi;
const URL_QUERY = /([?&]password=)[^&#\s"]*/gi;
const KEY_VALUE = new RegExp(`(${KEYWORD.source})(?:${VALUE.source})`, 'gi');

/**
 * `text` with every password rlsctl knows of replaced by `***`: the password
 * in any postgres URL (up to the last `@` before the host) or key=value
 * connection string in it, and, wherever they appear, the literal values of
 * PGPASSWORD, of DATABASE_URL's password and of the passwords remembered from
 * --db (as written, percent-decoded, percent-encoded and JSON-escaped). Every
 * output boundary of the CLI calls it: stdout (src/cli/common.ts write), notes
 * and progress on stderr, and errors (src/cli/main.ts).
 */
export function redactSecrets(text: string, env: NodeJS.ProcessEnv = process.env): string {
  let out = text;
  for (const secret of knownSecretForms(env)) out = out.split(secret).join('***');
  return out.replace(URL_PASSWORD, '$1:***@').replace(URL_QUERY, '$1***').replace(KEY_VALUE, '$1***');
}

/** Secrets shorter than this are not replaced as literals (a one-letter password would blank every such letter). */
const MIN_LITERAL = 3;

function knownSecretForms(env: NodeJS.ProcessEnv): string[] {
  const passwords = new Set(rememberedPasswords);
  if (env.PGPASSWORD) passwords.add(env.PGPASSWORD);
  const fromUrl = env.DATABASE_URL ? passwordOf(env.DATABASE_URL) : undefined;
  if (fromUrl) passwords.add(fromUrl);
  const forms = new Set<string>();
  for (const password of passwords) {
    let decoded = password;
    try {
      decoded = decodeURIComponent(password);
    } catch {
      // not percent-encoded: as written
    }
    for (const p of [password, decoded]) {
      for (const form of [p, encodeURIComponent(p), JSON.stringify(p).slice(1, -1)]) if (form.length >= MIN_LITERAL) forms.add(form);
    }
  }
  // Longest first: a password that contains another is replaced whole.
  return [...forms].sort((a, b) => b.length - a.length);
}

export interface Database {
  pool: pg.Pool;
  /** Where the database is, for messages (never holds a password). */
  label: string;
  /** The connection string, when there is one (holds the password: never print it). */
  url?: string;
  embedded?: EmbeddedServer;
  /** Connect a dedicated client with the same settings (for sessions that must not share a connection). */
  connect(): Promise<pg.Client>;
  close(): Promise<void>;
}

export interface OpenOptions {
  db?: string;
  /** SQL files or a folder of them, loaded (in name order) into the embedded default only. */
  schema?: string;
  /** Called once on a fresh embedded database, after the schema is loaded. */
  prepareEmbedded?: (database: Database) => Promise<void>;
  env?: NodeJS.ProcessEnv;
  poolSize?: number;
}

export async function openDatabase(options: OpenOptions = {}): Promise<Database> {
  const source = resolveConnection(options.db, options.env);
  if (source.kind === 'embedded') return openEmbedded(options);
  if (options.schema) {
    throw new UsageError('--schema loads SQL into the embedded PostgreSQL only, and a database is named', {
      hint: 'leave out --db, DATABASE_URL and the PG* variables to use the embedded default, or run your migrations against that database yourself',
    });
  }
  const env = options.env ?? process.env;
  const mode = sslModeOf(source, env);
  const label = source.kind === 'url' ? redactUrl(source.url) : describeLibpq(env);
  const url = source.kind === 'url' ? source.url : undefined;
  let database = makeDatabase(connectionConfig(source, env, mode), label, url, options.poolSize);
  try {
    await checkConnection(database);
  } catch (error) {
    // libpq's `prefer` (its default) and `allow`: SSL if the server offers it, plain otherwise.
    if ((mode === 'prefer' || mode === 'allow') && /does not support SSL/i.test(String((error as Error).message))) {
      database = makeDatabase(connectionConfig(source, env, 'disable'), label, url, options.poolSize);
      await checkConnection(database);
    } else throw error;
  }
  return database;
}

/**
 * sslmode as libpq reads it: the connection string's `sslmode`, else
 * PGSSLMODE, else `prefer` (libpq's default).
 */
export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'] as const;
export type SslMode = (typeof SSL_MODES)[number];

function sslModeOf(source: ConnectionSource, env: NodeJS.ProcessEnv): SslMode {
  const fromUrl = source.kind === 'url' ? /[?&]sslmode=([^&#]*)/.exec(source.url)?.[1] : undefined;
  const mode = fromUrl ?? env.PGSSLMODE ?? 'prefer';
  if (!(SSL_MODES as readonly string[]).includes(mode)) {
    throw new UsageError(`unknown sslmode ${mode}`, { hint: `sslmode is one of ${SSL_MODES.join(', ')}` });
  }
  return mode as SslMode;
}

/**
 * node-postgres reads `sslmode` in a connection string with its own meaning
 * (require = verify-full) unless told `uselibpqcompat=true`; with it, require
 * encrypts without verifying (verify-ca when sslrootcert is given),
 * verify-ca checks the chain, verify-full the chain and the host name, as
 * libpq does. The PG* variables are read here too (not left to node-postgres)
 * so that PGSSLMODE gets the same meaning.
 */
function connectionConfig(source: ConnectionSource, env: NodeJS.ProcessEnv, mode: SslMode): pg.PoolConfig {
  // pg-connection-string's libpq mode knows neither `allow` (tried as prefer) nor pg's own `no-verify` (= require).
  const libpqMode = mode === 'allow' ? 'prefer' : mode === 'no-verify' ? 'require' : mode;
  if (source.kind === 'url') {
    let url = source.url.replace(/([?&])uselibpqcompat=[^&#]*&?/, '$1').replace(/[?&]$/, '');
    if (/[?&]sslmode=/.test(url)) url = url.replace(/([?&])sslmode=[^&#]*/, `$1sslmode=${libpqMode}`);
    else url += `${url.includes('?') ? '&' : '?'}sslmode=${libpqMode}`;
    return { connectionString: `${url}&uselibpqcompat=true` };
  }
  const read = (file: string | undefined) => (file ? readFileSync(file, 'utf8') : undefined);
  let ssl: pg.ClientConfig['ssl'];
  const ca = read(env.PGSSLROOTCERT);
  const clientCert = { ...(env.PGSSLCERT ? { cert: read(env.PGSSLCERT) } : {}), ...(env.PGSSLKEY ? { key: read(env.PGSSLKEY) } : {}) };
  switch (libpqMode) {
    case 'disable':
      ssl = false;
      break;
    case 'prefer':
      ssl = { rejectUnauthorized: false, ...clientCert };
      break;
    case 'require':
      ssl = ca ? { ca, checkServerIdentity: () => undefined, ...clientCert } : { rejectUnauthorized: false, ...clientCert };
      break;
    case 'verify-ca':
      ssl = { ...(ca ? { ca } : {}), checkServerIdentity: () => undefined, ...clientCert };
      break;
    case 'verify-full':
      ssl = { ...(ca ? { ca } : {}), ...clientCert };
      break;
  }
  return {
    host: env.PGHOST,
    port: env.PGPORT ? Number(env.PGPORT) : undefined,
    user: env.PGUSER,
    password: env.PGPASSWORD,
    database: env.PGDATABASE,
    ssl,
  };
}

function describeLibpq(env: NodeJS.ProcessEnv): string {
  return `postgres://${env.PGUSER ?? ''}@${env.PGHOST ?? 'localhost'}:${env.PGPORT ?? '5432'}/${env.PGDATABASE ?? env.PGUSER ?? ''} (from PG* variables)`;
}

function makeDatabase(config: pg.PoolConfig, label: string, url: string | undefined, poolSize = 4, embedded?: EmbeddedServer): Database {
  const pool = new pg.Pool({ ...config, max: poolSize, application_name: 'rlsctl', onConnect: pinStandardStrings });
  // An idle client that errors (the server restarted) must not crash the process.
  pool.on('error', () => undefined);
  return {
    pool,
    label,
    url,
    embedded,
    async connect() {
      const client = new pg.Client({ ...config, application_name: 'rlsctl' });
      try {
        await client.connect();
        await pinStandardStrings(client);
      } catch (error) {
        await client.end().catch(() => undefined);
        throw connectionError(error, label);
      }
      return client;
    },
    async close() {
      await pool.end().catch(() => undefined);
      await embedded?.stop();
    },
  };
}

async function checkConnection(database: Database): Promise<void> {
  try {
    const client = await database.pool.connect();
    client.release();
  } catch (error) {
    await database.close();
    throw connectionError(error, database.label);
  }
}

/** A failed connection: exit 3, with a hint, and never the password. */
export function connectionError(error: unknown, label: string): DatabaseError {
  const e = error as { code?: string; message?: string };
  const hints: Record<string, string> = {
    ECONNREFUSED: 'is the server running and listening on that host and port?',
    ENOTFOUND: 'the host name does not resolve: check the host in the connection string',
    '28P01': 'the password was refused: check the user and password (PGPASSWORD or the connection string)',
    '28000': 'the server refused this user or host: check pg_hba.conf and the user name',
    '3D000': 'the database does not exist: check the database name',
  };
  // Node 20 reports a refused connection to a name with several addresses as an AggregateError without a message.
  const nested = (error as { errors?: Array<{ message?: string }> }).errors;
  const message = e.message || nested?.map((n) => n.message).join('; ') || String(error);
  const sslHint = /does not support SSL/i.test(message) ? 'the server does not accept SSL connections: use sslmode=prefer (the default) or disable' : undefined;
  return new DatabaseError(`cannot connect to ${label}: ${redactUrl(message)}`, {
    hint: hints[e.code ?? ''] ?? sslHint ?? 'check --db, DATABASE_URL or the PG* variables',
    cause: error,
  });
}

/**
 * An error from the database in the middle of a command (not one of ours): exit 3,
 * with what rlsctl was doing and PostgreSQL's reason (and SQLSTATE), never a password.
 */
export function asDatabaseError(error: unknown, doing: string): unknown {
  if (error instanceof RlsctlError) return error;
  const e = error as { code?: string; message?: string };
  if (typeof e?.code !== 'string') return error;
  const hints: Record<string, string> = {
    '42501': 'the role lacks a privilege: see the message for the object',
    '55P03': 'another transaction holds a lock too long (lock_timeout): run again when it has finished',
    '57014': 'a statement ran longer than statement_timeout, or was cancelled',
    '25006': 'the database is read-only here (a standby?): connect to the primary',
  };
  return new DatabaseError(`${doing} failed: ${redactUrl(e.message ?? String(error))} (SQLSTATE ${e.code})`, {
    hint:
      hints[e.code] ??
      (/^(08|57P)/.test(e.code) || e.code.startsWith('E') ? 'the connection to the database was lost: check the server and try again' : undefined),
    cause: error,
  });
}

async function openEmbedded(options: OpenOptions): Promise<Database> {
  const server = await startEmbeddedServer();
  try {
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    await admin.query('CREATE DATABASE rlsctl');
    await admin.end();
    const url = server.urlFor('rlsctl');
    const database = makeDatabase({ connectionString: url }, `embedded PostgreSQL ${server.major} (a throwaway server)`, url, options.poolSize, server);
    if (options.schema) await loadSchema(database, options.schema);
    await options.prepareEmbedded?.(database);
    return database;
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/** Load SQL files (a file, or every *.sql of a folder in name order) as the connecting superuser. */
export async function loadSchema(database: Database, schemaPath: string): Promise<void> {
  let files: string[];
  try {
    const info = await stat(schemaPath);
    files = info.isDirectory()
      ? (await readdir(schemaPath))
          .filter((f) => f.endsWith('.sql'))
          .sort()
          .map((f) => path.join(schemaPath, f))
      : [schemaPath];
  } catch {
    throw new UsageError(`cannot read the schema ${schemaPath}: no such file or folder`, { hint: '--schema takes a .sql file or a folder of them' });
  }
  if (files.length === 0) throw new UsageError(`the folder ${schemaPath} holds no .sql file`, { hint: '--schema takes a .sql file or a folder of them' });
  const client = await database.connect();
  try {
    for (const file of files) {
      const sql = await readInputFile(file, { what: 'the schema file', missingHint: '--schema takes a .sql file or a folder of them' });
      try {
        await runScript(client, sql);
      } catch (error) {
        throw new UsageError(`loading ${file} into the embedded PostgreSQL failed: ${(error as Error).message}`, {
          hint: 'the schema files must run on an empty database as a superuser, in name order',
          cause: error,
        });
      }
    }
  } finally {
    await client.end();
  }
}
