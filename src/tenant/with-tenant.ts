import { AsyncLocalStorage } from 'node:async_hooks';
import type pg from 'pg';
import type { Kysely, Transaction } from 'kysely';
import { DatabaseError } from './rlsctl-error.js';
import { TenantContextError } from './tenant-context-error.js';
import { tenantContext } from './tenant-context.js';
import { HandleState, kyselyHandle, pgHandle, type TenantClient } from './tenant-handle.js';
import { setSettingsSql, setTenantSql, type TenantSettings, type WithTenantOptions } from './tenant-options.js';
import { resolveIdentity, type Identity, type MemberIdentity } from './member-identity.js';
import { describeTenantValue, validateTenantId, type TenantId } from './validate-tenant.js';

/**
 * The runtime side of the policies: run a unit of work as one tenant.
 *
 * The tenant goes into the policy's custom setting with
 * `set_config(setting, value, true)`, i.e. transaction-local: it ends with
 * COMMIT or ROLLBACK, so it cannot outlive the unit of work, cannot leak to
 * the next user of a pooled connection, and is safe behind PgBouncer in
 * transaction mode (which hands the server connection to another client
 * between transactions). After it ends the setting reads as '' and the
 * compiled policies show no rows.
 */

interface TransactionScope {
  /** The identity, as messages name it: `tenant "…"` or `user "…"`. */
  readonly tenant: string;
  /** Cleared when the transaction ends, so that a callback leaked past it is not taken for a nested call. */
  open: boolean;
}

/** The withTenant transaction the current async call chain runs in, if any. */
const transactionScope = new AsyncLocalStorage<TransactionScope>();

type Driver = { kind: 'pg'; pool: pg.Pool } | { kind: 'kysely'; db: Kysely<unknown> };

/**
 * Tell a pg.Pool from a Kysely instance by their shape, so that `kysely` is
 * never loaded for a pg-only application, and so that two copies of either
 * package in node_modules (where `instanceof` fails) still work.
 */
function driverOf(db: unknown, who = 'withTenant'): Driver {
  const d = db as Record<string, unknown> | null;
  if (d && typeof d === 'object') {
    if (typeof d.transaction === 'function' && typeof d.selectFrom === 'function') {
      if (d.isTransaction === true) {
        throw new TenantContextError('nested-transaction', `${who} was given a Kysely transaction, not the Kysely instance`, {
          hint: 'pass the Kysely instance; inside withTenant, use the transaction it hands to your function',
        });
      }
      return { kind: 'kysely', db: db as Kysely<unknown> };
    }
    if (typeof d.connect === 'function' && typeof d.query === 'function') {
      // A checked-out PoolClient has release(); a pg.Client has processID. Neither
      // can be checked out again, and a transaction on a shared client would
      // interleave with its owner's queries.
      if (typeof d.release === 'function' || 'processID' in d) {
        throw new TenantContextError('invalid-options', `${who} was given a pg client, not a pg.Pool`, {
          hint: 'pass the pg.Pool; withTenant checks a connection out of it for the transaction and hands that client to your function',
        });
      }
      return { kind: 'pg', pool: db as pg.Pool };
    }
  }
  throw new TenantContextError('invalid-options', `${who} needs a pg.Pool or a Kysely instance, got ${describeTenantValue(db)}`);
}

/** The pg.Pool of a call that takes only a pool (withTenantQuery), with the checks of driverOf. */
export function poolOf(db: unknown, who: string): pg.Pool {
  const driver = driverOf(db, who);
  if (driver.kind === 'kysely') {
    throw new TenantContextError('invalid-options', `${who} needs a pg.Pool, got a Kysely instance`, {
      hint: 'compile the Kysely query (builder.compile()) and pass it with the pg.Pool behind the Kysely dialect',
    });
  }
  return driver.pool;
}

/**
 * Refuse a call inside an open withTenant transaction (a nested call would take
 * a second connection and commit on its own) and a call for another tenant
 * inside a request scoped to one (tenantContext.run).
 */
export function checkTenantScope(tenant: string, type: TenantSettings['type'], who: string): void {
  checkScope({ label: `tenant ${describeTenantValue(tenant)}`, tenant, type }, who);
}

/** checkTenantScope for a tenant or a user (`label` says which, in messages). */
function checkScope(identity: Pick<Identity, 'label' | 'tenant' | 'type'>, who: string): void {
  const active = transactionScope.getStore();
  if (active?.open) {
    // Refused for the same tenant too: a nested call would take a second
    // connection (a pool of N with N outer transactions waiting for inner ones
    // deadlocks) and commit on its own, even when the outer transaction then
    // rolls back. The caller's function already holds the tenant's client.
    throw new TenantContextError(
      'nested-transaction',
      active.tenant === identity.label
        ? `${who} inside another withTenant (same ${identity.label})`
        : `${who} for ${identity.label} inside a withTenant for ${active.tenant}`,
      { hint: 'pass the client or transaction that the outer withTenant gave you down to this code instead of opening another transaction' },
    );
  }
  const requestTenant = tenantContext.current();
  if (requestTenant !== undefined && identity.tenant !== undefined && validateTenantId(requestTenant, identity.type) !== identity.tenant) {
    throw new TenantContextError(
      'tenant-mismatch',
      `${who} for tenant ${describeTenantValue(identity.tenant)} inside the request context of tenant ${describeTenantValue(requestTenant)}`,
      { hint: 'a request scoped to one tenant cannot open a transaction for another; run cross-tenant work outside tenantContext.run' },
    );
  }
}

