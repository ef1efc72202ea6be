import type { Statement } from '../compile/statement.js';

/**
 * The ordering rules of a plan, enforced here and nowhere else.
 *
 * 1. The transaction phase runs first, all of it in one transaction; the
 *    concurrent phase (index builds) afterwards, because CREATE INDEX
 *    CONCURRENTLY cannot run inside a transaction block.
 * 2. Within the transaction, table by table (the declared table, then its
 *    partitions), in this order:
 *    a. policies are created, altered or replaced;
 *    b. then RLS is enabled and forced: a table never has RLS on without its
 *       policies, which would deny every query in between should the
 *       statements ever be run one by one (the compiled script keeps the same
 *       order);
 *    c. then policies that are no longer wanted are dropped, after their
 *       replacements exist. rlsctl never disables RLS; if it ever does, the
 *       disable goes before the drops, so that no moment has RLS on and the
 *       last policy gone.
 * 3. Index statements keep the order they were planned in for each table
 *    (drop a failed build, create the parent's index ON ONLY, build each
 *    partition's, attach it), tables in name order.
 */
export type Step = 'policy' | 'rls' | 'drop-policy' | 'index';

const STEP_RANK: Record<Step, number> = { policy: 0, rls: 1, 'drop-policy': 2, index: 3 };

export interface PlannedStatement {
  statement: Statement;
  step: Step;
  /** The declared table the statement serves (`schema.name`): groups a table with its partitions. */
  group: string;
  /** The relation it touches: the declared table sorts before its partitions. */
  relation: string;
  /** Generation order, for statements that must keep it (index builds). */
  seq: number;
}

export function orderStatements(planned: PlannedStatement[]): Statement[] {
  const phaseRank = (p: PlannedStatement) => (p.statement.phase === 'transaction' ? 0 : 1);
  return [...planned]
    .sort(
      (a, b) =>
        phaseRank(a) - phaseRank(b) ||
        compare(a.group, b.group) ||
        (a.step === 'index' ? 0 : Number(a.relation !== a.group) - Number(b.relation !== b.group) || compare(a.relation, b.relation)) ||
        STEP_RANK[a.step] - STEP_RANK[b.step] ||
        a.seq - b.seq,
    )
    .map((p) => p.statement);
}

/** Byte order, as COLLATE "C": the same on every machine. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
