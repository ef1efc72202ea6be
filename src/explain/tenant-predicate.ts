import { parseSync } from 'libpg-query';

/**
 * The shape of a tenant predicate, from an EXPLAIN VERBOSE filter or a
 * policy expression (pg_get_expr), read with the PostgreSQL parser:
 *
 * - `sargable`: `col = value` where the value is a parameter, a constant or
 *   a scalar sub-select (an InitPlan): an index on `col` can serve it, and
 *   the value is computed once;
 * - `or`: the comparison sits under an OR (or a NOT), like the fail-open
 *   `col = x OR current_setting(...) = ''`: no index condition can come of it;
 * - `per-row-function`: the value calls a function outside a sub-select; a
 *   volatile one cannot be an index condition, and in a filter any function
 *   runs for every row read;
 * - `subplan`: the value is a SubPlan that runs per row (a correlated
 *   sub-query);
 * - `wrapped-column`: the column itself is cast or passed to a function, so
 *   no index on the column can serve it;
 * - `absent`: no comparison of the column at all.
 */
export type PredicateShape = 'sargable' | 'or' | 'per-row-function' | 'subplan' | 'wrapped-column' | 'absent';

export interface PredicateAnalysis {
  shape: PredicateShape;
  /** Deparsed text of the first offending function or sub-plan, for messages. */
  culprit?: string;
  /** The expression holds a sub-query (policy text) or a SubPlan (plan text). */
  hasSubquery: boolean;
  /** The text could not be read (an EXPLAIN notation the parser does not know). */
  unparsed?: boolean;
}

type Node = Record<string, unknown>;