interface Prepared {
  driver: Driver;
  identity: Identity;
}

/** Every check, synchronously and before any connection is taken or SQL sent. */
function prepare(db: unknown, tenantId: unknown, fn: unknown, options: WithTenantOptions | undefined): Prepared {
  const driver = driverOf(db);
  if (typeof fn !== 'function') {
    throw new TenantContextError('invalid-options', `withTenant needs a function to run as the tenant, got ${describeTenantValue(fn)}`);
  }
  const identity = resolveIdentity(tenantId, options);
  checkScope(identity, 'withTenant');
  return { driver, identity };
}

/**
 * What withTenant needs of a Kysely instance, structurally, so that the
 * declarations of rlsctl/runtime do not name the `kysely` package (an optional
 * peer dependency): a pg-only application type-checks without it installed.
 */
export interface KyselyLike {
  transaction(): { execute<T>(callback: (trx: unknown) => Promise<T>): Promise<T> };
  selectFrom: unknown;
}

/** The Transaction type of a Kysely instance, read from its `transaction().execute` callback. */
export type KyselyTransactionOf<D> = D extends { transaction(): { execute<T>(callback: (trx: infer X) => Promise<T>): Promise<T> } } ? X : never;

/**
 * Run `fn` in a transaction as `tenantId`: BEGIN, set the tenant
 * transaction-locally, run `fn`, COMMIT; ROLLBACK on any error, which is
 * rethrown. The tenant is validated against the tenant type before any
 * connection is taken or SQL sent.
 *
 * - `db` a `pg.Pool`: `fn` gets a TenantClient, pg's `query` on the
 *   checked-out connection (do not COMMIT or SET session settings with it).
 * - `db` a `Kysely` instance: `fn` gets the Kysely `Transaction`.
 *
 * Either handle works only while the transaction is open: used after `fn`
 * has settled it throws TenantContextError('handle-closed') and sends
 * nothing. `release()` on the pg handle throws the same and rolls back.
 *
 * `options` name the setting and the tenant type, or pass the loaded policy
 * (`{ policy: await loadPolicy() }`); default `app.tenant_id` / `uuid`.
 *
 * For a policy file with `tenant.membership`, pass `{ user, tenant? }` instead
 * of the tenant id: the user goes into the membership's user setting
 * (`userSetting`, default `app.user_id`), the active tenant, when given, into
 * the tenant setting; both validated and transaction-local like the tenant
 * (src/tenant/member-identity.ts).
 * A nested withTenant is refused (TenantContextError 'nested-transaction').
 */
export function withTenant<R>(
  db: pg.Pool,
  tenantId: TenantId | MemberIdentity,
  fn: (client: TenantClient) => Promise<R>,
  options?: WithTenantOptions,
): Promise<R>;
export function withTenant<D extends KyselyLike, R>(
  db: D,
  tenantId: TenantId | MemberIdentity,
  fn: (trx: KyselyTransactionOf<D>) => Promise<R>,
  options?: WithTenantOptions,
): Promise<R>;
export async function withTenant(db: unknown, tenantId: unknown, fn: (handle: never) => Promise<unknown>, options?: WithTenantOptions): Promise<unknown> {
  const prepared = prepare(db, tenantId, fn, options);
  const run = fn as (handle: unknown) => Promise<unknown>;
  switch (prepared.driver.kind) {
    case 'pg':
      return runOnPool(prepared.driver.pool, prepared, run);
    case 'kysely':
      return runOnKysely(prepared.driver.db, prepared, run);
    default: {
      const unreachable: never = prepared.driver;
      throw new Error(`unhandled driver ${String(unreachable)}`);
    }
  }
}

/**
 * `withTenant` with the tenant of the current request (`tenantContext.run`).
 * Outside a tenant context it throws TenantContextError('no-tenant-context')
 * and sends nothing: never a query without a tenant.
 */
export function withCurrentTenant<R>(db: pg.Pool, fn: (client: TenantClient) => Promise<R>, options?: WithTenantOptions): Promise<R>;
export function withCurrentTenant<D extends KyselyLike, R>(db: D, fn: (trx: KyselyTransactionOf<D>) => Promise<R>, options?: WithTenantOptions): Promise<R>;
export async function withCurrentTenant(db: unknown, fn: (handle: never) => Promise<unknown>, options?: WithTenantOptions): Promise<unknown> {
  const tenantId = tenantContext.require();
  return (withTenant as (db: unknown, t: unknown, f: unknown, o?: WithTenantOptions) => Promise<unknown>)(db, tenantId, fn, options);
}

