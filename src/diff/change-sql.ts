import type { DesiredTable, IndexSpec, PolicySpec } from '../compile/desired-state.js';
import { createIndexSql, createPolicySql, dropPolicySql } from '../compile/render-sql.js';
import { qualify } from '../compile/quote.js';

/**
 * The SQL a change would run, for the pull-request comment: the statements
 * that take a database in the state BASE compiles to into the state HEAD
 * compiles to, table by table. Every identifier goes through quote.ts.
 *
 * A policy that changed is dropped and created again, as `rlsctl compile`
 * does (ALTER POLICY cannot change FOR or AS, nor remove a USING). Indexes
 * are built and dropped CONCURRENTLY, which cannot run inside a transaction
 * block. What `apply` really runs is for `plan` to say against the live
 * database; this is the reviewer's view of the same intent.
 */
export interface TableSqlDelta {
  /** By policy name: the statements for that policy, if it differs. */
  policies: Map<string, string[]>;
  /** Enabling and forcing RLS, when BASE left the table unmanaged or exempt. */
  rls: string[];
  /** By index name. */
  indexes: Map<string, string[]>;
}

export function tableSqlDelta(base: DesiredTable | undefined, head: DesiredTable | undefined): TableSqlDelta {
  const delta: TableSqlDelta = { policies: new Map(), rls: [], indexes: new Map() };
  // An exempt or undeclared table is left as it is by apply: nothing runs for it.
  if (!head || !head.rls) return delta;
  const tableSql = qualify(head.schema, head.name);
  const managedBefore = base?.rls !== undefined;
  const basePolicies = new Map((managedBefore ? base!.policies : []).map((p) => [p.name, p]));
  const headPolicies = new Map(head.policies.map((p) => [p.name, p]));
  for (const [name, policy] of headPolicies) {
    const old = basePolicies.get(name);
    if (!old) delta.policies.set(name, [createPolicySql(tableSql, policy)]);
    else if (!samePolicySpec(old, policy)) delta.policies.set(name, [dropPolicySql(tableSql, name, true), createPolicySql(tableSql, policy)]);
  }
  for (const name of basePolicies.keys()) {
    if (!headPolicies.has(name)) delta.policies.set(name, [dropPolicySql(tableSql, name, true)]);
  }
  // Policies first, then RLS on: never a moment with RLS on and no policy.
  if (!managedBefore) {
    delta.rls.push(`ALTER TABLE ${tableSql} ENABLE ROW LEVEL SECURITY;`, `ALTER TABLE ${tableSql} FORCE ROW LEVEL SECURITY;`);
  }
  const baseIndexes = new Map((managedBefore ? base!.indexes : []).map((i) => [i.name, i]));
  const headIndexes = new Map(head.indexes.map((i) => [i.name, i]));
  for (const [name, index] of headIndexes) {
    const old = baseIndexes.get(name);
    if (!old) delta.indexes.set(name, [createIndexSql(index, { concurrently: true, ifNotExists: true })]);
    else if (!sameIndexSpec(old, index)) delta.indexes.set(name, [dropIndexSql(old), createIndexSql(index, { concurrently: true, ifNotExists: false })]);
  }
  for (const [name, index] of baseIndexes) {
    if (!headIndexes.has(name)) delta.indexes.set(name, [dropIndexSql(index)]);
  }
  return delta;
}

export function dropIndexSql(index: IndexSpec): string {
  return `DROP INDEX CONCURRENTLY IF EXISTS ${qualify(index.schema, index.name)};`;
}

/** Every statement of a delta, policies and RLS flags first, indexes last (the order compile uses). */
export function allStatements(delta: TableSqlDelta): string[] {
  return [...sortedValues(delta.policies), ...delta.rls, ...sortedValues(delta.indexes)];
}

/** The statements of the policies rlsctl generates (`rlsctl_` names), in name order. */
export function generatedPolicyStatements(delta: TableSqlDelta, generated: (name: string) => boolean): string[] {
  return [...delta.policies]
    .filter(([name]) => generated(name))
    .sort(byName)
    .flatMap(([, sql]) => sql);
}

function sortedValues(map: Map<string, string[]>): string[] {
  return [...map].sort(byName).flatMap(([, sql]) => sql);
}

function byName(a: [string, unknown], b: [string, unknown]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

function samePolicySpec(a: PolicySpec, b: PolicySpec): boolean {
  return a.permissive === b.permissive && a.command === b.command && a.roles.join('\0') === b.roles.join('\0') && a.using === b.using && a.check === b.check;
}

function sameIndexSpec(a: IndexSpec, b: IndexSpec): boolean {
  return a.unique === b.unique && a.columns.join('\0') === b.columns.join('\0') && a.table === b.table;
}

/** A `-- ` comment line for a change after which no statement runs. */
export function noStatement(text: string): string {
  return `-- ${text.replace(/\n/g, ' ')}`;
}
