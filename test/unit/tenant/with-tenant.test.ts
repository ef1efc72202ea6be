import { describe, expect, it } from 'vitest';
import pg from 'pg';
import type { Kysely, Transaction } from 'kysely';
import { withTenant, withCurrentTenant } from '../../../src/tenant/with-tenant.js';
import { TenantContextError } from '../../../src/tenant/tenant-context-error.js';
import type { TenantClient } from '../../../src/tenant/tenant-handle.js';

const A = '00000000-0000-4000-8000-00000000000a';

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TenantContextError);
  return (error as TenantContextError).code;
}

// Argument checks that need no server: none of these may reach one.
describe('withTenant argument checks', () => {
  it('refuses what is neither a pg.Pool nor a Kysely instance', async () => {
    for (const db of [undefined, null, {}, 'postgres://x', { query() {} }]) {
      expect(await codeOf(withTenant(db as never, A, async () => 1))).toBe('invalid-options');
    }
  });

  it('refuses a pg.Client: a connection cannot be checked out of it', async () => {
    const client = new pg.Client({ host: '127.0.0.1', port: 1 });
    const error = await withTenant(client as never, A, async () => 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TenantContextError);
    expect((error as Error).message).toMatch(/not a pg\.Pool/);
  });

  it('refuses a missing function', async () => {
    const pool = new pg.Pool({ host: '127.0.0.1', port: 1, max: 1 });
    try {
      expect(await codeOf(withTenant(pool, A, undefined as never))).toBe('invalid-options');
      expect(pool.totalCount).toBe(0);
    } finally {
      await pool.end();
    }
  });

  it('rejects rather than throws, so that callers can await every failure', () => {
    const pool = new pg.Pool({ host: '127.0.0.1', port: 1, max: 1 });
    const outcome = withCurrentTenant(pool, async () => 1);
    expect(outcome).toBeInstanceOf(Promise);
    return expect(outcome)
      .rejects.toThrow(/no tenant context/)
      .finally(() => pool.end());
  });
});

// Compile-time only (checked by `tsc -p tsconfig.json`, never called): the
// handle fn receives follows from db, and fn's result type comes back out.
export function publicTypes(pool: pg.Pool, db: Kysely<{ notes: { id: number } }>): void {
  const fromPool: Promise<number> = withTenant(pool, A, async (client) => {
    const handle: TenantClient = client;
    const picked: Pick<pg.PoolClient, 'query'> = client;
    void picked;
    return (await handle.query('SELECT 1')).rowCount ?? 0;
  });
  const fromKysely: Promise<Array<{ id: number }>> = withTenant(db, 42n, (trx) => {
    const transaction: Transaction<{ notes: { id: number } }> = trx;
    return transaction.selectFrom('notes').select('id').execute();
  });
  const current: Promise<string> = withCurrentTenant(pool, async () => 'x', { type: 'text' });
  void [fromPool, fromKysely, current];
}
