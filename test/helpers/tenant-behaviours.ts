import { expect } from 'vitest';
import type pg from 'pg';

/**
 * The required behaviours of the compiled policies that do not depend on the
 * tenant model, on the compile fixture's app.items (tenant A: ids 1 and 2,
 * tenant B: id 3), for test/integration/compiled-policies*.test.ts. The
 * model says how the tenant is set (`value`: what goes into `setting`).
 */
export interface TenantModelUnderTest {
  pool: pg.Pool;
  setting: string;
  value(tenant: string): string;
  roles: { app: string; owner: string; bypass: string };
  A: string;
  B: string;
}

/** Run `sql` as `role` with the setting set to `raw` (or not set), in a transaction that is rolled back. */
export async function asRaw(m: TenantModelUnderTest, role: string, raw: string | null, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const client = await m.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SET LOCAL ROLE ${role}`);
    if (raw !== null) await client.query('SELECT set_config($1, $2, true)', [m.setting, raw]);
    return await client.query(sql, params);
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
  }
}

/** `asRaw` with a tenant, set the model's way. */
export function asTenant(m: TenantModelUnderTest, role: string, tenant: string | null, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  return asRaw(m, role, tenant === null ? null : m.value(tenant), sql, params);
}

/** Behaviour 2: after a transaction-local tenant ended, the setting reads '' and `tables` return zero rows, no error. */
export async function expectNothingAfterTenantEnded(m: TenantModelUnderTest, tables: string[]): Promise<void> {
  const client = await m.pool.connect();
  try {
    await client.query(`SET ROLE ${m.roles.app}`);
    await client.query('BEGIN');
    await client.query('SELECT set_config($1, $2, true)', [m.setting, m.value(m.A)]);
    expect((await client.query('SELECT * FROM app.items')).rowCount).toBe(2);
    await client.query('COMMIT');
    expect((await client.query('SELECT current_setting($1) AS v', [m.setting])).rows[0].v).toBe('');
    for (const table of tables) expect((await client.query(`SELECT * FROM ${table}`)).rowCount, table).toBe(0);
  } finally {
    await client.query('RESET ROLE');
    client.release();
  }
}

/** Behaviour 4: a permissive USING (true) policy added by hand cannot widen access across tenants. */
export async function expectHandPolicyCannotWiden(m: TenantModelUnderTest): Promise<void> {
  const client = await m.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`CREATE POLICY wide_open ON app.items AS PERMISSIVE FOR ALL TO ${m.roles.app} USING (true) WITH CHECK (true)`);
    await client.query(`SET LOCAL ROLE ${m.roles.app}`);
    await client.query('SELECT set_config($1, $2, true)', [m.setting, m.value(m.A)]);
    expect((await client.query('SELECT id FROM app.items ORDER BY id')).rows.map((r) => r.id)).toEqual([1, 2]);
    await client.query('SAVEPOINT s');
    await expect(client.query(`INSERT INTO app.items VALUES ('${m.B}', 14, 'n')`)).rejects.toThrow(/row-level security/);
    await client.query('ROLLBACK TO SAVEPOINT s');
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}

/** Behaviour 6: the owner is subject to the policies; superusers and declared bypass roles are not. */
export async function expectOwnerSubjectBypassNot(m: TenantModelUnderTest): Promise<void> {
  expect((await asTenant(m, m.roles.owner, null, 'SELECT * FROM app.items')).rowCount).toBe(0);
  expect((await asTenant(m, m.roles.owner, m.A, 'SELECT * FROM app.items')).rowCount).toBe(0);
  expect((await asTenant(m, m.roles.bypass, null, 'SELECT * FROM app.items')).rowCount).toBe(3);
  expect((await m.pool.query('SELECT * FROM app.items')).rowCount).toBe(3);
}

/** EXPLAIN (FORMAT JSON) of `sql` as the app role with tenant A set and sequential scans off, as JSON text. */
export async function explainAsTenant(m: TenantModelUnderTest, sql: string): Promise<string> {
  const client = await m.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SET LOCAL enable_seqscan = off');
    await client.query(`SET LOCAL ROLE ${m.roles.app}`);
    await client.query('SELECT set_config($1, $2, true)', [m.setting, m.value(m.A)]);
    const { rows } = await client.query(`EXPLAIN (FORMAT JSON) ${sql}`);
    return JSON.stringify(rows[0]['QUERY PLAN']);
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}
