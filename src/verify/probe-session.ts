import type pg from 'pg';
import { DatabaseError } from '../errors.js';
import { quoteIdent, quoteLiteral } from '../compile/quote.js';
import type { LoginDefaults } from './verify-catalog.js';

/**
 * One dedicated session, one transaction that is always rolled back, and a
 * savepoint every probe returns to first. A probe is a single round trip:
 *
 *   ROLLBACK TO SAVEPOINT rlsctl_probe;  -- undoes the previous probe: its rows, its role, its settings
 *   SET LOCAL ROLE app_user;
 *   SELECT set_config('app.tenant_id', 'A', true);
 *   <the statement that tries to cross>
 *
 * Nothing a probe does outlives it, also when it errors halfway (the
 * rollback to the savepoint ends the failed subtransaction) or when the
 * connection drops (the server rolls the whole transaction back).
 */

export const PROBE_SAVEPOINT = 'rlsctl_probe';

export type ProbeOutcome = { ok: true; result: pg.QueryResult } | { ok: false; error: PgError };

export interface PgError {
  code: string;
  message: string;
  constraint?: string;
  detail?: string;
}

export class ProbeSession {
  probes = 0;

  constructor(
    private readonly client: pg.ClientBase,
    private readonly setting: string,
    private readonly loginDefaults: Map<string, LoginDefaults>,
    /**
     * The settings that stand for a tenant: the tenant setting (with the claims JSON of the claim
     * model, src/compile/tenant-lookup.ts), or a member's (src/verify/membership-probes.ts).
     */
    readonly identity: (tenant: string) => Array<[string, string]> = (tenant) => [[setting, tenant]],
  ) {}

  /** A query as the connecting role, after undoing the last probe. Errors are the tool's, not a probe's: they end the run. */
  async connecting(sql: string): Promise<pg.QueryResult> {
    try {
      return last(await this.client.query(`ROLLBACK TO SAVEPOINT ${PROBE_SAVEPOINT};\n${sql}`));
    } catch (error) {
      throw asDatabaseError(error, sql);
    }
  }

  /**
   * Run `statement` as `role`. `tenant` null: no tenant is set (the session's
   * state decides what the setting reads as); the role's login defaults for
   * the setting and row_security apply as they would on a login as the role.
   * `before` runs as the connecting role first (a cursor on a target row).
   * `shown`: the statement as an error may print it (values hidden: hide-values.ts).
   */
  async as(role: string, tenant: string | null, statement: string, before: string[] = [], shown = statement): Promise<ProbeOutcome> {
    const defaults = this.loginDefaults.get(role);
    const configs = [`pg_catalog.set_config('row_security', ${quoteLiteral(defaults?.rowSecurity ?? 'on')}, true)`];
    if (tenant !== null)
      configs.push(...this.identity(tenant).map(([name, value]) => `pg_catalog.set_config(${quoteLiteral(name)}, ${quoteLiteral(value)}, true)`));
    else if (defaults?.tenantSetting !== undefined)
      configs.push(`pg_catalog.set_config(${quoteLiteral(this.setting)}, ${quoteLiteral(defaults.tenantSetting)}, true)`);
    const text = [`ROLLBACK TO SAVEPOINT ${PROBE_SAVEPOINT}`, ...before, `SET LOCAL ROLE ${quoteIdent(role)}`, `SELECT ${configs.join(', ')}`, statement].join(
      ';\n',
    );
    this.probes += 1;
    try {
      return { ok: true, result: last(await this.client.query(text)) };
    } catch (error) {
      const e = error as Partial<PgError>;
      // No SQLSTATE: the connection itself failed. 08xxx and 57P0x: the server ended the session.
      if (typeof e.code !== 'string' || !/^[0-9A-Z]{5}$/.test(e.code) || e.code.startsWith('08') || e.code.startsWith('57P')) {
        throw asDatabaseError(error, shown);
      }
      return { ok: false, error: { code: e.code, message: e.message ?? String(error), constraint: e.constraint, detail: e.detail } };
    }
  }
}

function last(result: pg.QueryResult | pg.QueryResult[]): pg.QueryResult {
  return Array.isArray(result) ? result[result.length - 1] : result;
}

function asDatabaseError(error: unknown, sql: string): DatabaseError {
  const message = (error as Error)?.message ?? String(error);
  return new DatabaseError(`verify lost its session or a query of its own failed: ${message}`, {
    hint: `the statement was: ${sql.length > 400 ? `${sql.slice(0, 400)}…` : sql}\nnothing was written: the probing transaction is rolled back`,
    cause: error,
  });
}
