import { leadingColumns, type CatalogIndex, type CatalogTable } from '../catalog/catalog-model.js';
import { indexName } from '../compile/desired-state.js';
import { identBytes, qualify, quoteIdent } from '../compile/quote.js';
import { createIndexSql } from '../compile/render-sql.js';
import type { Statement } from '../compile/statement.js';
import { hazardList } from './hazard-list.js';

/**
 * The index side of a plan. Index statements run after the transaction, one
 * by one, outside any transaction block: CREATE INDEX CONCURRENTLY builds
 * without blocking writes, and cannot run inside a transaction block.
 *
 * Reuse before building: a valid, non-partial btree index that leads with the
 * tenant column serves the tenant predicate whatever its name, so none is
 * added beside it; a declared index is served by an existing one with the
 * same key columns (and uniqueness).
 *
 * An index left INVALID by a failed CREATE INDEX CONCURRENTLY (a duplicate
 * in a unique build, a lock timeout, a cancelled session) takes up its name
 * and is maintained on every write but never used: it is dropped (DROP INDEX
 * CONCURRENTLY) and built again.
 *
 * A partitioned table cannot be indexed CONCURRENTLY (PostgreSQL 11 to 18).
 * So: CREATE INDEX ... ON ONLY the parent (instant; the index is invalid
 * until every partition has one attached), CREATE INDEX CONCURRENTLY on each
 * partition, then ALTER INDEX parent ATTACH PARTITION child, after which
 * PostgreSQL marks the parent's index valid by itself. Sub-partitioned
 * partitions get the same treatment one level down. Partitions created later
 * get the index from PostgreSQL automatically (CREATE TABLE ... PARTITION OF
 * builds it).
 */

export interface IndexWant {
  /** The name to give it when one is built. */
  name: string;
  columns: string[];
  unique: boolean;
  /** `lead`: any index whose first keys are these columns serves; `exact`: the key columns must be exactly these. */
  match: 'lead' | 'exact';
  /** The user chose the name in the policy file: an index of another shape under it is replaced, not worked around. */
  userNamed: boolean;
  /** Why it is wanted, for the summary. */
  purpose: string;
}

export interface IndexContext {
  /** Direct partitions of a partitioned table. */
  childrenOf(table: CatalogTable): CatalogTable[];
  /** Relation names taken in a schema (index names share the namespace of tables); updated as names are planned. */
  takenNames(schema: string): Set<string>;
}

export function servesWant(index: CatalogIndex, want: Pick<IndexWant, 'columns' | 'unique' | 'match'>): boolean {
  if (index.method !== 'btree' || index.predicate !== undefined) return false;
  const columns = leadingColumns(index);
  if (!want.columns.every((c, k) => columns[k] === c)) return false;
  if (want.match === 'lead') return true;
  return index.keys.length === want.columns.length && (!want.unique || index.unique);
}

/** What ALTER INDEX ... ATTACH PARTITION accepts: the same keys, uniqueness and shape as the parent's index. */
function attachable(index: CatalogIndex, want: IndexWant): boolean {
  return (
    index.method === 'btree' &&
    index.predicate === undefined &&
    index.include.length === 0 &&
    index.unique === want.unique &&
    index.keys.length === want.columns.length &&
    index.keys.every((k, i) => k.kind === 'column' && k.name === want.columns[i])
  );
}

/** `name`, or `name1`, `name2`, ... : the first that no relation of the schema uses (63 bytes at most). */
export function freeName(name: string, taken: Set<string>): string {
  if (!taken.has(name)) return name;
  for (let n = 1; ; n++) {
    // Cut whole code points: half a UTF-16 surrogate pair is not valid UTF-8.
    const head = Array.from(name);
    while (identBytes(`${head.join('')}${n}`) > 63) head.pop();
    if (!taken.has(`${head.join('')}${n}`)) return `${head.join('')}${n}`;
  }
}

export function planTableIndexes(table: CatalogTable, wants: IndexWant[], context: IndexContext): Statement[] {
  const out: Statement[] = [];
  for (const want of dedupeWants(wants)) {
    out.push(...(table.relkind === 'p' ? planPartitioned(table, want, context) : planLeaf(table, want, context).statements));
  }
  return out;
}

