import type { Database } from '../db/connection.js';
import type { TenantFacts } from '../facts/resolve-facts.js';
import { ValueCounter } from './make-row.js';
import { syntheticTenants } from './pick-tenants.js';
import { seedTenants, type SeedResult } from './seed-tenants.js';
import { readVerifyCatalog } from './verify-catalog.js';

/**
 * The pre-merge mode: a throwaway database built from the migrations gets
 * rows of two synthetic tenants in every tenant table, parents before
 * children, written as the superuser and COMMITTED. The only commit verify
 * ever makes, and only into the embedded database it started itself, which
 * is deleted when the run ends.
 */
export async function seedThrowawayDatabase(db: Database, facts: TenantFacts): Promise<SeedResult & { tenants: string[] }> {
  if (!db.embedded) throw new Error('seedThrowawayDatabase writes into the embedded throwaway database only');
  const tenants = syntheticTenants(facts.tenantType);
  const client = await db.connect();
  // A session the server ends (a probe that kills it, a restart) fails the pending query; without a
  // listener the client's 'error' event would also crash the process.
  client.on('error', () => undefined);
  try {
    const catalog = await readVerifyCatalog(client, facts, facts.setting ?? 'rlsctl.unknown');
    await client.query('BEGIN');
    const result = await seedTenants(client, catalog, tenants, new ValueCounter());
    await client.query('COMMIT');
    return { ...result, tenants };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    await client.end().catch(() => undefined);
  }
}
