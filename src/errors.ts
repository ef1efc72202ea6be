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

/** Bad options, a missing file, an unreadable query file: exit 2. */
export class UsageError extends RlsctlError {
  readonly exitCode = 2 as const;
}

export interface SourceLocation {
  file: string;
  line: number;
  column: number;
}

export interface PolicyDiagnostic {
  location: SourceLocation;
  message: string;
  hint?: string;
}

/** The policy file is invalid; carries every problem found, not only the first: exit 2. */
export class PolicyInvalid extends RlsctlError {
  readonly exitCode = 2 as const;
  readonly diagnostics: PolicyDiagnostic[];
  constructor(diagnostics: PolicyDiagnostic[]) {
    super(
      diagnostics.length === 1
        ? `the policy file is invalid: ${diagnostics[0].message}`
        : `the policy file is invalid: ${diagnostics.length} problems`,
    );
    this.diagnostics = diagnostics;
  }
}

/** Cannot connect, permission denied, a statement failed: exit 3. */
export class DatabaseError extends RlsctlError {
  readonly exitCode = 3 as const;
}

/** The command ran and its check failed (findings, drift, a leak, a widening change): exit 1. */
export class CheckFailed extends RlsctlError {
  readonly exitCode = 1 as const;
}