/** A `lead` want is served by any other want on the same table that starts with its columns. */
function dedupeWants(wants: IndexWant[]): IndexWant[] {
  return wants.filter(
    (w, i) =>
      !(
        w.match === 'lead' &&
        wants.some(
          (o, j) =>
            j !== i &&
            (o.match === 'exact' || j < i) &&
            w.columns.every((c, k) => o.columns[k] === c) &&
            (o.match === 'exact' || o.columns.length >= w.columns.length),
        )
      ),
  );
}

function target(table: CatalogTable, name: string): Statement['target'] {
  return { kind: 'index', schema: table.schema, table: table.name, name };
}

function label(table: CatalogTable): string {
  return `${table.schema}.${table.name}`;
}

function dropInvalid(table: CatalogTable, index: CatalogIndex): Statement {
  return {
    sql: `DROP INDEX CONCURRENTLY IF EXISTS ${qualify(table.schema, index.name)};`,
    target: target(table, index.name),
    hazards: ['DROP'],
    phase: 'concurrent',
    summary: `drop index ${index.name} on ${label(table)}: it is invalid (an earlier build failed) and is built again below`,
  };
}

function buildConcurrently(table: CatalogTable, name: string, want: IndexWant, why: string): Statement {
  return {
    sql: createIndexSql(
      { name, schema: table.schema, table: table.name, columns: want.columns, unique: want.unique },
      { concurrently: true, ifNotExists: false },
    ),
    target: target(table, name),
    hazards: ['INDEX_BUILD'],
    phase: 'concurrent',
    summary: `build ${want.unique ? 'unique ' : ''}index ${name} on ${label(table)} (${want.columns.join(', ')}) concurrently: ${why}`,
  };
}

/**
 * The name a new index gets: the wanted one, unless another relation of the
 * schema holds it and the user did not choose it, then the first free variant.
 */
function nameFor(table: CatalogTable, want: IndexWant, context: IndexContext): { name: string; statements: Statement[] } {
  const taken = context.takenNames(table.schema);
  const sameName = table.indexes.find((i) => i.name === want.name);
  const statements: Statement[] = [];
  let name = want.name;
  if (sameName && !sameName.valid) {
    statements.push(dropInvalid(table, sameName));
  } else if (sameName && want.userNamed) {
    // The user chose this name for another index shape: replace it.
    statements.push({
      sql: table.relkind === 'p' ? `DROP INDEX ${qualify(table.schema, sameName.name)};` : `DROP INDEX CONCURRENTLY ${qualify(table.schema, sameName.name)};`,
      target: target(table, sameName.name),
      hazards: table.relkind === 'p' ? ['DROP', 'TABLE_LOCK'] : ['DROP'],
      phase: 'concurrent',
      summary: `drop index ${sameName.name} on ${label(table)}: the policy file declares another index under this name (${sameName.definition})`,
    });
  } else if (taken.has(name)) {
    name = freeName(name, taken);
  }
  taken.add(name);
  return { name, statements };
}

function planLeaf(table: CatalogTable, want: IndexWant, context: IndexContext): { statements: Statement[] } {
  if (table.indexes.some((i) => i.valid && servesWant(i, want))) return { statements: [] };
  const { name, statements } = nameFor(table, want, context);
  statements.push(buildConcurrently(table, name, want, want.purpose));
  return { statements };
}

