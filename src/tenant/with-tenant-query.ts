import type pg from 'pg';
import { DatabaseError } from './rlsctl-error.js';
import { TenantContextError } from './tenant-context-error.js';
import { checkTenantScope, poolOf } from './with-tenant.js';
import { resolveTenantOptions, settingValueFor, type WithTenantOptions } from './tenant-options.js';
import { describeTenantValue, validateTenantId, type TenantId } from './validate-tenant.js';

/**
 * One statement as one tenant, in one round trip (issue 17 item 5).
 *
 * Everything goes out in one write through the extended query protocol:
 * Parse/Bind/Execute of `set_config(setting, tenant, true)`, then
 * Parse/Bind/Describe/Execute of the caller's statement, then a single Sync.
 * PostgreSQL runs the messages up to a Sync as one implicit transaction: the
 * tenant, set transaction-locally, is seen by the statement and ends at the
 * Sync (committed with it, or rolled back when any message failed: the server
 * then skips to the Sync). No BEGIN or COMMIT is sent, so none can be lost.
 *
 * The one way to leave a transaction open past the Sync is a statement that
 * opens one itself (BEGIN, START TRANSACTION): ReadyForQuery then reports a
 * transaction block, the call rejects (DatabaseError) and the connection is
 * destroyed instead of going back to the pool with the tenant set.
 */

const SET_TENANT = 'SELECT pg_catalog.set_config($1, $2, true)';

/** A query for withTenantQuery: pg's QueryConfig subset, or a compiled Kysely query (`{ sql, parameters }`). */
export type TenantQuery =
  string | { text: string; values?: readonly unknown[]; rowMode?: 'array'; types?: pg.CustomTypesConfig } | { sql: string; parameters: readonly unknown[] };

interface Statement {
  text: string;
  values: unknown[];
  rowMode?: 'array';
  types?: pg.CustomTypesConfig;
}

function statementOf(query: unknown, values: unknown): Statement {
  const bad = (why: string) => new TenantContextError('invalid-options', `withTenantQuery ${why}`);
  let statement: Statement;
  if (typeof query === 'string') {
    statement = { text: query, values: values as unknown[] };
  } else if (query && typeof query === 'object') {
    const q = query as Record<string, unknown>;
    if ('name' in q || 'rows' in q) throw bad('runs one unnamed statement: `name` and `rows` are not supported');
    if (typeof q.sql === 'string' && Array.isArray(q.parameters)) {
      statement = { text: q.sql, values: [...(q.parameters as unknown[])] };
    } else {
      statement = { text: q.text as string, values: (q.values as unknown[]) ?? values, rowMode: q.rowMode as 'array', types: q.types as pg.CustomTypesConfig };
    }
  } else {
    throw bad(`needs SQL text, a query config or a compiled Kysely query, got ${describeTenantValue(query)}`);
  }
  if (typeof statement.text !== 'string' || statement.text.trim() === '') throw bad('needs non-empty SQL text');
  if (statement.text.includes('\0')) throw bad('got SQL text with a NUL byte');
  statement.values ??= [];
  if (!Array.isArray(statement.values)) throw bad(`needs the values as an array, got ${describeTenantValue(statement.values)}`);
  if (statement.rowMode !== undefined && statement.rowMode !== 'array') throw bad("takes rowMode 'array' or none");
  return { ...statement, values: [...statement.values] };
}

/** What the one-flight query needs of pg's Query and connection (pg/lib/query.js, pg/lib/connection.js). */
interface PgConnection {
  stream: { cork?(): void; uncork?(): void };
  parse(msg: { text: string; types?: unknown[] }): void;
  bind(msg: { values: unknown[] }): void;
  execute(msg: { portal: string }): void;
  sync(): void;
}
interface PgQuery {
  callback?: (error: Error | null, result?: pg.QueryResult) => void;
  _canceledDueToError?: unknown;
  submit(connection: PgConnection): Error | null | undefined;
  handleDataRow(msg: unknown): void;
  handleCommandComplete(msg: unknown, connection: PgConnection): void;
  handleReadyForQuery(connection: PgConnection): void;
}
type PgQueryClass = new (config: object) => PgQuery;
type OneFlightClass = new (config: object, tenant: [string, string], status: () => string | null) => PgQuery & { openTransaction: boolean };

const classes = new WeakMap<PgQueryClass, OneFlightClass>();

/**
 * A subclass of the pool's own pg Query (so that its row parsing, type parsers
 * and rowMode apply, and pg's pipeline mode, which takes only Query instances,
 * accepts it) that puts the tenant's set_config in front of the statement.
 */
