import type pg from 'pg';
import { quoteIdent, quoteLiteral } from '../compile/quote.js';
import { ownerSql, tenantLiteral } from './owner-sql.js';
import { parsePartitionBound } from './partition-bound.js';
import { placeholder, type Reveal } from './hide-values.js';
import { integerRange } from './check-values.js';
import type { VerifyCatalog, VerifyColumn, VerifyRelation } from './verify-catalog.js';

/**
 * Rows for probes and seeding, built as text values and written as typed
 * literals (`'…'::type`), so every value goes through quoting and the type's
 * own input function. A row is copied from a template where there is one
 * (an existing row: its values are valid for every constraint verify cannot
 * see), and made up per column type where there is none.
 */

/** A column's value in a row to insert: a literal (null is NULL), or left to its default. */
export type Cell = { kind: 'literal'; text: string | null } | { kind: 'default' };
export type Row = Map<string, Cell>;

/** Deterministic fresh values, so that two runs print the same statements. */
export class ValueCounter {
  private n = 0;
  next(): number {
    this.n += 1;
    return this.n;
  }
}

/** Columns an INSERT may name: not generated, not GENERATED ALWAYS AS IDENTITY. */
export function insertableColumns(rel: VerifyRelation): VerifyColumn[] {
  return rel.columns.filter((c) => c.generated === '' && c.identity !== 'a');
}

/**
 * A made-up value of the column's type, or undefined when verify cannot
 * guess one (composite types, ranges, geometric types, …). `n` makes it
 * fresh: a unique column gets a value no existing row is likely to have.
 */
export function syntheticValue(column: VerifyColumn, n: number): string | undefined {
  const check = column.check;
  // The table's CHECK constraints (check-values.ts): a listed value, a number inside the range, text within the length.
  if (check?.allowed) return check.allowed.length > 0 ? check.allowed[n % check.allowed.length] : undefined;
  const made = madeUpValue(
    check?.maxLength !== undefined ? { ...column, maxLength: Math.min(column.maxLength ?? check.maxLength, check.maxLength) } : column,
    n,
  );
  const { lo, hi } = integerRange(check);
  if (made === undefined || (lo === undefined && hi === undefined) || !Number.isFinite(Number(made))) return made;
  const value = Number(made);
  if ((lo === undefined || value >= lo) && (hi === undefined || value <= hi)) return made;
  if (lo !== undefined && hi !== undefined) return hi < lo ? undefined : String(lo + (n % (hi - lo + 1)));
  return lo !== undefined ? String(lo + n) : String(hi! - n);
}