function planPartitioned(table: CatalogTable, want: IndexWant, context: IndexContext): Statement[] {
  if (table.indexes.some((i) => i.valid && servesWant(i, want))) return [];
  const statements: Statement[] = [];
  // An invalid partitioned index of the right shape is one whose partitions
  // are not all attached yet (an earlier apply stopped half way): finish it.
  const unfinished =
    table.indexes.find((i) => !i.valid && i.name === want.name && attachable(i, want)) ?? table.indexes.find((i) => !i.valid && attachable(i, want));
  let parentName: string;
  if (unfinished) {
    parentName = unfinished.name;
  } else {
    const named = nameFor(table, { ...want, userNamed: want.userNamed }, context);
    // An invalid index on a partitioned table of another shape: a plain DROP
    // INDEX (DROP INDEX CONCURRENTLY refuses partitioned indexes).
    statements.push(
      ...named.statements.map((s) =>
        s.sql.startsWith('DROP INDEX CONCURRENTLY')
          ? { ...s, sql: s.sql.replace('DROP INDEX CONCURRENTLY', 'DROP INDEX'), hazards: hazardList(s.hazards, 'TABLE_LOCK') }
          : s,
      ),
    );
    parentName = named.name;
    statements.push({
      sql: `CREATE ${want.unique ? 'UNIQUE ' : ''}INDEX ${quoteIdent(parentName)} ON ONLY ${qualify(table.schema, table.name)} (${want.columns.map(quoteIdent).join(', ')});`,
      target: target(table, parentName),
      hazards: [],
      phase: 'concurrent',
      summary: `create index ${parentName} on the partitioned table ${label(table)} (${want.columns.join(', ')}) ON ONLY, without building it: ${want.purpose}; each partition's index is built concurrently and attached below`,
    });
  }
  statements.push(...planChildren(table, { schema: table.schema, name: parentName }, want, context));
  return statements;
}

function planChildren(parent: CatalogTable, parentIndex: { schema: string; name: string }, want: IndexWant, context: IndexContext): Statement[] {
  const statements: Statement[] = [];
  for (const child of context.childrenOf(parent)) {
    const attached = child.indexes.find((i) => i.attachedTo?.schema === parentIndex.schema && i.attachedTo.name === parentIndex.name);
    if (attached?.valid) continue;
    const childWant: IndexWant = { ...want, name: indexName(child.name, want.columns), userNamed: false };
    const attach = (childIndex: string): Statement => ({
      sql: `ALTER INDEX ${qualify(parentIndex.schema, parentIndex.name)} ATTACH PARTITION ${qualify(child.schema, childIndex)};`,
      target: target(child, childIndex),
      hazards: [],
      phase: 'concurrent',
      summary: `attach index ${childIndex} of the partition ${label(child)} to ${parentIndex.schema}.${parentIndex.name}`,
    });
    if (child.relkind === 'p') {
      let childIndex: string;
      if (attached) {
        childIndex = attached.name;
      } else {
        const reusable = child.indexes.find((i) => !i.attachedTo && attachable(i, want));
        if (reusable) childIndex = reusable.name;
        else {
          const named = nameFor(child, childWant, context);
          childIndex = named.name;
          statements.push(
            ...named.statements.map((s) => ({
              ...s,
              sql: s.sql.replace('DROP INDEX CONCURRENTLY', 'DROP INDEX'),
              hazards: hazardList(s.hazards, 'TABLE_LOCK'),
            })),
            {
              sql: `CREATE ${want.unique ? 'UNIQUE ' : ''}INDEX ${quoteIdent(childIndex)} ON ONLY ${qualify(child.schema, child.name)} (${want.columns.map(quoteIdent).join(', ')});`,
              target: target(child, childIndex),
              hazards: [],
              phase: 'concurrent',
              summary: `create index ${childIndex} on the partitioned partition ${label(child)} ON ONLY, without building it`,
            },
          );
        }
      }
      statements.push(...planChildren(child, { schema: child.schema, name: childIndex }, want, context));
      if (!attached) statements.push(attach(childIndex));
      continue;
    }
    // A leaf partition: attach an index of the right shape it already has, or build one.
    const reusable = child.indexes.find((i) => i.valid && !i.attachedTo && attachable(i, want));
    if (reusable) {
      statements.push(attach(reusable.name));
      continue;
    }
    const named = nameFor(child, childWant, context);
    statements.push(
      ...named.statements,
      buildConcurrently(child, named.name, want, `the partition's part of ${parentIndex.schema}.${parentIndex.name}`),
      attach(named.name),
    );
  }
  return statements;
}
