import type pg from 'pg';
import { parseSync } from 'libpg-query';
import { DatabaseError, UsageError } from '../errors.js';
import { quoteIdent } from '../compile/quote.js';
import { rootOf, type PlanNode } from './walk-plan.js';
import { requireStandardStrings } from '../db/standard-strings.js';

/**
 * Planning as the application runs: one connection, one READ ONLY
 * transaction that is rolled back at the end, `SET LOCAL ROLE` to the app
 * role and the tenant set with `set_config(..., true)`, as a pooled app
 * connection sets it per transaction. Each query then runs in a savepoint
 * that is rolled back (which also releases the locks its planning took and
 * undoes its `SET LOCAL`s), and is planned twice: as the planner would
 * today, and with `enable_seqscan = off`, so that a sequential scan that
 * survives the second plan means no index can serve it, however much data
 * the database holds.
 *
 * Parameters get the generic plan on every major:
 * - 16+: `EXPLAIN (GENERIC_PLAN)` plans `$1...` as unknown values.
 * - 14, 15: `PREPARE` (the server infers the parameter types) and
 *   `EXPLAIN EXECUTE name(NULL, ...)` under `plan_cache_mode =
 *   force_generic_plan`. The generic plan is cached in the prepared
 *   statement and a changed `enable_seqscan` does not invalidate it, so each
 *   of the two plans gets a PREPARE of its own. EXECUTE prunes partitions at
 *   executor start-up with the NULLs it is given, which would remove every
 *   partition from the plan shown: `enable_partition_pruning = off` keeps
 *   them. Prepared statements are not transactional: each is DEALLOCATEd,
 *   also after an error.
 *
 * Every batch sent is checked with the PostgreSQL parser first: it must hold
 * exactly the statements composed here, so a query text cannot smuggle in
 * another statement (its trailing `--` comment is ended by a line break).
 */

export interface PlanContext {
  role: string;
  setting: string;
  tenant: string;
  /** What goes into the setting for `tenant` (the claims JSON of the claim model); default the tenant itself. */
  settingValue?: string;
  /** Server major version (14...). */
  major: number;
  /** Statement and lock timeouts, in milliseconds (a migration holding a lock must not hang explain). */
  statementTimeoutMs?: number;
  lockTimeoutMs?: number;
}

export interface PlannedQuery {
  asIs: PlanNode;
  noSeqScan: PlanNode;
}

export class PlanFailed extends Error {
  constructor(
    message: string,
    /** 0-based character offset into the query text, when PostgreSQL gave a position inside it. */
    readonly position?: number,
    readonly sqlState?: string,
  ) {
    super(message);
  }
}

const STATEMENT = 'rlsctl_explain';

export class PlanSession {
  private constructor(
    private readonly client: pg.ClientBase,
    readonly context: PlanContext,
  ) {}