function madeUpValue(column: VerifyColumn, n: number): string | undefined {
  const t = column.baseType;
  if (column.category === 'E') return column.enumFirst ?? undefined;
  if (column.category === 'A') return '{}';
  if (t === 'int2') return String(20000 + (n % 10000));
  if (t === 'numeric' && column.integerDigits !== null) return column.integerDigits <= 0 ? '0' : String(n % 10 ** Math.min(column.integerDigits, 15));
  if (['int4', 'int8', 'numeric', 'float4', 'float8', 'oid', 'money'].includes(t)) return String(2_000_000_000 + n);
  if (t === 'uuid') return `f1e5c0de-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
  if (t === 'bool') return 'false';
  if (t === 'jsonb' || t === 'json') return '{}';
  if (t === 'bytea') return `\\x${n.toString(16).padStart(2, '0').slice(-2)}`;
  if (t === 'date') return isoDay(n);
  if (t === 'timestamp' || t === 'timestamptz') return `${isoDay(n)} 00:00:00+00`;
  if (t === 'time' || t === 'timetz') return '12:00:00';
  if (t === 'interval') return '1 day';
  if (t === 'inet') return '192.0.2.1';
  if (t === 'cidr') return '192.0.2.0/24';
  if (t === 'macaddr') return '08:00:2b:01:02:03';
  if (t === 'bit' || t === 'varbit') return '0';
  if (t === 'tsvector' || t === 'xml') return '';
  if (column.category === 'S' || ['citext', 'text', 'varchar', 'bpchar', 'name'].includes(t)) {
    const base = /mail/i.test(column.name) ? `rlsctl-${n}@example.invalid` : `rlsctl-${n}`;
    if (column.maxLength === null || column.maxLength === undefined || base.length <= column.maxLength) return base;
    return n.toString(36).slice(-column.maxLength);
  }
  return undefined;
}

function isoDay(n: number): string {
  return new Date(Date.UTC(2001, 0, 1) + n * 86_400_000).toISOString().slice(0, 10);
}

/** `SELECT` of one row's values as text, plus where it lives (tableoid, ctid). */
export function selectRowSql(rel: VerifyRelation, from: string, alias: string, where: string): string {
  const cols = insertableColumns(rel).map((c, i) => `${alias}.${quoteIdent(c.name)}::text AS c${i}`);
  return `SELECT ${alias}.tableoid::pg_catalog.regclass::text AS rlsctl_rel, ${alias}.ctid::text AS rlsctl_ctid${cols.length ? ', ' : ''}${cols.join(', ')} FROM ${from} AS ${alias} WHERE ${where} LIMIT 1`;
}

export interface FetchedRow {
  /** The relation the row is stored in, as regclass text (schema-qualified when needed). */
  storedIn: string;
  ctid: string;
  values: Row;
}

export function rowFromResult(rel: VerifyRelation, result: Record<string, string | null>): FetchedRow {
  const values: Row = new Map();
  insertableColumns(rel).forEach((c, i) => values.set(c.name, { kind: 'literal', text: result[`c${i}`] ?? null }));
  return { storedIn: result.rlsctl_rel as string, ctid: result.rlsctl_ctid as string, values };
}

/** One row of `rel` owned by `tenant` (as the connecting role: the truth), or undefined. */
export async function fetchOwnedRow(client: pg.ClientBase, catalog: VerifyCatalog, rel: VerifyRelation, tenant: string): Promise<FetchedRow | undefined> {
  const owner = ownerSql(catalog, rel, 'r');
  if (!owner) return undefined;
  const { rows } = await client.query(selectRowSql(rel, rel.sql, 'r', `${owner.sql} = ${tenantLiteral(tenant, owner.type)}`));
  return rows[0] ? rowFromResult(rel, rows[0]) : undefined;
}

/** The INSERT of `row`; a value `reveal` hides is shown as `$n::type` (a statement for a finding, never run). */
export function insertSql(rel: VerifyRelation, row: Row, reveal: Reveal = () => true): string {
  const names: string[] = [];
  const values: string[] = [];
  for (const column of insertableColumns(rel)) {
    const cell = row.get(column.name);
    if (!cell || cell.kind === 'default') continue;
    names.push(quoteIdent(column.name));
    values.push(reveal(column.name) ? columnLiteral(rel, column.name, cell.text) : placeholder(values.length + 1, column.type));
  }
  if (names.length === 0) return `INSERT INTO ${rel.sql} DEFAULT VALUES`;
  return `INSERT INTO ${rel.sql} (${names.join(', ')}) VALUES (${values.join(', ')})`;
}

/** A literal for one column of `rel` (`$n::type` when `reveal` hides it). */
export function columnLiteral(rel: VerifyRelation, column: string, text: string | null, reveal: Reveal = () => true, n = 1): string {
  const type = rel.columns.find((c) => c.name === column)?.type;
  if (!reveal(column)) return placeholder(n, type);
  if (text === null) return 'NULL';
  return type ? `${quoteLiteral(text)}::${type}` : quoteLiteral(text);
}

/** Types whose made-up value differs with `n` (an enum label, a boolean, `{}` do not). */
function freshCapable(column: VerifyColumn): boolean {
  return column.category !== 'E' && column.category !== 'A' && column.category !== 'B' && syntheticValue(column, 1) !== syntheticValue(column, 2);
}

/**
 * Give every unique index a fresh value in one column that is not pinned
 * (tenant, foreign-key and partition-key columns keep theirs): a column
 * whose default draws from a sequence (or an identity) goes back to its
 * default, another gets a synthetic value, preferring a type whose values
 * do not repeat (a timestamp, a number, text, a uuid over an enum or a
 * boolean). A default such as now() or current_date is the same for every
 * row of the transaction, so it is not fresh. Without this a copied row
 * would collide with its template on the primary key, and a write the
 * policies admitted would look refused. `avoidCollisions` then checks the
 * values against the rows the table holds.
 */
export function freshenUniques(rel: VerifyRelation, row: Row, pinned: Set<string>, counter: ValueCounter): void {
  const insertable = new Set(insertableColumns(rel).map((c) => c.name));
  const done = new Set<string>();
  for (const key of rel.uniqueKeys) {
    if (key.some((c) => done.has(c) || (!insertable.has(c) && !pinned.has(c)))) continue; // already fresh, or filled by the database
    const free = key.filter((c) => !pinned.has(c)).map((c) => rel.columns.find((col) => col.name === c)!);
    if (free.length === 0) continue;
    const withDefault = free.find((c) => c.freshDefault);
    if (withDefault) {
      row.set(withDefault.name, { kind: 'default' });
      done.add(withDefault.name);
      continue;
    }
    for (const column of [...free.filter(freshCapable), ...free.filter((c) => !freshCapable(c))]) {
      const value = syntheticValue(column, counter.next());
      if (value !== undefined) {
        row.set(column.name, { kind: 'literal', text: value });
        done.add(column.name);
        break;
      }
    }
  }
}

/** The partition key values a row of `rel` needs, from its bound and its ancestors' (undefined: cannot tell). */
export function partitionValues(catalog: VerifyCatalog, rel: VerifyRelation): { values: Map<string, string | null> } | { error: string } {
  const values = new Map<string, string | null>();
  let current: VerifyRelation | undefined = rel;
  while (current?.parentOid !== undefined && current.bound) {
    const parent = catalog.byOid.get(current.parentOid);
    if (!parent) break;
    const bound = parsePartitionBound(current.bound);
    const key = parent.partitionKey;
    if (key === null) return { error: `the partition key of ${parent.schema}.${parent.name} is an expression` };
    if (!bound || !key) return { error: `cannot read the partition bound of ${current.schema}.${current.name}` };
    if (bound.kind === 'default' || bound.kind === 'hash') {
      return {
        error: `${current.schema}.${current.name} is a ${bound.kind === 'default' ? 'default' : 'hash'} partition: verify cannot choose a key value it accepts`,
      };
    }
    if (bound.kind === 'list') {
      const first = bound.values[0];
      if (!first || first.kind === 'minvalue' || first.kind === 'maxvalue') return { error: `cannot read the list bound of ${current.schema}.${current.name}` };
      if (!values.has(key[0])) values.set(key[0], first.kind === 'null' ? null : first.text);
    } else {
      for (let i = 0; i < key.length; i++) {
        const from = bound.from[i];
        if (values.has(key[i])) continue;
        if (from?.kind === 'value') values.set(key[i], from.text);
        else if (from?.kind === 'minvalue' && bound.to[i]?.kind === 'value' && /^-?\d+$/.test((bound.to[i] as { text: string }).text)) {
          values.set(key[i], String(BigInt((bound.to[i] as { text: string }).text) - 1n));
        } else if (from?.kind === 'minvalue' && i > 0) {
          break; // (a, MINVALUE): any value of the later columns fits once the earlier ones are set
        } else {
          return { error: `the range bound of ${current.schema}.${current.name} starts at MINVALUE: verify cannot choose a key value it accepts` };
        }
      }
    }
    current = parent;
  }
  return { values };
}

/** Runs a query as the connecting role (it sees every row). */
export type RowQuery = (sql: string) => Promise<Array<Record<string, string | null>>>;

/**
 * Make sure `row` collides with no row the table holds (the rows written
 * earlier in the transaction included) on any unique key: where it would, a
 * free column of that key (not pinned, not left to its default) gets a
 * value the column does not hold yet, learnt from its rows: max + 1 (or
 * min - 1) for numbers within their precision, the latest date or timestamp
 * plus a day, an enum label or boolean no row uses, or another synthetic
 * value. Returns why no such value exists, or undefined when the row fits.
 */
export async function avoidCollisions(query: RowQuery, rel: VerifyRelation, row: Row, pinned: Set<string>, counter: ValueCounter): Promise<string | undefined> {
  for (const key of rel.uniqueKeys) {
    const cells = key.map((c) => row.get(c));
    // A NULL never collides; a value the database fills (a default) is fresh or was made so by freshenUniques.
    if (cells.some((cell) => !cell || cell.kind === 'default' || cell.text === null)) continue;
    if (!(await collides(query, rel, key, row))) continue;
    let fixed = false;
    for (const name of key.filter((c) => !pinned.has(c))) {
      const column = rel.columns.find((c) => c.name === name);
      if (!column) continue;
      const value = await unusedValue(query, rel, column, counter);
      if (value === undefined) continue;
      const previous = row.get(name);
      row.set(name, { kind: 'literal', text: value });
      if (!(await collides(query, rel, key, row))) {
        fixed = true;
        break;
      }
      row.set(name, previous!);
    }
    if (!fixed)
      return `its unique key (${key.join(', ')}) would repeat a row it holds, and verify found no unused value for ${key.filter((c) => !pinned.has(c)).join(', ') || 'its columns (all of them are pinned: tenant, foreign key, partition key)'}`;
  }
  return undefined;
}

async function collides(query: RowQuery, rel: VerifyRelation, key: string[], row: Row): Promise<boolean> {
  const where = key.map((c) => {
    const cell = row.get(c) as { kind: 'literal'; text: string };
    return `r.${quoteIdent(c)} = ${columnLiteral(rel, c, cell.text)}`;
  });
  const rows = await query(`SELECT EXISTS (SELECT 1 FROM ${rel.sql} AS r WHERE ${where.join(' AND ')})::text AS hit`);
  return rows[0]?.hit === 'true';
}

/** A value of `column` no row of `rel` holds, learnt from its rows; undefined when there is none verify can find. */
async function unusedValue(query: RowQuery, rel: VerifyRelation, column: VerifyColumn, counter: ValueCounter): Promise<string | undefined> {
  const c = `r.${quoteIdent(column.name)}`;
  const t = column.baseType;
  const unused = async (candidates: string): Promise<string | undefined> => {
    const rows = await query(`SELECT v::text AS v FROM ${candidates} WHERE NOT EXISTS (SELECT 1 FROM ${rel.sql} AS r WHERE ${c} = x.v) ORDER BY 1 LIMIT 1`);
    return rows[0]?.v ?? undefined;
  };
  if (column.check?.allowed) {
    if (column.check.allowed.length === 0) return undefined;
    return unused(`(VALUES ${column.check.allowed.map((v) => `(${quoteLiteral(v)}::${column.type})`).join(', ')}) AS x(v)`);
  }
  if (column.category === 'E') return unused(`unnest(pg_catalog.enum_range(NULL::${column.type})) AS x(v)`);
  if (t === 'bool') return unused(`(VALUES (false), (true)) AS x(v)`);
  if (['int2', 'int4', 'int8', 'numeric'].includes(t)) {
    const rows = await query(`SELECT pg_catalog.max(${c})::text AS hi, pg_catalog.min(${c})::text AS lo FROM ${rel.sql} AS r`);
    const limit =
      t === 'int2'
        ? 32767n
        : t === 'int4'
          ? 2147483647n
          : t === 'int8'
            ? 9223372036854775807n
            : column.integerDigits !== null
              ? 10n ** BigInt(Math.max(column.integerDigits, 0)) - 1n
              : undefined;
    // The type's range, narrowed by the column's CHECK constraints.
    const range = integerRange(column.check);
    const top = range.hi !== undefined ? (limit === undefined || BigInt(range.hi) < limit ? BigInt(range.hi) : limit) : limit;
    const bottom =
      range.lo !== undefined ? (limit === undefined || BigInt(range.lo) > -limit ? BigInt(range.lo) : -limit) : limit === undefined ? undefined : -limit;
    const whole = (text: string | null | undefined) => (text == null ? undefined : BigInt(text.split('.')[0]));
    const hi = whole(rows[0]?.hi);
    const lo = whole(rows[0]?.lo);
    if (hi === undefined) return syntheticValue(column, counter.next());
    if (top === undefined || hi + 1n <= top) return String(hi + 1n);
    if (lo !== undefined && (bottom === undefined || lo - 1n >= bottom)) return String(lo - 1n);
    // Every value at both ends is taken: the first gap, if any (a small range only: numeric(2, 0), not bigint).
    if (bottom === undefined || top - bottom > 200_000n) return undefined;
    return unused(`pg_catalog.generate_series(${bottom}::numeric, ${top}::numeric) AS x(v)`);
  }
  if (t === 'date' || t === 'timestamp' || t === 'timestamptz') {
    const rows = await query(`SELECT (pg_catalog.max(${c}) + interval '1 day')::${column.type}::text AS v FROM ${rel.sql} AS r`);
    return rows[0]?.v ?? syntheticValue(column, counter.next());
  }
  for (let i = 0; i < 5; i++) {
    const value = syntheticValue(column, counter.next());
    if (value === undefined) return undefined;
    const rows = await query(`SELECT EXISTS (SELECT 1 FROM ${rel.sql} AS r WHERE ${c} = ${columnLiteral(rel, column.name, value)})::text AS hit`);
    if (rows[0]?.hit !== 'true') return value;
  }
  return undefined;
}
