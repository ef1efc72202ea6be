/** A plan is data before it is SQL: every statement says what it touches and what it risks. */

export type Hazard =
  /** Someone can read or write more than before. */
  | 'AUTHZ_WIDENS'
  /** Someone can read or write less than before (an application query may start returning fewer rows). */
  | 'AUTHZ_NARROWS'
  /** Builds an index: reads the whole table, takes time and I/O. */
  | 'INDEX_BUILD'
  /** Takes an ACCESS EXCLUSIVE lock on the table for the length of the transaction. */
  | 'TABLE_LOCK'
  /** Drops an object. */
  | 'DROP';

export type StatementTarget =
  | { kind: 'table'; schema: string; name: string }
  | { kind: 'policy'; schema: string; table: string; name: string }
  | { kind: 'index'; schema: string; table: string; name: string }
  /** The partition event trigger, its function and schema (src/compile/partition-trigger.ts): `name` is the object's. */
  | { kind: 'function'; schema: string; name: string };

export interface Statement {
  sql: string;
  target: StatementTarget;
  hazards: Hazard[];
  /** Why, where the statement knows more than the hazard's general meaning (src/plan/hazard-reasons.ts gives the rest). */
  reasons?: Partial<Record<Hazard, string>>;
  /** `transaction`: runs in the one all-or-nothing transaction; `concurrent`: outside it (CREATE INDEX CONCURRENTLY). */
  phase: 'transaction' | 'concurrent';
  /** One line for people: what the statement does and why. */
  summary: string;
}
