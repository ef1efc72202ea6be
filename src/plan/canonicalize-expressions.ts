import type pg from 'pg';
import { parseSync } from 'libpg-query';
import type { CatalogColumn } from '../catalog/catalog-model.js';
import { withCatalogSearchPath } from '../catalog/with-catalog-search-path.js';
import { readTemporaryPolicies } from '../catalog/read-catalog.js';
import { quoteIdent } from '../compile/quote.js';
import { embedExpression, loadParser } from '../policy/expression.js';

/**
 * Policy expressions are compared as the server understands them, not as
 * text: the catalog holds pg_get_expr()'s normalised form (explicit casts,
 * parentheses, `AS "nullif"`), the policy file the form it was written in. A
 * text comparison would report drift on every run.
 *
 * So each compiled expression is round-tripped through the server: inside a
 * transaction (or a savepoint) that is always rolled back, a TEMPORARY table
 * with the relation's name and the columns the expression mentions (same
 * types and collations) gets a policy with the expression, and pg_get_expr()
 * reads it back under the same search_path the catalog was read with. Nothing
 * touches the real table: no lock on it, not even a row in pg_policy. A `via`
 * predicate names its own relation (`task_comments.task_id`): the temporary
 * table has the same name, so the qualified reference survives the trip.
 *
 * The canonical form depends only on the expression text, the relation name
 * when the expression names it, and the types of the columns it mentions: the
 * requests are keyed on that, so 1,000 tenant tables with the same tenant
 * column need one round trip, and all distinct keys go in one batch.
 *
 * When the server cannot make temporary tables (a read-only standby, a role
 * without TEMPORARY), or cannot round-trip one expression (it names a
 * function that is gone, or a `via` parent another session holds locked past
 * lock_timeout), the comparison falls back to the parse trees of both texts
 * with the differences pg_get_expr introduces removed.
 */

export interface CanonicalRequest {
  expression: string;
  /** The relation the policy is on (its bare name). */
  relation: string;
  /** The relation's columns (from the catalog). */
  columns: CatalogColumn[];
}

export interface Canonicalizer {
  /** The key under which `canonical()` answers for a request. */
  keyOf(request: CanonicalRequest): string;
  /** Round-trip every distinct request; `inTransaction` when the client is inside a transaction already. */
  resolve(client: pg.ClientBase, requests: CanonicalRequest[], options: { inTransaction: boolean; lockTimeoutMs?: number }): Promise<void>;
  /** The server's form of a request's expression; undefined when the server refused it. */
  canonical(request: CanonicalRequest): string | undefined;
  /** True when the last resolve had to fall back to comparing parse trees. */
  usedFallback: boolean;
  /** Compare a catalog expression with a requested one. */
  same(catalogText: string | undefined, request: CanonicalRequest | undefined): boolean;
}

interface Prepared {
  key: string;
  expression: string;
  /** The temporary table's name: the relation's own when the expression names it. */
  table: string;
  columns: CatalogColumn[];
}

