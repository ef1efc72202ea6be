import type { Finding } from '../report/finding.js';
import type { PlannedQuery } from './plan-query.js';
import type { HypopgStatus } from './read-explain-catalog.js';

/** The programmatic API of explain (docs/explain.md, "Programmatic use"): what runExplain takes and returns. */

/** A query to plan: from a query file, or handed in by a program. */
export interface ExplainQuery {
  name: string;
  text: string;
  file?: string;
  line?: number;
  column?: number;
}

/** A statement of a query file that is no query (a syntax error, an empty `-- name:` block): EXP004 as it stands. */
export interface ExplainProblem {
  name: string;
  file: string;
  line: number;
  column: number;
  message: string;
}

export interface ExplainOptions {
  /** The role to plan as; default the first app role of the facts. */
  role?: string;
  /**
   * The app role whose policies apply to `role` (the policy file's, when
   * `role` is a login role that is a member of it: cli/app-role-member.ts);
   * default `role`.
   */
  policyRole?: string;
  /** The tenant to set; default a well-formed value of the tenant type. */
  tenant?: string;
  /** Try each suggested index as a hypothetical index where hypopg is installed (default true). */
  hypopg?: boolean;
  /** Problems found while reading query files, reported as EXP004. */
  problems?: ExplainProblem[];
  /** Called after each query is planned. */
  onProgress?: (done: number, total: number) => void;
}

/** What a finding of explain carries beyond the shared Finding, for the text report. */
export interface ExplainDetail {
  table?: string;
  /** The message without the plan conditions, which the text report prints as a plan fragment. */
  headline?: string;
  nodeType?: string;
  /** The offending plan fragment, as EXPLAIN's text format prints it. */
  fragment?: string[];
  /** The hypothetical-index check of the suggested index. */
  hypothetical?: string;
}

export type ExplainFinding = Finding & { detail?: ExplainDetail };

export interface QueryOutcome {
  name: string;
  file?: string;
  line?: number;
  planned: boolean;
  /** The two plans (as is, and with sequential scans off), when planned. */
  plans?: PlannedQuery;
}

export interface ExplainContext {
  role: string;
  /** The app role whose policies were matched (role itself, or the declared app role it is a member of). */
  policyRole: string;
  tenant: string;
  setting: string;
  /** What the setting holds for the tenant when it is not the tenant itself (the claims JSON of the claim model). */
  settingValue?: string;
  serverVersion: string;
  major: number;
  hypopg: HypopgStatus & { used: boolean };
}

export interface ExplainResult {
  findings: ExplainFinding[];
  queries: QueryOutcome[];
  context: ExplainContext;
}
