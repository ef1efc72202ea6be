import { indexName } from '../compile/desired-state.js';
import { qualify, quoteIdent } from '../compile/quote.js';
import type { IndexInfo, TenantRelation } from './read-explain-catalog.js';
import { comparedColumns } from './walk-plan.js';

/**
 * The index a tenant-scoped access pattern needs: the tenant column first
 * (every query of a tenant filters on it), then the columns the query
 * compares for equality, then one range column, or else the column it sorts
 * by, since a B-tree serves equality prefixes followed by one range or order.
 * The columns come from the query's parse tree (WHERE, JOIN ... ON, ORDER BY
 * of the relation's aliases) and from the plan's Filter on the scan.
 */

type Node = Record<string, unknown>;

export interface ColumnUse {
  column: string;
  op: 'eq' | 'range' | 'order';
}

function fieldsOf(node: unknown): string[] | undefined {
  const ref = (node as { ColumnRef?: { fields?: Array<{ String?: { sval: string } }> } })?.ColumnRef;
  return ref?.fields?.map((f) => f.String?.sval ?? '*');
}

function walk(node: unknown, visit: (obj: Node) => void): void {
  if (Array.isArray(node)) {
    for (const n of node) walk(n, visit);
    return;
  }
  if (!node || typeof node !== 'object') return;
  visit(node as Node);
  for (const value of Object.values(node as Node)) walk(value, visit);
}

/** The names by which the query refers to `names` (a table and its partitions): aliases, or the bare name. */
function aliasesOf(stmt: unknown, schema: string, names: Set<string>): Set<string> {
  const aliases = new Set<string>();
  walk(stmt, (obj) => {
    const rv = obj.RangeVar as { schemaname?: string; relname?: string; alias?: { aliasname?: string } } | undefined;
    if (!rv?.relname || !names.has(rv.relname)) return;
    if (rv.schemaname !== undefined && rv.schemaname !== schema) return;
    aliases.add(rv.alias?.aliasname ?? rv.relname);
  });
  return aliases;
}

const RANGE_OPS = new Set(['<', '>', '<=', '>=']);

/** Columns of a relation that the query compares or sorts by, in order of appearance. */
export function queryColumnUses(stmt: unknown, schema: string, names: Set<string>, columns: Set<string>): ColumnUse[] {
  const aliases = aliasesOf(stmt, schema, names);
  if (aliases.size === 0) return [];
  const mine = (node: unknown): string | undefined => {
    const f = fieldsOf(node);
    if (!f) return undefined;
    const column = f[f.length - 1];
    if (!columns.has(column)) return undefined;
    if (f.length === 1 || aliases.has(f[f.length - 2])) return column;
    return undefined;
  };
  const uses: ColumnUse[] = [];
  const add = (column: string, op: ColumnUse['op']) => {
    if (!uses.some((u) => u.column === column && u.op === op)) uses.push({ column, op });
  };
  walk(stmt, (obj) => {
    const expr = obj.A_Expr as { kind?: string; name?: Array<{ String?: { sval: string } }>; lexpr?: unknown; rexpr?: unknown } | undefined;
    if (expr) {
      const op = expr.name?.[0]?.String?.sval;
      const left = mine(expr.lexpr);
      const right = mine(expr.rexpr);
      const column = left ?? right;
      // Both sides of this relation (`a.x = a.y`) bound nothing.
      if (column && !(left && right)) {
        if ((expr.kind === 'AEXPR_OP' && op === '=') || (expr.kind === 'AEXPR_OP_ANY' && op === '=') || expr.kind === 'AEXPR_IN') add(column, 'eq');
        else if (expr.kind === 'AEXPR_OP' && op && RANGE_OPS.has(op)) add(column, 'range');
        else if (expr.kind?.startsWith('AEXPR_BETWEEN') && left) add(column, 'range');
      }
    }
    const nullTest = obj.NullTest as { arg?: unknown; nulltesttype?: string } | undefined;
    if (nullTest && nullTest.nulltesttype === 'IS_NULL') {
      const column = mine(nullTest.arg);
      if (column) add(column, 'eq');
    }
    const sortClause = obj.sortClause as Array<{ SortBy?: { node?: unknown } }> | undefined;
    if (Array.isArray(sortClause)) {
      for (const s of sortClause) {
        const column = mine(s.SortBy?.node);
        if (column) add(column, 'order');
      }
    }
  });
  return uses;
}

export interface IndexSuggestion {
  columns: string[];
  sql: string;
  name: string;
  /** A valid index that already starts with these columns (then the index is not what is missing). */
  existing?: IndexInfo;
}

/** Assemble the index from the lead columns and the uses found in the query and in the plan's filter. */
export function suggestIndex(relation: TenantRelation, queryUses: ColumnUse[], filter: string | undefined, alias: string): IndexSuggestion {
  const uses = [...queryUses];
  if (filter) {
    for (const f of comparedColumns(filter, alias, relation.columns)) if (!uses.some((u) => u.column === f.column)) uses.push(f);
  }
  const columns = [...relation.lead];
  for (const u of uses) if (u.op === 'eq' && !columns.includes(u.column)) columns.push(u.column);
  const tail = uses.find((u) => u.op === 'range' && !columns.includes(u.column)) ?? uses.find((u) => u.op === 'order' && !columns.includes(u.column));
  if (tail) columns.push(tail.column);
  const { schema, name } = relation.table;
  const existing = relation.indexes.find((i) => !i.partial && columns.every((c, k) => i.columns[k] === c));
  const idx = indexName(name, columns);
  const target = `${qualify(schema, name)} (${columns.map(quoteIdent).join(', ')})`;
  // PostgreSQL cannot build an index on a partitioned table CONCURRENTLY.
  const sql = relation.partitioned
    ? `CREATE INDEX IF NOT EXISTS ${quoteIdent(idx)} ON ${target};  -- partitioned: CONCURRENTLY is not supported here; rlsctl apply builds it partition by partition`
    : `CREATE INDEX CONCURRENTLY IF NOT EXISTS ${quoteIdent(idx)} ON ${target};`;
  return { columns, sql, name: idx, existing };
}

/** True when an index that leads with `lead` exists (valid, not partial). */
export function hasLeadingIndex(relation: TenantRelation): IndexInfo | undefined {
  return relation.indexes.find((i) => !i.partial && relation.lead.length > 0 && relation.lead.every((c, k) => i.columns[k] === c));
}