export function createCanonicalizer(): Canonicalizer {
  const results = new Map<string, string | undefined>();
  const prepared = new Map<string, Prepared>();
  let fallback = false;

  function prepare(request: CanonicalRequest): Prepared {
    const { names, subselectWithFrom } = analyseExpression(request.expression);
    const columns = request.columns.filter((c) => names.has(c.name));
    // pg_get_expr qualifies a column of the policy's relation with the
    // relation's name inside a sub-select that reads other tables, even when
    // the text did not: then the temporary table needs the real name too.
    const named = names.has(request.relation) || subselectWithFrom;
    const key = JSON.stringify([request.expression, named ? request.relation : null, columns.map((c) => [c.name, c.type, c.collation ?? null])]);
    return { key, expression: request.expression, table: named ? request.relation : '', columns };
  }

  const api: Canonicalizer = {
    get usedFallback() {
      return fallback;
    },
    keyOf(request) {
      return prepare(request).key;
    },
    async resolve(client, requests, options) {
      await loadParser();
      for (const request of requests) {
        const p = prepare(request);
        if (!results.has(p.key)) prepared.set(p.key, p);
      }
      const pending = [...prepared.values()].filter((p) => !results.has(p.key));
      if (pending.length === 0) return;
      try {
        await roundTrip(client, pending, options, results);
      } catch (error) {
        if (isNoTempTables(error)) {
          fallback = true;
          for (const p of pending) results.set(p.key, undefined);
          return;
        }
        // One expression the server refuses (a function that does not exist,
        // a column that is gone) must not hide the others: one at a time.
        for (const p of pending) {
          try {
            await roundTrip(client, [p], options, results);
          } catch {
            results.set(p.key, undefined);
          }
        }
      }
    },
    canonical(request) {
      return results.get(prepare(request).key);
    },
    same(catalogText, request) {
      if (catalogText === undefined || request === undefined) return catalogText === undefined && request === undefined;
      const canonical = api.canonical(request);
      if (canonical !== undefined) return canonical === catalogText;
      // The server could not round-trip it (no temporary tables here, or the
      // expression names something the server refuses or could not lock in
      // time): compare parse trees instead, which errs towards "differs".
      const a = looseForm(catalogText);
      return a !== undefined && a === looseForm(request.expression);
    },
  };
  return api;
}

/**
 * Tables are grouped in rounds so that no two temporary tables of a round
 * share a name: two relations of the same name in different schemas, with
 * different column types, go in different rounds. Expressions that need no
 * particular relation name share one table per column signature.
 */
async function roundTrip(
  client: pg.ClientBase,
  pending: Prepared[],
  options: { inTransaction: boolean; lockTimeoutMs?: number },
  results: Map<string, string | undefined>,
): Promise<void> {
  const rounds: Array<Map<string, { signature: string; items: Prepared[] }>> = [];
  const anonymous = new Map<string, string>();
  for (const p of pending) {
    const signature = JSON.stringify(p.columns);
    let name = p.table;
    if (!name) {
      name = anonymous.get(signature) ?? `rlsctl_canonical_${anonymous.size}`;
      anonymous.set(signature, name);
    }
    let round = rounds.find((r) => r.get(name)?.signature === signature) ?? rounds.find((r) => !r.has(name));
    if (!round) {
      round = new Map();
      rounds.push(round);
    }
    const group = round.get(name) ?? { signature, items: [] };
    group.items.push(p);
    round.set(name, group);
  }
  for (const round of rounds) {
    const statements: string[] = [];
    const policyOf = new Map<string, Prepared>();
    let n = 0;
    for (const [table, { items: group }] of round) {
      const columns = group[0].columns.map((c) => `${quoteIdent(c.name)} ${c.type}${c.collation ? ` COLLATE ${c.collation}` : ''}`);
      statements.push(`CREATE TEMPORARY TABLE ${quoteIdent(table)} (${columns.join(', ')})`);
      for (const p of group) {
        const policy = `rlsctl_c${n++}`;
        policyOf.set(`${table}\u0000${policy}`, p);
        statements.push(`CREATE POLICY ${policy} ON pg_temp.${quoteIdent(table)} USING ${embedExpression(p.expression)}`);
      }
    }
    const begin = options.inTransaction ? 'SAVEPOINT rlsctl_canonical' : 'BEGIN';
    const end = options.inTransaction ? 'ROLLBACK TO SAVEPOINT rlsctl_canonical; RELEASE SAVEPOINT rlsctl_canonical' : 'ROLLBACK';
    await client.query(begin);
    try {
      // Reading a parent table named in a `via` predicate takes ACCESS SHARE on
      // it; never wait long behind a migration that holds it exclusively.
      await client.query(`SELECT pg_catalog.set_config('lock_timeout', $1, true)`, [`${options.lockTimeoutMs ?? 5000}ms`]);
      // Created with the session's own search_path, as apply will create the real policy.
      await client.query(statements.join(';\n'));
      const rows = await withCatalogSearchPath(client, (c) => readTemporaryPolicies(c));
      for (const row of rows) {
        const p = policyOf.get(`${row.table}\u0000${row.policy}`);
        if (p) results.set(p.key, row.expr);
      }
    } finally {
      await client.query(end).catch(() => undefined);
    }
  }
}