function oneFlightClass(Base: PgQueryClass): OneFlightClass {
  const known = classes.get(Base);
  if (known) return known;
  class OneFlightQuery extends Base {
    /** set_config's own DataRow and CommandComplete come first and are not part of the result. */
    #tenantSet = false;
    readonly #tenant: [string, string];
    readonly #status: () => string | null;
    /** ReadyForQuery reported a transaction block: the statement opened one. */
    openTransaction = false;

    constructor(config: object, tenant: [string, string], status: () => string | null) {
      super({ ...config, queryMode: 'extended' });
      this.#tenant = tenant;
      this.#status = status;
    }

    override submit(connection: PgConnection): Error | null | undefined {
      connection.stream.cork?.();
      try {
        connection.parse({ text: SET_TENANT, types: [] });
        connection.bind({ values: this.#tenant });
        connection.execute({ portal: '' });
        // Parse, Bind (its values mapped as pg does), Describe, Execute and the Sync.
        const error = super.submit(connection);
        if (error) {
          // Cannot happen for a statement that statementOf accepted; never leave the flight without its Sync.
          connection.sync();
          this.openTransaction = true;
        }
        return error;
      } finally {
        connection.stream.uncork?.();
      }
    }

    override handleDataRow(msg: unknown): void {
      if (this.#tenantSet) super.handleDataRow(msg);
    }

    override handleCommandComplete(msg: unknown, connection: PgConnection): void {
      if (this.#tenantSet) super.handleCommandComplete(msg, connection);
      else this.#tenantSet = true;
    }

    override handleReadyForQuery(connection: PgConnection): void {
      // pg's client records the status of this ReadyForQuery just before calling here.
      if (this.#status() !== 'I') {
        this.openTransaction = true;
        // pg's Query starts this at false, not undefined.
        this._canceledDueToError ||= new DatabaseError(
          'the statement given to withTenantQuery left a transaction open (BEGIN or START TRANSACTION); the connection is closed so that the tenant cannot outlive it',
          { hint: 'use withTenant for work that needs a transaction of its own' },
        );
      }
      super.handleReadyForQuery(connection);
    }
  }
  classes.set(Base, OneFlightQuery as unknown as OneFlightClass);
  return OneFlightQuery as unknown as OneFlightClass;
}

/**
 * Run one SQL statement as `tenantId` in one round trip: the tenant is set
 * transaction-locally in the implicit transaction that carries the statement,
 * and ends with it; a failing statement rolls back. Resolves to pg's
 * QueryResult (rows parsed by the pool's type parsers).
 *
 * `query` is SQL text with `values` ($1, $2, ...), a `{ text, values?,
 * rowMode?, types? }` config, or a compiled Kysely query (`builder.compile()`,
 * whose `sql` and `parameters` are sent; Kysely's result plugins do not run).
 * The tenant, the options and the query are checked before a connection is
 * taken; `pool` must be a pg.Pool. Refused inside withTenant, like a nested
 * withTenant.
 */
export async function withTenantQuery<R extends pg.QueryResultRow = Record<string, unknown>>(
  pool: pg.Pool,
  tenantId: TenantId,
  query: TenantQuery,
  values?: readonly unknown[],
  options?: WithTenantOptions,
): Promise<pg.QueryResult<R>> {
  const checkedPool = poolOf(pool, 'withTenantQuery');
  const settings = resolveTenantOptions(options);
  if (settings.propagate === 'set-local') {
    throw new TenantContextError(
      'invalid-options',
      "withTenantQuery sets the tenant with set_config in its one flight; propagate: 'set-local' is not available here",
      {
        hint: "use withTenant with { propagate: 'set-local' } (Citus forwards SET LOCAL, not set_config, to the shards)",
      },
    );
  }
  const tenant = validateTenantId(tenantId, settings.type);
  checkTenantScope(tenant, settings.type, 'withTenantQuery');
  const statement = statementOf(query, values);

  const client = await checkedPool.connect();
  let broken: Error | undefined;
  const onError = (error: Error) => {
    broken ??= error;
  };
  client.on('error', onError);
  try {
    const clientWithStatus = client as pg.PoolClient & { getTransactionStatus?(): string | null };
    const Base = (client.constructor as { Query?: PgQueryClass }).Query;
    if (typeof clientWithStatus.getTransactionStatus !== 'function' || typeof Base !== 'function') {
      throw new TenantContextError('invalid-options', "withTenantQuery needs pg's Client#getTransactionStatus and Client.Query (pg 8.23 or later)", {
        hint: 'upgrade pg, or use withTenant',
      });
    }
    const OneFlight = oneFlightClass(Base);
    const flight = new OneFlight(statement, [settings.setting, settingValueFor(settings, tenant)], () => clientWithStatus.getTransactionStatus!());
    try {
      return await new Promise<pg.QueryResult<R>>((resolve, reject) => {
        let settled = false;
        flight.callback = (error, result) => {
          if (settled) return;
          settled = true;
          if (error) reject(error);
          else resolve(result as pg.QueryResult<R>);
        };
        client.query(flight as unknown as pg.QueryConfig);
      });
    } finally {
      if (flight.openTransaction) broken ??= new Error('transaction left open');
    }
  } finally {
    client.removeListener('error', onError);
    client.release(broken);
  }
}