/** EXPLAIN notations that are not SQL, rewritten so that the parser reads the rest. */
export function planTextToSql(text: string): string {
  return text
    .replace(/EXISTS\(SubPlan \d+\)/g, 'rlsctl_subplan()')
    .replace(/\(InitPlan \d+\)\.col\d+/g, '$0')
    .replace(/\(hashed SubPlan \d+\)(?:\.col\d+)?/g, 'rlsctl_hashed_subplan()')
    .replace(/\(SubPlan \d+\)(?:\.col\d+)?/g, 'rlsctl_subplan()')
    .replace(/(^|\()ANY \(/g, '$1rlsctl_any(')
    .replace(/(^|\()ALL \(/g, '$1rlsctl_all(');
}

function parseExpression(text: string): Node | undefined {
  try {
    const parsed = parseSync(`SELECT (\n${text}\n)`) as { stmts?: Array<{ stmt: { SelectStmt?: { targetList?: Array<{ ResTarget: { val: Node } }> } } }> };
    return parsed.stmts?.[0]?.stmt.SelectStmt?.targetList?.[0]?.ResTarget.val;
  } catch {
    return undefined;
  }
}

function fieldsOf(node: unknown): string[] | undefined {
  const ref = (node as { ColumnRef?: { fields?: Array<{ String?: { sval: string } }> } })?.ColumnRef;
  if (!ref?.fields) return undefined;
  return ref.fields.map((f) => f.String?.sval ?? '*');
}

function funcName(node: Node): string {
  const names = ((node.FuncCall as { funcname?: Array<{ String?: { sval: string } }> }).funcname ?? []).map((n) => n.String?.sval ?? '');
  return names.join('.');
}

/** Functions, sub-plans and sub-queries in a value, not descending into sub-selects (they run once). */
function scanValue(node: unknown, found: { func?: string; subplan?: boolean; sublink?: boolean; columnOf: (f: string[]) => boolean; column?: boolean }): void {
  if (Array.isArray(node)) {
    for (const n of node) scanValue(n, found);
    return;
  }
  if (!node || typeof node !== 'object') return;
  const obj = node as Node;
  if (obj.SubLink) {
    found.sublink = true;
    return;
  }
  if (obj.FuncCall) {
    const name = funcName(obj);
    if (name === 'rlsctl_subplan') found.subplan = true;
    else if (name !== 'rlsctl_hashed_subplan' && name !== 'rlsctl_any' && name !== 'rlsctl_all') found.func ??= `${name}()`;
  }
  const fields = fieldsOf(obj);
  if (fields && found.columnOf(fields)) found.column = true;
  for (const value of Object.values(obj)) scanValue(value, found);
}

/**
 * Analyse the comparisons of `column` in `text`. `alias` is the relation's
 * alias in plan text (columns are qualified there); for a policy expression
 * pass the table name, and unqualified columns match too.
 */
export function analyzeTenantPredicate(text: string | undefined, columns: string[], alias: string, options: { planText?: boolean } = {}): PredicateAnalysis {
  if (!text) return { shape: 'absent', hasSubquery: false };
  const sql = options.planText ? planTextToSql(text) : text;
  const tree = parseExpression(sql);
  const hasSubquery = options.planText ? /SubPlan \d+/.test(text) : /\bSELECT\b/i.test(text);
  if (!tree) return { shape: 'absent', hasSubquery, unparsed: true };
  const isTenant = (f: string[] | undefined): boolean =>
    f !== undefined && columns.includes(f[f.length - 1]) && (f.length === 1 ? !options.planText : f[f.length - 2] === alias);
  const results: Array<{ shape: PredicateShape; culprit?: string }> = [];
  const wrapsTenant = (node: unknown): boolean => {
    if (!node || typeof node !== 'object') return false;
    const obj = node as Node;
    if (obj.SubLink) return false;
    if (isTenant(fieldsOf(obj))) return true;
    return Object.values(obj).some((v) => (Array.isArray(v) ? v.some(wrapsTenant) : wrapsTenant(v)));
  };
  const visit = (node: unknown, underOr: boolean): void => {
    if (Array.isArray(node)) {
      for (const n of node) visit(n, underOr);
      return;
    }
    if (!node || typeof node !== 'object') return;
    const obj = node as Node;
    if (obj.SubLink) return; // a sub-select's own comparisons are about other rows
    const bool = obj.BoolExpr as { boolop?: string; args?: unknown[] } | undefined;
    if (bool) {
      for (const a of bool.args ?? []) visit(a, underOr || bool.boolop !== 'AND_EXPR');
      return;
    }
    const expr = obj.A_Expr as { kind?: string; name?: Array<{ String?: { sval: string } }>; lexpr?: unknown; rexpr?: unknown } | undefined;
    if (expr && (expr.kind === 'AEXPR_OP' || expr.kind === 'AEXPR_OP_ANY' || expr.kind === 'AEXPR_IN') && expr.name?.[0]?.String?.sval === '=') {
      const leftIs = isTenant(fieldsOf(expr.lexpr));
      const rightIs = isTenant(fieldsOf(expr.rexpr));
      if (leftIs || rightIs) {
        const value = leftIs ? expr.rexpr : expr.lexpr;
        const found: Parameters<typeof scanValue>[1] = { columnOf: (f) => f.length === 1 || f[f.length - 2] === alias };
        scanValue(value, found);
        // `t.org_id = p.org_id` (a join) or `org_id = org_id` compares rows, not the tenant.
        if (!fieldsOf(value) || !found.column) {
          if (underOr) results.push({ shape: 'or' });
          else if (found.subplan) results.push({ shape: 'subplan', culprit: 'a SubPlan' });
          else if (found.func) results.push({ shape: 'per-row-function', culprit: found.func });
          else results.push({ shape: 'sargable' });
        }
        return;
      }
      if (wrapsTenant(expr.lexpr) || wrapsTenant(expr.rexpr)) {
        results.push({ shape: underOr ? 'or' : 'wrapped-column' });
        return;
      }
    }
    for (const value of Object.values(obj)) visit(value, underOr);
  };
  visit(tree, false);
  const sargable = results.find((r) => r.shape === 'sargable');
  const first = sargable ?? results[0];
  return { shape: first?.shape ?? 'absent', culprit: first?.culprit, hasSubquery };
}
