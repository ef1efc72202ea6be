import { parseSync } from 'libpg-query';

/**
 * What the CHECK constraints of a table say about the values of one column,
 * in the simple shapes verify can use to make up a value that passes them:
 * `col IN (...)` / `col = ANY (ARRAY[...])`, `col > n` (and <, >=, <=, =),
 * `col BETWEEN a AND b`, `char_length(col) <= n`, joined by AND. The
 * constraint is read from `pg_get_constraintdef` and parsed with libpg-query
 * (the caller loads the parser: policy/expression.ts loadParser); a shape it
 * does not know is ignored, and a row that still fails the constraint is
 * reported as not written, with the reason (seed-tenants.ts).
 */
export interface ColumnCheck {
  /** The values the column may take (the intersection of every list). */
  allowed?: string[];
  /** The smallest value allowed (after `>` or `>=`). */
  min?: { value: number; inclusive: boolean };
  /** The largest value allowed (after `<` or `<=`). */
  max?: { value: number; inclusive: boolean };
  /** char_length(col) <= n. */
  maxLength?: number;
}

type Node = Record<string, unknown>;

/** Rules per column from the `pg_get_constraintdef` texts of a table's CHECK constraints. */
export function checksByColumn(definitions: string[]): Map<string, ColumnCheck> {
  const out = new Map<string, ColumnCheck>();
  for (const def of definitions) {
    let expr: unknown;
    try {
      const tree = parseSync(`ALTER TABLE t ADD CONSTRAINT c ${def}`) as { stmts: Array<{ stmt: Node }> };
      const cmd = ((tree.stmts[0].stmt.AlterTableStmt as Node).cmds as Node[])[0].AlterTableCmd as Node;
      expr = ((cmd.def as Node).Constraint as Node).raw_expr;
    } catch {
      continue; // not a shape verify reads: the row may still pass it
    }
    collect(expr, out);
  }
  return out;
}

function rule(out: Map<string, ColumnCheck>, column: string): ColumnCheck {
  let r = out.get(column);
  if (!r) {
    r = {};
    out.set(column, r);
  }
  return r;
}

function collect(node: unknown, out: Map<string, ColumnCheck>): void {
  if (!node || typeof node !== 'object') return;
  const n = node as Node;
  if (n.BoolExpr) {
    const b = n.BoolExpr as Node;
    if (b.boolop === 'AND_EXPR') for (const arg of (b.args as unknown[]) ?? []) collect(arg, out);
    return;
  }
  if (!n.A_Expr) return;
  const e = n.A_Expr as Node;
  const op = (((e.name as Node[] | undefined)?.[0]?.String as Node | undefined)?.sval as string | undefined) ?? '';
  if ((e.kind === 'AEXPR_OP_ANY' && op === '=') || (e.kind === 'AEXPR_IN' && op === '=')) {
    const column = columnOf(e.lexpr);
    const values = listOf(e.rexpr);
    if (column && values) {
      const r = rule(out, column);
      r.allowed = r.allowed ? r.allowed.filter((v) => values.includes(v)) : values;
    }
    return;
  }
  if (e.kind === 'AEXPR_BETWEEN') {
    const column = columnOf(e.lexpr);
    const bounds = Array.isArray(e.rexpr) ? (e.rexpr as unknown[]).map(constOf) : undefined;
    if (column && bounds && bounds.length === 2) {
      bound(out, column, '>=', bounds[0]);
      bound(out, column, '<=', bounds[1]);
    }
    return;
  }
  if (e.kind !== 'AEXPR_OP' || !['<', '<=', '>', '>=', '='].includes(op)) return;
  const flip: Record<string, string> = { '<': '>', '<=': '>=', '>': '<', '>=': '<=', '=': '=' };
  const length = lengthOf(e.lexpr);
  if (length && (op === '<=' || op === '<')) {
    const limit = Number(constOf(e.rexpr));
    if (Number.isInteger(limit)) {
      const r = rule(out, length);
      const max = op === '<' ? limit - 1 : limit;
      r.maxLength = Math.min(r.maxLength ?? max, max);
    }
    return;
  }
  const left = columnOf(e.lexpr);
  const right = columnOf(e.rexpr);
  if (left && !right) bound(out, left, op, constOf(e.rexpr));
  else if (right && !left) bound(out, right, flip[op], constOf(e.lexpr));
}

