import type { SourceLocation } from '../errors.js';

export const SEVERITIES = ['error', 'warning', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];

export type ObjectKind =
  'table' | 'view' | 'materialized_view' | 'foreign_table' | 'partition' | 'policy' | 'index' | 'function' | 'role' | 'database' | 'query' | 'policy_file';

/** What a finding is about. Roles and the database carry only `name`. */
export interface FindingObject {
  kind: ObjectKind;
  schema?: string;
  name: string;
  /** For a policy or an index: the table it belongs to. */
  table?: string;
}

/**
 * A finding's fix as data. `sql` is what to run (the fail-closed choice first;
 * alternatives only as `--` comment lines) and `runnable` says rlsctl built it
 * from names the database or the policy file holds, so `audit --fix-script`
 * may write it. Where no safe SQL exists, `sql` is null, `runnable` false, and
 * `note` says what must be decided.
 */
export interface FindingFix {
  sql: string | null;
  runnable: boolean;
  note?: string;
}

export interface Finding {
  rule: string;
  name: string;
  severity: Severity;
  /** Names the object: the per-object detail, apart from the rule's static description. */
  message: string;
  object: FindingObject;
  /** What to run or change, often SQL: the human text (the fix's SQL, or its note). */
  help?: string;
  /** The fix as data (every audit finding has one). */
  fix?: FindingFix;
  /** Stable across runs: what baselines and SARIF partialFingerprints key on. */
  fingerprint: string;
  location?: SourceLocation;
}

/** The static half of a rule: shared by audit, explain, verify and validate. */
export interface RuleMeta {
  code: string;
  name: string;
  severity: Severity;
  title: string;
  description: string;
  remediation: string;
}

export function objectLabel(object: FindingObject): string {
  const base = object.schema ? `${object.schema}.${object.table ? `${object.table}.` : ''}${object.name}` : object.name;
  return base;
}

export function fingerprintOf(rule: string, object: FindingObject, extra?: string): string {
  return `${rule}:${objectLabel(object)}${extra ? `:${extra}` : ''}`;
}

const SEVERITY_ORDER: Record<Severity, number> = { error: 0, warning: 1, info: 2 };

/** Severity, then rule, then object: two runs over the same database diff cleanly. */
export function sortFindings(findings: Finding[]): Finding[] {
  return [...findings].sort(
    (a, b) =>
      SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] ||
      a.rule.localeCompare(b.rule) ||
      objectLabel(a.object).localeCompare(objectLabel(b.object)) ||
      compareLocations(a, b) ||
      a.fingerprint.localeCompare(b.fingerprint),
  );
}

/** Findings in one file in the order of its lines (line 3 before line 11), not of their fingerprint text. */
function compareLocations(a: Finding, b: Finding): number {
  if (!a.location || !b.location) return 0;
  return a.location.file.localeCompare(b.location.file) || a.location.line - b.location.line || a.location.column - b.location.column;
}

export type FailOn = Severity | 'never';

export function failsAt(findings: Finding[], failOn: FailOn): boolean {
  if (failOn === 'never') return false;
  return findings.some((f) => SEVERITY_ORDER[f.severity] <= SEVERITY_ORDER[failOn]);
}

export function summarize(findings: Finding[]): Record<Severity, number> {
  const summary = { error: 0, warning: 0, info: 0 };
  for (const f of findings) summary[f.severity]++;
  return summary;
}
