/**
 * Every error rlsctl raises on purpose carries the exit code of the CLI spec:
 * 1 a check failed, 2 the input is wrong, 3 the database or environment failed.
 * Code under src/ only throws; the launcher turns these into `process.exitCode`.
 */
export abstract class RlsctlError extends Error {
  abstract readonly exitCode: 1 | 2 | 3;
  /** What to do next, printed under the message. */
  readonly hint?: string;
  constructor(message: string, options?: { hint?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options?.hint;
  }
}

/** Cannot connect, permission denied, a statement failed: exit 3. */
export class DatabaseError extends RlsctlError {
  readonly exitCode = 3 as const;
}