function isNoTempTables(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  // 25006 read_only_sql_transaction (a standby, default_transaction_read_only); 42501 no TEMPORARY privilege.
  return code === '25006' || (code === '42501' && /temporary|temp/i.test((error as Error).message));
}

/**
 * Every name an expression mentions in a column reference (each part of a
 * qualified one), and whether it holds a sub-select with a FROM clause.
 */
export function analyseExpression(expression: string): { names: Set<string>; subselectWithFrom: boolean } {
  const names = new Set<string>();
  let subselectWithFrom = false;
  let tree: unknown;
  try {
    tree = parseSync(`SELECT (\n${expression}\n)`);
  } catch {
    return { names, subselectWithFrom: true };
  }
  const walk = (node: unknown, depth: number): void => {
    if (Array.isArray(node)) {
      for (const n of node) walk(n, depth);
      return;
    }
    if (!node || typeof node !== 'object') return;
    const record = node as Record<string, unknown>;
    const ref = record.ColumnRef as { fields?: Array<{ String?: { sval: string } }> } | undefined;
    if (ref?.fields) for (const f of ref.fields) if (f.String) names.add(f.String.sval);
    const select = record.SelectStmt as { fromClause?: unknown[] } | undefined;
    // depth 0 is the wrapping SELECT (...) itself.
    if (select && depth > 0 && (select.fromClause?.length ?? 0) > 0) subselectWithFrom = true;
    for (const value of Object.values(record)) walk(value, select ? depth + 1 : depth);
  };
  walk(tree, 0);
  return { names, subselectWithFrom };
}

/**
 * The fallback comparison: the parse tree without positions, without the
 * `::text` pg_get_expr adds to string literals, the `pg_catalog.` the
 * compiler writes before built-in functions, and the column names it gives
 * sub-select outputs.
 */
export function looseForm(expression: string): string | undefined {
  let tree: unknown;
  try {
    tree = (parseSync(`SELECT (\n${expression}\n)`) as { stmts: Array<{ stmt: unknown }> }).stmts[0].stmt;
  } catch {
    return undefined;
  }
  const strip = (node: unknown, inSubselect: boolean): unknown => {
    if (Array.isArray(node)) return node.map((n) => strip(n, inSubselect));
    if (!node || typeof node !== 'object') return node;
    const record = { ...(node as Record<string, unknown>) };
    delete record.location;
    const cast = record.TypeCast as { arg?: Record<string, unknown>; typeName?: { names?: Array<{ String?: { sval: string } }> } } | undefined;
    if (cast?.arg?.A_Const && (cast.arg.A_Const as Record<string, unknown>).sval !== undefined) {
      const type = (cast.typeName?.names ?? []).map((n) => n.String?.sval).filter((s) => s !== 'pg_catalog');
      if (type.length === 1 && (type[0] === 'text' || type[0] === 'varchar')) return strip(cast.arg, inSubselect);
    }
    const call = record.FuncCall as { funcname?: Array<{ String?: { sval: string } }> } | undefined;
    if (call?.funcname && call.funcname.length === 2 && call.funcname[0].String?.sval === 'pg_catalog') {
      record.FuncCall = { ...call, funcname: call.funcname.slice(1) };
    }
    if (inSubselect && record.ResTarget) {
      const target = { ...(record.ResTarget as Record<string, unknown>) };
      delete target.name;
      record.ResTarget = target;
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(record)) out[k] = strip(v, inSubselect || k === 'subselect');
    return out;
  };
  return JSON.stringify(strip(tree, false));
}
