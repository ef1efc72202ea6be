import { quoteLiteral } from '../../compile/quote.js';
import { errorText } from '../hide-values.js';
import type { FetchedRow, Row } from '../make-row.js';
import type { PgError, ProbeOutcome } from '../probe-session.js';
import type { VerifyRelation } from '../verify-catalog.js';

/** What the write probes of VER004, VER005 and VER006 share: how an attempt ended, and the cursor that targets one row. */

/** How a write attempt ended. */
export type WriteOutcome = { kind: 'crossed'; rows: number; note: string } | { kind: 'blocked' } | { kind: 'undecided'; error: PgError };

/**
 * Row level security is checked before the table's own constraints: for an
 * INSERT or UPDATE, PostgreSQL runs the WITH CHECK policies (ExecWithCheckOptions)
 * before NOT NULL and CHECK constraints, unique indexes and the foreign keys
 * (after-row triggers); a DELETE's foreign keys fire after the row is gone.
 * So a constraint error means the policies had already admitted the write:
 * it crossed, and only the data stopped this one row. A partition routing or
 * partition constraint error (23514 without a constraint name) comes before
 * the policies and decides nothing.
 */
export function classifyWrite(outcome: ProbeOutcome, show: boolean, row?: Row): WriteOutcome {
  if (outcome.ok) return (outcome.result.rowCount ?? 0) > 0 ? { kind: 'crossed', rows: outcome.result.rowCount ?? 0, note: '' } : { kind: 'blocked' };
  const e = outcome.error;
  if (e.code === '42501') return { kind: 'blocked' };
  const admitted = ['23502', '23503', '23505', '23P01'].includes(e.code) || (e.code === '23514' && Boolean(e.constraint));
  if (admitted)
    return {
      kind: 'crossed',
      rows: 0,
      note: ` (the row policies admitted it; only ${e.constraint ? `the constraint ${e.constraint}` : 'a NOT NULL constraint'} stopped this particular row: ${errorText({ message: e.message }, show, row)})`,
    };
  return { kind: 'undecided', error: e };
}

/** A cursor opened by the connecting role stands on the target row, so only the UPDATE or DELETE policies decide (a WHERE on a column would bring in the SELECT policies too). */
export function cursorOn(rel: VerifyRelation, row: FetchedRow): string[] {
  return [
    `DECLARE rlsctl_row CURSOR FOR SELECT 1 FROM ${rel.sql} AS r WHERE r.ctid = ${quoteLiteral(row.ctid)}::pg_catalog.tid AND r.tableoid = ${quoteLiteral(row.storedIn)}::pg_catalog.regclass`,
    'FETCH rlsctl_row',
  ];
}