function bound(out: Map<string, ColumnCheck>, column: string, op: string, text: string | undefined): void {
  if (text === undefined) return;
  const value = Number(text);
  const r = rule(out, column);
  if (op === '=') {
    r.allowed = r.allowed ? r.allowed.filter((v) => v === text) : [text];
    return;
  }
  if (!Number.isFinite(value)) return;
  const inclusive = op === '<=' || op === '>=';
  if (op === '>' || op === '>=') {
    if (!r.min || value > r.min.value || (value === r.min.value && !inclusive)) r.min = { value, inclusive };
  } else if (!r.max || value < r.max.value || (value === r.max.value && !inclusive)) r.max = { value, inclusive };
}

function unwrap(node: unknown): Node | undefined {
  let n = node as Node | undefined;
  while (n && n.TypeCast) n = (n.TypeCast as Node).arg as Node;
  return n;
}

function columnOf(node: unknown): string | undefined {
  const n = unwrap(node);
  const fields = (n?.ColumnRef as Node | undefined)?.fields as Node[] | undefined;
  const last = fields?.[fields.length - 1]?.String as Node | undefined;
  return last?.sval as string | undefined;
}

function lengthOf(node: unknown): string | undefined {
  const call = unwrap(node)?.FuncCall as Node | undefined;
  if (!call) return undefined;
  const names = (call.funcname as Node[]).map((x) => (x.String as Node).sval as string);
  if (!['char_length', 'character_length', 'length'].includes(names[names.length - 1])) return undefined;
  const args = call.args as unknown[] | undefined;
  return args?.length === 1 ? columnOf(args[0]) : undefined;
}

/** A constant's text (`'-5'::integer`, `5`, `1.5`, `(- 5)`), or undefined. */
function constOf(node: unknown): string | undefined {
  const n = unwrap(node);
  if (!n) return undefined;
  if (n.A_Const) {
    const c = n.A_Const as Node;
    if (c.isnull) return undefined;
    if (c.sval) return (c.sval as Node).sval as string;
    if (c.ival) return String(((c.ival as Node).ival as number | undefined) ?? 0);
    if (c.fval) return (c.fval as Node).fval as string;
    if (c.boolval) return ((c.boolval as Node).boolval as boolean | undefined) ? 'true' : 'false';
    return undefined;
  }
  if (n.A_Expr) {
    const e = n.A_Expr as Node;
    const op = ((e.name as Node[])[0].String as Node).sval;
    const inner = e.lexpr === undefined && op === '-' ? constOf(e.rexpr) : undefined;
    if (inner !== undefined && Number.isFinite(Number(inner))) return String(-Number(inner));
  }
  return undefined;
}

function listOf(node: unknown): string[] | undefined {
  if (Array.isArray(node)) {
    const values = node.map(constOf);
    return values.every((v): v is string => v !== undefined) ? values : undefined;
  }
  const array = unwrap(node)?.A_ArrayExpr as Node | undefined;
  if (!array) return undefined;
  const values = ((array.elements as unknown[]) ?? []).map(constOf);
  return values.every((v): v is string => v !== undefined) ? values : undefined;
}

/** Integer bounds (inclusive) of a column's CHECK, where it has them. */
export function integerRange(check: ColumnCheck | undefined): { lo?: number; hi?: number } {
  if (!check) return {};
  const lo = check.min ? (check.min.inclusive ? Math.ceil(check.min.value) : Math.floor(check.min.value) + 1) : undefined;
  const hi = check.max ? (check.max.inclusive ? Math.floor(check.max.value) : Math.ceil(check.max.value) - 1) : undefined;
  return { lo, hi };
}

/** The names of the functions an expression calls (a column default, from pg_get_expr), parsed with libpg-query. */
export function functionNames(expression: string): string[] {
  let tree: unknown;
  try {
    tree = parseSync(`SELECT (\n${expression}\n)`);
  } catch {
    return [];
  }
  const names: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (!node || typeof node !== 'object') return;
    const call = (node as Node).FuncCall as Node | undefined;
    if (call) {
      const parts = (call.funcname as Node[]).map((x) => (x.String as Node).sval as string);
      names.push(parts[parts.length - 1]);
    }
    Object.values(node as Node).forEach(walk);
  };
  walk(tree);
  return names;
}
