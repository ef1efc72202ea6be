import type { Database } from '../db/connection.js';
import type { PolicyModel } from '../policy/model.js';
import { UsageError } from '../errors.js';
import { buildPlan } from '../plan/build-plan.js';
import { viaWithoutKeyProblem } from '../plan/plan.js';
import { applyPlan, type ApplyResult } from './apply-plan.js';

/**
 * Bring a database to the policy file: plan, then apply. Used for the
 * embedded default of audit, explain and verify (a throwaway database built
 * from --schema).
 *
 * Tables the file declares that the database lacks, and undeclared tables in
 * managed schemas, do not stop it: the rest is applied and the caller's
 * checks (audit's RLS005 / RLS006) report them. Roles or columns the database
 * lacks do: the statements that name them could not run; so does a `via`
 * whose parent key is not unique: its policies would not isolate tenants.
 */
export async function convergeDatabase(db: Database, model: PolicyModel): Promise<void> {
  await convergeWithResult(db, model);
}

export async function convergeWithResult(db: Database, model: PolicyModel, options: { prune?: boolean } = {}): Promise<ApplyResult> {
  const plan = await buildPlan(db.pool, model, { prune: options.prune });
  if (plan.missingRoles.length > 0) {
    throw new UsageError(`the policy file names roles that the database lacks: ${plan.missingRoles.join(', ')}`, {
      hint: 'rlsctl does not create roles: create them in the schema (--schema) or the database first',
    });
  }
  if (plan.missingColumns.length > 0) {
    throw new UsageError(`the policy file names columns that the database lacks: ${plan.missingColumns.join(', ')}`, {
      hint: 'check the tenant `column`, `via` columns and `indexes` of those tables',
    });
  }
  if (plan.viaWithoutKey.length > 0) {
    throw new UsageError(plan.viaWithoutKey.map(viaWithoutKeyProblem).join('; '), { hint: plan.viaWithoutKey.map((v) => v.fix).join('; ') });
  }
  return applyPlan(db, plan);
}