  /** BEGIN READ ONLY, become the app role, set the tenant. Throws DatabaseError (exit 3) when the role cannot be assumed. */
  static async open(client: pg.ClientBase, context: PlanContext): Promise<PlanSession> {
    // The batches hold the query file's text, checked by libpg-query as the setting on reads it.
    await requireStandardStrings(client);
    const { rows } = await client.query<{ exists: boolean; user: string }>(
      'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1) AS exists, current_user AS user',
      [context.role],
    );
    if (!rows[0].exists) {
      throw new UsageError(`the app role ${context.role} does not exist in this database`, {
        hint: 'create the role, or name the role the application connects as with --app-role (or roles.app in the policy file)',
      });
    }
    const user = rows[0].user;
    await client.query('BEGIN READ ONLY');
    try {
      await client.query(`SET LOCAL statement_timeout = ${Math.trunc(context.statementTimeoutMs ?? 60_000)}`);
      await client.query(`SET LOCAL lock_timeout = ${Math.trunc(context.lockTimeoutMs ?? 10_000)}`);
      // Needed for EXPLAIN EXECUTE on 14-15, and on any major when parameter types are given (see plan()).
      await client.query('SET LOCAL plan_cache_mode = force_generic_plan');
      try {
        await client.query(`SET LOCAL ROLE ${quoteIdent(context.role)}`);
      } catch (error) {
        const e = error as { code?: string; message?: string };
        if (e.code === '42501') {
          throw new DatabaseError(`${user} cannot SET ROLE to the app role ${context.role}: ${e.message}`, {
            hint: `explain plans as the app role, as the application runs; grant the connecting role membership: GRANT ${quoteIdent(context.role)} TO ${quoteIdent(user)};${context.major >= 16 ? ' (with the SET option, the default)' : ''}`,
            cause: error,
          });
        }
        throw error;
      }
      // Transaction-local, as a pooled connection sets it per transaction (cli.md; policy-file.md behaviour 2).
      await client.query('SELECT pg_catalog.set_config($1, $2, true)', [context.setting, context.settingValue ?? context.tenant]);
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
    return new PlanSession(client, context);
  }

  async close(): Promise<void> {
    await this.client.query('ROLLBACK').catch(() => undefined);
  }

  /**
   * Plan one query (already checked to be one plannable statement with
   * `paramCount` parameters) twice. `paramTypes` declares parameter types
   * (`unknown` lets the server infer one), for a parameter whose type the
   * server cannot infer; GENERIC_PLAN takes no types, so then the PREPARE
   * path is used on every major.
   */
  async plan(text: string, paramCount: number, paramTypes?: string[]): Promise<PlannedQuery> {
    const plans = await this.runPlanned(text, paramCount, (explain) => [explain, 'SET LOCAL enable_seqscan = off', explain], paramTypes);
    return { asIs: plans[0], noSeqScan: plans[1] };
  }

  /**
   * Plan with sequential scans off after running `setup` statements (already
   * composed and quoted by the caller, e.g. a hypopg call) in the same savepoint.
   */
  async planWith(setup: string[], text: string, paramCount: number, paramTypes?: string[]): Promise<PlanNode> {
    const plans = await this.runPlanned(text, paramCount, (explain) => [...setup, 'SET LOCAL enable_seqscan = off', explain], paramTypes);
    return plans[0];
  }

  private async runPlanned(text: string, paramCount: number, compose: (explain: string) => string[], paramTypes?: string[]): Promise<PlanNode[]> {
    const prepared = paramCount > 0 && (this.context.major < 16 || paramTypes !== undefined);
    if (paramTypes && paramTypes.some((t) => !/^[a-z][a-z0-9_ ]*(\[\])?$/.test(t))) throw new PlanFailed(`not a parameter type: ${paramTypes.join(', ')}`);
    const types = paramTypes ? `(${paramTypes.join(', ')})` : '';
    // The query text ends with a line break: a trailing `--` comment in it must not swallow what follows.
    const body = `${text}\n`;
    let explain: string;
    if (!prepared) {
      explain = `EXPLAIN (FORMAT JSON, VERBOSE${paramCount > 0 ? ', GENERIC_PLAN' : ''}) ${body}`;
    } else {
      const args = Array.from({ length: paramCount }, () => 'NULL').join(', ');
      explain = `PREPARE ${STATEMENT}${types} AS ${body};\nEXPLAIN (FORMAT JSON, VERBOSE) EXECUTE ${STATEMENT}(${args});\nDEALLOCATE ${STATEMENT}`;
    }
    const statements = [
      `SAVEPOINT ${STATEMENT}`,
      ...(prepared ? ['SET LOCAL enable_partition_pruning = off'] : []),
      ...compose(explain),
      `ROLLBACK TO SAVEPOINT ${STATEMENT}`,
      `RELEASE SAVEPOINT ${STATEMENT}`,
    ];
    const batch = statements.join(';\n');
    const explainCount = statements.filter((s) => s === explain).length;
    checkBatch(batch, statements.length + (prepared ? 2 * explainCount : 0));
    const offsets = [...batch.matchAll(new RegExp(escapeRegex(body), 'g'))].map((m) => m.index!);
    let results: pg.QueryResult[] | pg.QueryResult;
    try {
      results = (await this.client.query(batch)) as unknown as pg.QueryResult[];
    } catch (error) {
      await this.recover(prepared);
      const e = error as { message?: string; position?: string; code?: string };
      let position: number | undefined;
      if (e.position !== undefined) {
        const at = Number(e.position) - 1;
        const start = [...offsets].reverse().find((o) => o <= at);
        if (start !== undefined && at - start < text.length) position = at - start;
      }
      throw new PlanFailed(e.message ?? String(error), position, e.code);
    }
    const list = Array.isArray(results) ? results : [results];
    return list.filter((r) => r.fields?.length === 1 && r.fields[0].name === 'QUERY PLAN').map((r) => rootOf(r.rows[0]['QUERY PLAN']));
  }

  /** After a failed batch: back to the savepoint, and no prepared statement left behind. */
  private async recover(prepared: boolean): Promise<void> {
    await this.client.query(`ROLLBACK TO SAVEPOINT ${STATEMENT}; RELEASE SAVEPOINT ${STATEMENT}`);
    if (prepared) {
      const { rows } = await this.client.query('SELECT 1 FROM pg_catalog.pg_prepared_statements WHERE name = $1', [STATEMENT]);
      if (rows.length > 0) await this.client.query(`DEALLOCATE ${STATEMENT}`);
    }
  }

  /** A catalog query inside the session (e.g. hypopg calls), as the app role. */
  async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    return this.client.query<R>(sql, params);
  }
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The batch must parse to exactly the statements composed: nothing smuggled in by a query text. */
function checkBatch(batch: string, expected: number): void {
  const parsed = parseSync(batch) as { stmts?: unknown[] };
  const count = parsed.stmts?.length ?? 0;
  if (count !== expected) throw new PlanFailed(`the query does not stand alone as one statement (the parser sees ${count - expected + 1} statements in it)`);
}
