// RlsctlError and DatabaseError live in src/tenant/ so that the runtime entry
// (rlsctl/runtime, src/runtime.ts) loads only src/tenant/; the rest of rlsctl
// imports them from here as before.
import { RlsctlError } from './tenant/rlsctl-error.js';
export { RlsctlError, DatabaseError } from './tenant/rlsctl-error.js';

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
    super(diagnostics.length === 1 ? `the policy file is invalid: ${diagnostics[0].message}` : `the policy file is invalid: ${diagnostics.length} problems`);
    this.diagnostics = diagnostics;
  }
}

/** The command ran and its check failed (findings, drift, a leak, a widening change): exit 1. */
export class CheckFailed extends RlsctlError {
  readonly exitCode = 1 as const;
}
