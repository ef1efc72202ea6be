import type { Hazard, Statement, StatementTarget } from '../compile/statement.js';

/** A hazard with its reason, for a reviewer: why this statement widens access or takes a lock. */
export interface HazardReason {
  code: Hazard;
  message: string;
}

function objectName(target: StatementTarget): string {
  return !('table' in target) ? `${target.schema}.${target.name}` : `${target.name} on ${target.schema}.${target.table}`;
}

function tableName(target: StatementTarget): string {
  return !('table' in target) ? `${target.schema}.${target.name}` : `${target.schema}.${target.table}`;
}

/** The reason of a hazard that a statement does not state itself. */
function defaultReason(code: Hazard, s: Pick<Statement, 'target'>): string {
  switch (code) {
    case 'AUTHZ_WIDENS':
      return `someone may read or write more rows of ${tableName(s.target)} than before`;
    case 'AUTHZ_NARROWS':
      return `someone may read or write fewer rows of ${tableName(s.target)} than before: application queries may return fewer rows or fail writes`;
    case 'TABLE_LOCK':
      return `takes an ACCESS EXCLUSIVE lock on ${tableName(s.target)} until the transaction ends: reads and writes of the table wait`;
    case 'INDEX_BUILD':
      return `builds an index on ${tableName(s.target)}: reads the whole table, takes time and I/O (concurrently, without blocking writes)`;
    case 'DROP':
      return `drops the ${s.target.kind} ${objectName(s.target)}`;
  }
}

/** Every hazard of a statement with its reason, in the statement's hazard order. */
export function hazardReasons(s: Pick<Statement, 'hazards' | 'target' | 'reasons'>): HazardReason[] {
  return s.hazards.map((code) => ({ code, message: s.reasons?.[code] ?? defaultReason(code, s) }));
}
