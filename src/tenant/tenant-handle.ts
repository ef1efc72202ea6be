import type pg from 'pg';
import type { KyselyPlugin } from 'kysely';
import { TenantContextError } from './tenant-context-error.js';

/**
 * What `withTenant` hands to its function: not the pooled connection itself
 * but a handle that works only while the tenant transaction is open. A
 * reference kept past the end (a closure, a timer, a query not awaited) would
 * otherwise run on a connection that by then serves another tenant, outside
 * any transaction; with the handle it throws TenantContextError('handle-closed')
 * and sends nothing.
 */

/** The handle on the pg path: pg's `query`, and a `release` that refuses. */
export interface TenantClient {
  /** `pg.PoolClient.query`, every form of it (text, config object, Submittable such as a cursor), while the transaction is open. */
  readonly query: pg.PoolClient['query'];
  /**
   * Always throws TenantContextError('handle-closed') and closes the handle:
   * withTenant keeps the connection checked out until it has committed or
   * rolled back, then returns it to the pool itself. The transaction is
   * rolled back and withTenant rejects, even if the function caught the error.
   */
  release(): never;
}

/** Whether the handle of one tenant transaction still works, and why not. */
export class HandleState {
  #closed: 'ended' | 'released' | undefined;
  /** The error of a release() inside the function; withTenant rejects with it. */
  released: TenantContextError | undefined;

  constructor(private readonly what: 'client' | 'Kysely transaction') {}

  /** The function has settled: from now on every use throws. */
  end(): void {
    this.#closed ??= 'ended';
  }

  release(): never {
    this.check();
    this.#closed = 'released';
    this.released ??= new TenantContextError(
      'handle-closed',
      'release() called on the client that withTenant handed over: the tenant transaction is rolled back',
      {
        hint: 'do not release the client inside withTenant; withTenant returns the connection to the pool itself after COMMIT or ROLLBACK',
      },
    );
    throw this.released;
  }

  /** Throws TenantContextError('handle-closed') once the handle is closed. */
  check(): void {
    if (this.#closed === undefined) return;
    const why = this.#closed === 'released' ? 'after release()' : 'after its tenant transaction ended';
    throw new TenantContextError('handle-closed', `the ${this.what} that withTenant handed over was used ${why}; nothing was sent`, {
      hint: 'use the handle only inside the function given to withTenant and await every query before it returns; open a new withTenant for later work',
    });
  }
}

/** The pg handle over a checked-out client: nothing of the client but `query` is reachable through it. */
export function pgHandle(client: pg.PoolClient, state: HandleState): TenantClient {
  const query = (...args: unknown[]): unknown => {
    state.check();
    return (client.query as (...a: unknown[]) => unknown).apply(client, args);
  };
  return Object.freeze({
    query: query as pg.PoolClient['query'],
    release: (): never => state.release(),
  });
}

/**
 * The Kysely handle over the transaction Kysely created. Two guards, since a
 * Transaction spawns query builders that hold its executor, not the object
 * handed out:
 *
 * - a plugin whose transformQuery throws once the handle is closed: every
 *   builder (and `sql` template) runs its plugins when it is compiled for
 *   execution, so a builder made inside the function and executed later fails
 *   before anything is sent;
 * - a Proxy over the Transaction that throws on any property read once closed,
 *   which covers `executeQuery` of an already compiled query (no plugin runs)
 *   and `getExecutor()`; transactions derived from it (`withSchema`,
 *   `withPlugin`, ...) are wrapped the same way.
 */
export function kyselyHandle<T extends object>(trx: T, state: HandleState): T {
  const plugin: KyselyPlugin = {
    transformQuery(args) {
      state.check();
      return args.node;
    },
    async transformResult(args) {
      return args.result;
    },
  };
  // Typed loosely in the signature so that the declarations of rlsctl/runtime never name `kysely` (an optional peer).
  return guardTransaction((trx as unknown as { withPlugin(plugin: KyselyPlugin): T }).withPlugin(plugin), state);
}

function isTransaction(value: unknown): value is object {
  return typeof value === 'object' && value !== null && (value as { isTransaction?: unknown }).isTransaction === true;
}

function guardTransaction<T extends object>(trx: T, state: HandleState): T {
  return new Proxy(trx, {
    get(target, property) {
      // A Promise resolving to the handle (returned from the function) looks for `then`; a Transaction has none.
      if (property === 'then') return undefined;
      state.check();
      // Kysely keeps its state in #private fields: call with the real object as `this`, never the Proxy.
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]): unknown => {
        state.check();
        const result: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
        return isTransaction(result) ? guardTransaction(result, state) : result;
      };
    },
  });
}
