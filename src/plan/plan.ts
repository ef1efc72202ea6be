import type { Statement } from '../compile/statement.js';
import type { PolicyModel } from '../policy/model.js';

/**
 * What `apply` would run to bring a database to the policy file: data before
 * it is SQL. Empty `statements` and `drift` mean the database is converged.
 */
export interface Plan {
  /** In the order they run: the transaction phase first, then the concurrent index phase. */
  statements: Statement[];
  /** Differences the plan does not repair on its own (policies the file does not declare, without --prune). */
  drift: PlanDrift[];
  /** Tables the file declares that the database lacks (`schema.table`). */
  missingTables: string[];
  /** Tables in a managed schema that the file does not declare (`schema.table`). */
  undeclaredTables: string[];
  /** Columns the file relies on that a table lacks (`schema.table.column`): tenant, via and index columns. */
  missingColumns: string[];
  /**
   * `via` tables whose `references` cover no unique key of the parent: a child
   * row would match the parent rows of several tenants, and each would see it.
   */
  viaWithoutKey: ViaWithoutKey[];
  /** Roles the file names (app roles, `to` of extra policies) that the database lacks. */
  missingRoles: string[];
  /** Set when the plan changes the partition event trigger and the role is not a superuser (src/compile/partition-trigger.ts). */
  partitionTriggerProblem?: string;
  /** A fingerprint of the catalog the plan was made from (see catalog/hash-catalog.ts). */
  catalogHash: string;
  /** The input the plan was made from: apply plans again from it if the catalog changed before it got its lock. */
  source: { model: PolicyModel; prune: boolean };
}

export interface ViaWithoutKey {
  /** The `via` table, `schema.table`. */
  table: string;
  /** Its parent, `schema.table`. */
  parent: string;
  /** The parent columns the predicate joins on (`via.references`). */
  references: string[];
  /** SQL (or a change to the policy file) that makes the join match one parent row. */
  fix: string;
}

export interface PlanDrift {
  schema: string;
  table: string;
  policy: string;
  message: string;
}

/** Problems that make the plan unusable as a whole: input the database contradicts. */
export function planProblems(plan: Plan): string[] {
  const out: string[] = [];
  if (plan.missingTables.length > 0) {
    out.push(`the policy file declares ${plural(plan.missingTables.length, 'table')} that the database lacks: ${plan.missingTables.join(', ')}`);
  }
  if (plan.undeclaredTables.length > 0) {
    out.push(
      `${plural(plan.undeclaredTables.length, 'table')} in a managed schema ${plan.undeclaredTables.length === 1 ? 'is' : 'are'} not declared in the policy file: ${plan.undeclaredTables.join(', ')}`,
    );
  }
  if (plan.missingColumns.length > 0) {
    out.push(`the policy file names ${plural(plan.missingColumns.length, 'column')} that the database lacks: ${plan.missingColumns.join(', ')}`);
  }
  out.push(...plan.viaWithoutKey.map(viaWithoutKeyProblem));
  if (plan.missingRoles.length > 0) {
    out.push(`the policy file names ${plural(plan.missingRoles.length, 'role')} that the database lacks: ${plan.missingRoles.join(', ')}`);
  }
  if (plan.partitionTriggerProblem) out.push(plan.partitionTriggerProblem);
  return out;
}

export function viaWithoutKeyProblem(v: ViaWithoutKey): string {
  return `the via of ${v.table} joins on (${v.references.join(', ')}), which is not a unique key of ${v.parent}: a row of ${v.table} would be visible to every tenant that has a row of ${v.parent} with that key`;
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** True when applying the plan would change nothing and nothing drifts. */
export function isConverged(plan: Pick<Plan, 'statements' | 'drift'>): boolean {
  return plan.statements.length === 0 && plan.drift.length === 0;
}