/**
 * BEGIN and the tenant in one round trip: a simple-protocol query of two
 * statements. Bound parameters would need a second round trip (the extended
 * protocol carries one statement, and pg sends a queued query only after the
 * previous one completed unless the pool runs in pipeline mode), so the values
 * go in as literals: the setting matches a name pattern and the tenant has
 * been validated against its type (uuid and integers: hex digits, digits and
 * dashes only; text: no NUL, which would cut the query short) before
 * quoteLiteral escapes them. bench/with-tenant.mjs measures the alternatives.
 */
export function beginTenantSql(settings: TenantSettings, tenant: string): string {
  return `BEGIN; ${setTenantSql(settings, tenant)}`;
}

/** beginTenantSql for an identity (the user form sets the user and the active tenant). */
export function beginSettingsSql(identity: Pick<Identity, 'assignments' | 'propagate'>): string {
  return `BEGIN; ${setSettingsSql(identity.assignments, identity.propagate)}`;
}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

async function runOnPool(pool: pg.Pool, prepared: Prepared, fn: (client: TenantClient) => Promise<unknown>): Promise<unknown> {
  const client = await pool.connect();
  // Set when the connection must not go back to the pool: release(err) destroys it.
  let broken: Error | undefined;
  // While checked out, the pool no longer listens for the client's errors; an
  // 'error' event without a listener (the backend terminated between two
  // queries) would crash the process.
  const onError = (error: Error) => {
    broken ??= error;
  };
  client.on('error', onError);
  const scope: TransactionScope = { tenant: prepared.identity.label, open: true };
  const state = new HandleState('client');
  try {
    let result: unknown;
    try {
      await client.query(beginSettingsSql(prepared.identity));
      try {
        result = await transactionScope.run(scope, () => fn(pgHandle(client, state)));
      } finally {
        state.end();
      }
      // fn called release() and caught the error: it meant to give the connection up, so nothing it did is committed.
      if (state.released) throw state.released;
    } catch (error) {
      scope.open = false;
      try {
        await client.query('ROLLBACK');
      } catch (rollbackError) {
        // The connection is unusable or in an unknown state: never reuse it.
        broken ??= asError(rollbackError);
      }
      throw error;
    }
    scope.open = false;
    let commit: pg.QueryResult;
    try {
      commit = await client.query('COMMIT');
    } catch (commitError) {
      // A failed COMMIT has ended the transaction on a healthy connection, but
      // a lost one fails the same way; destroying it is the safe choice for a rare path.
      broken ??= asError(commitError);
      throw commitError;
    }
    // PostgreSQL answers COMMIT with a ROLLBACK tag when an earlier statement
    // failed and fn caught the error: nothing was committed, so say so.
    if (commit.command === 'ROLLBACK') {
      throw new DatabaseError('the tenant transaction was rolled back, not committed: a statement in it failed and its error was caught', {
        hint: 'let the error propagate out of the withTenant function, or wrap the failing statement in a SAVEPOINT',
      });
    }
    return result;
  } finally {
    scope.open = false;
    client.removeListener('error', onError);
    client.release(broken);
  }
}

type KyselyModule = typeof import('kysely');
let kyselyModule: Promise<KyselyModule> | undefined;

async function runOnKysely(db: Kysely<unknown>, prepared: Prepared, fn: (trx: Transaction<unknown>) => Promise<unknown>): Promise<unknown> {
  // Loaded only on this path, so that a pg-only application never loads kysely.
  kyselyModule ??= import('kysely');
  const { CompiledQuery } = await kyselyModule;
  const scope: TransactionScope = { tenant: prepared.identity.label, open: true };
  try {
    // Kysely sends BEGIN itself and gives no hook to add to it, so the tenant
    // costs one more round trip here than on the pg path; bound parameters then
    // cost nothing extra. Kysely rolls back on a thrown error, discards a
    // connection whose ROLLBACK failed, and raises on a COMMIT that rolled back.
    return await transactionScope.run(scope, () =>
      db.transaction().execute(async (trx) => {
        const { assignments, propagate } = prepared.identity;
        const calls = assignments.map((_, i) => `pg_catalog.set_config($${2 * i + 1}, $${2 * i + 2}, true)`).join(', ');
        await trx.executeQuery(
          propagate === 'set-local' ? CompiledQuery.raw(setSettingsSql(assignments, propagate)) : CompiledQuery.raw(`SELECT ${calls}`, assignments.flat()),
        );
        const state = new HandleState('Kysely transaction');
        try {
          return await fn(kyselyHandle(trx, state));
        } finally {
          state.end();
        }
      }),
    );
  } finally {
    scope.open = false;
  }
}
