import type pg from 'pg';
import { UsageError } from '../errors.js';
import type { TenantType } from '../policy/model.js';
import { quoteIdent, quoteLiteral } from '../compile/quote.js';
import type { VerifyCatalog } from './verify-catalog.js';

/**
 * The tenants verify acts as (cli.md: `--tenant`, else two tenants that own
 * rows, else rows it writes itself inside the rolled-back transaction).
 */

export interface PickedTenants {
  tenants: string[];
  /** Per tenant: where it came from, for the report. */
  origin: Array<'given' | 'data' | 'synthetic'>;
}

/** Two tenants no real data is likely to use; the same on every run, so reports diff cleanly. */
export function syntheticTenants(type: TenantType): [string, string] {
  switch (type) {
    case 'uuid':
      return ['f1e5c0de-7e57-4000-8000-00000000000a', 'f1e5c0de-7e57-4000-8000-00000000000b'];
    case 'bigint':
    case 'integer':
      return ['2100000001', '2100000002'];
    case 'text':
      return ['rlsctl-tenant-a', 'rlsctl-tenant-b'];
  }
}

const SQL_TYPE: Record<TenantType, string> = { uuid: 'uuid', bigint: 'bigint', integer: 'integer', text: 'text' };

/** A tenant value in its canonical text form (a uuid in lower case, a number without leading zeros). */
export async function normalizeTenant(client: pg.ClientBase, value: string, type: TenantType): Promise<string> {
  try {
    const { rows } = await client.query<{ v: string }>(`SELECT (${quoteLiteral(value)}::${SQL_TYPE[type]})::text AS v`);
    return rows[0].v;
  } catch (error) {
    throw new UsageError(`--tenant ${value} is not a valid ${type}: ${(error as Error).message}`, {
      hint: `the tenant type of the policy file is ${type}`,
      cause: error,
    });
  }
}

export async function pickTenants(client: pg.ClientBase, catalog: VerifyCatalog, type: TenantType, given: string[]): Promise<PickedTenants> {
  const tenants: string[] = [];
  const origin: PickedTenants['origin'] = [];
  for (const value of given) {
    const v = await normalizeTenant(client, value, type);
    if (!tenants.includes(v)) {
      tenants.push(v);
      origin.push('given');
    }
  }
  if (tenants.length < 2) {
    // One query for the whole database: the tenants seen in the first rows of
    // each tenant table, ranked by how many tables they own rows in.
    const sources = catalog.relations.filter(
      (r) => r.tenantColumn && (r.kind === 'table' || r.kind === 'foreign_table') && r.declared && r.parentOid === undefined,
    );
    if (sources.length > 0) {
      const parts = sources.map(
        (r) =>
          `(SELECT DISTINCT s.v FROM (SELECT t.${quoteIdent(r.tenantColumn!)}::text AS v FROM ${r.sql} AS t WHERE t.${quoteIdent(r.tenantColumn!)} IS NOT NULL LIMIT 1000) AS s)`,
      );
      const { rows } = await client.query<{ v: string }>(
        `SELECT u.v FROM (${parts.join('\nUNION ALL\n')}) AS u(v) GROUP BY u.v ORDER BY count(*) DESC, u.v LIMIT ${2 + tenants.length}`,
      );
      for (const row of rows) {
        if (tenants.length >= 2) break;
        let v: string;
        try {
          v = await normalizeTenant(client, row.v, type);
        } catch {
          continue; // a value of another type in a table whose column differs from the tenant type
        }
        if (!tenants.includes(v)) {
          tenants.push(v);
          origin.push('data');
        }
      }
    }
  }
  for (const v of syntheticTenants(type)) {
    if (tenants.length >= 2) break;
    if (!tenants.includes(v)) {
      tenants.push(v);
      origin.push('synthetic');
    }
  }
  return { tenants, origin };
}
