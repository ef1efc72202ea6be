/**
 * One change between two versions of the policy file, classed by what it
 * does to access: widening (someone can read or write more than before),
 * narrowing (less), neutral (no change to who can read or write what).
 */

export const CHANGE_CLASSES = ['widening', 'narrowing', 'neutral'] as const;
export type ChangeClass = (typeof CHANGE_CLASSES)[number];

/**
 * What changed, as a closed union: every consumer that switches on it fails
 * to compile until it handles a new kind.
 */
export type ChangeKind =
  | 'tenant-setting'
  | 'tenant-type'
  | 'tenant-claim'
  | 'engine'
  | 'tenant-column-default'
  | 'tenant-membership'
  | 'managed-schema'
  | 'partitions-protect-new'
  | 'app-role'
  | 'bypass-role'
  | 'table-added'
  | 'table-removed'
  | 'mode'
  | 'exempt-reason'
  | 'tenant-source'
  | 'command'
  | 'policy-added'
  | 'policy-removed'
  | 'policy-renamed'
  | 'policy-as'
  | 'policy-for'
  | 'policy-to'
  | 'policy-using'
  | 'policy-check'
  | 'index-added'
  | 'index-removed'
  | 'index-changed'
  | 'index-renamed';

/** The shape of `object` in the JSON output (cli.md, "diff"), the same as a finding's. */
export interface ChangeObject {
  kind: 'table' | 'policy' | 'index' | 'role' | 'policy_file';
  schema?: string;
  /** For a policy or an index: the table it belongs to. */
  table?: string;
  name: string;
}

export interface PolicyChange {
  kind: ChangeKind;
  object: ChangeObject;
  /** Short and mechanical: `mode tenant -> exempt`. */
  change: string;
  class: ChangeClass;
  /** For people: what the change means for who can read or write what. */
  message: string;
  /**
   * The statements that take a database compiled from BASE to what HEAD
   * compiles to, for the objects this change touches; `-- ` lines where no
   * statement runs. For review only: `rlsctl plan` against the live database
   * is what `apply` will really run.
   */
  sql: string[];
}

export type ChangeSummary = Record<ChangeClass, number>;

const CLASS_ORDER: Record<ChangeClass, number> = { widening: 0, narrowing: 1, neutral: 2 };
const KIND_ORDER: Record<ChangeObject['kind'], number> = { policy_file: 0, role: 1, table: 2, policy: 3, index: 4 };

export function changeObjectLabel(object: ChangeObject): string {
  if (!object.schema) return object.name;
  return object.table ? `${object.schema}.${object.table}.${object.name}` : `${object.schema}.${object.name}`;
}

/**
 * Widening first, then narrowing, then neutral; within a class by object
 * (file-wide settings, roles, tables, then their policies and indexes), then
 * by the change text, so two runs over the same inputs print the same bytes.
 * Comparison is by code unit, not locale, for the same reason.
 */
export function sortChanges(changes: PolicyChange[]): PolicyChange[] {
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return [...changes].sort(
    (a, b) =>
      CLASS_ORDER[a.class] - CLASS_ORDER[b.class] ||
      cmp(a.object.schema ?? '', b.object.schema ?? '') ||
      cmp(a.object.table ?? (a.object.schema ? a.object.name : ''), b.object.table ?? (b.object.schema ? b.object.name : '')) ||
      KIND_ORDER[a.object.kind] - KIND_ORDER[b.object.kind] ||
      cmp(a.object.name, b.object.name) ||
      cmp(a.change, b.change) ||
      cmp(a.message, b.message),
  );
}

export function summarizeChanges(changes: PolicyChange[]): ChangeSummary {
  const summary: ChangeSummary = { widening: 0, narrowing: 0, neutral: 0 };
  for (const c of changes) summary[c.class]++;
  return summary;
}
