import { parseSync } from 'libpg-query';

/**
 * A policy expression, as `pg_get_expr(polqual, polrelid)` prints it, read
 * with PostgreSQL's own parser (libpg-query) rather than matched as text: the
 * rules that care about its shape (RLS020, RLS021, RLS022, RLS030, RLS032,
 * RLS041, RLS042) ask the questions below of the tree. Each distinct text is
 * parsed once per audit (see `ExpressionAnalyzer`): on a database with
 * thousands of tables the generated policies share a handful of texts.
 *
 * The caller must have awaited `loadParser()` (the parser is WebAssembly).
 */

type Node = Record<string, unknown>;

export interface SettingCall {
  /** The setting name when the first argument is a constant, else undefined. */
  name?: string;
  /** `current_setting(name)` with one argument: errors when the setting was never set. */
  missingOk: boolean;
}

export interface ExpressionFacts {
  /** The text could not be parsed (should not happen for pg_get_expr output). */
  unparsable: boolean;
  /** Every `current_setting(...)` call. */
  settingCalls: SettingCall[];
  /** Setting names read with a one-argument `current_setting` (RLS020). */
  settingsWithoutMissingOk: string[];
  /** Casts of a setting's text to another type with no NULLIF(..., '') between (RLS021): "uuid", "bigint"... */
  castsWithoutNullif: Array<{ setting?: string; type: string }>;
  /** OR branches that hold when the setting is unset or empty (RLS022), as SQL-ish descriptions. */
  failOpenBranches: string[];
  /** The whole expression is always true (RLS030). */
  alwaysTrue: boolean;
  /** Column names referenced outside any sub-query, by their last name part. */
  columns: Set<string>;
  /** Column names referenced anywhere, sub-queries included. */
  columnsAnywhere: Set<string>;
  /** The expression holds a sub-query (EXISTS, IN, scalar): a `via` style predicate. */
  hasSubquery: boolean;
  /** Row-independent function calls that no scalar sub-select wraps (RLS041): function names. */
  perRowCalls: string[];
  /** Columns that appear under a cast or a function call (RLS042), with what wraps them. */
  wrappedColumns: Array<{ column: string; wrapper: string }>;
  /** A JSON path that starts with `user_metadata` (Supabase's user-editable claims, RLS024). */
  readsUserMetadata: boolean;
}

const TEXT_TYPES = new Set(['text', 'varchar', 'bpchar', 'name', 'character varying', 'char']);

function kindOf(node: unknown): [string, Node] | undefined {
  if (!node || typeof node !== 'object' || Array.isArray(node)) return undefined;
  const keys = Object.keys(node as Node);
  if (keys.length !== 1) return undefined;
  return [keys[0], (node as Node)[keys[0]] as Node];
}

function lastName(list: unknown): string {
  const items = (list as Array<{ String?: { sval: string } }> | undefined) ?? [];
  return items.length > 0 ? (items[items.length - 1].String?.sval ?? '') : '';
}

function typeName(typeNameNode: unknown): string {
  const names = ((typeNameNode as Node | undefined)?.names as Array<{ String?: { sval: string } }> | undefined) ?? [];
  return names
    .map((n) => n.String?.sval ?? '')
    .filter((n) => n !== 'pg_catalog')
    .join('.');
}

function children(node: unknown): unknown[] {
  if (!node || typeof node !== 'object') return [];
  if (Array.isArray(node)) return node;
  return Object.values(node as Node).filter((v) => v !== null && typeof v === 'object');
}

/** Strip casts to a text type (the `'app.tenant_id'::text` of pg_get_expr output, `x::text`). */
function stripTextCasts(node: unknown): unknown {
  let current = node;
  for (;;) {
    const k = kindOf(current);
    if (k && k[0] === 'TypeCast' && TEXT_TYPES.has(typeName(k[1].typeName))) current = k[1].arg;
    else return current;
  }
}

function constString(node: unknown): string | undefined {
  const k = kindOf(stripTextCasts(node));
  if (!k || k[0] !== 'A_Const') return undefined;
  const sval = (k[1].sval as { sval?: string } | undefined)?.sval;
  if (sval !== undefined) return sval;
  // An empty string constant prints as '' and parses with sval {} in some versions of the tree.
  if ('sval' in k[1]) return '';
  return undefined;
}

function isSettingCall(node: unknown): boolean {
  const k = kindOf(node);
  return !!k && k[0] === 'FuncCall' && lastName(k[1].funcname) === 'current_setting';
}

/** Does the subtree read a setting (directly, through casts, COALESCE, NULLIF or a scalar sub-select)? */
function readsSetting(node: unknown): boolean {
  if (isSettingCall(node)) return true;
  return children(node).some(readsSetting);
}

function isEmptyString(node: unknown): boolean {
  return constString(node) === '';
}

function isTrueConst(node: unknown): boolean {
  const k = kindOf(node);
  if (!k) return false;
  if (k[0] === 'A_Const') return (k[1].boolval as { boolval?: boolean } | undefined)?.boolval === true;
  if (k[0] === 'TypeCast' && typeName(k[1].typeName) === 'bool') {
    const s = constString(k[1].arg);
    if (s !== undefined) return ['t', 'true', 'y', 'yes', 'on', '1'].includes(s.toLowerCase());
    return isTrueConst(k[1].arg);
  }
  return false;
}

function isConst(node: unknown): boolean {
  const k = kindOf(node);
  if (!k) return false;
  if (k[0] === 'A_Const') return !k[1].isnull;
  if (k[0] === 'TypeCast') return isConst(k[1].arg);
  return false;
}

function stripLocations(node: unknown): string {
  return JSON.stringify(node, (key, value) => (key === 'location' ? undefined : value));
}

/** Always true whatever the row and the session: `true`, `1 = 1`, `true OR ...`. */
export function isAlwaysTrue(node: unknown): boolean {
  if (isTrueConst(node)) return true;
  const k = kindOf(node);
  if (!k) return false;
  if (k[0] === 'BoolExpr') {
    const args = (k[1].args as unknown[]) ?? [];
    if (k[1].boolop === 'OR_EXPR') return args.some(isAlwaysTrue);
    if (k[1].boolop === 'AND_EXPR') return args.length > 0 && args.every(isAlwaysTrue);
    return false;
  }
  if (k[0] === 'A_Expr' && k[1].kind === 'AEXPR_OP' && lastName(k[1].name) === '=') {
    return isConst(k[1].lexpr) && isConst(k[1].rexpr) && stripLocations(k[1].lexpr) === stripLocations(k[1].rexpr);
  }
  if (k[0] === 'NullTest' && k[1].nulltesttype === 'IS_NOT_NULL') return isConst(k[1].arg);
  return false;
}

/**
 * A branch that holds when the tenant setting is unset or empty:
 * `current_setting(...) IS NULL`, `NULLIF(current_setting(...), '') IS NULL`,
 * `current_setting(...) = ''`, `COALESCE(current_setting(...), '') = ''`,
 * `current_setting(...) IS NOT DISTINCT FROM ''`, `length(current_setting(...)) = 0`.
 */
function unsetTest(node: unknown): string | undefined {
  const k = kindOf(node);
  if (!k) return undefined;
  if (k[0] === 'NullTest' && k[1].nulltesttype === 'IS_NULL' && readsSetting(k[1].arg)) return 'the setting IS NULL';
  if (k[0] === 'A_Expr') {
    const op = lastName(k[1].name);
    const l = k[1].lexpr;
    const r = k[1].rexpr;
    const equal = (k[1].kind === 'AEXPR_OP' && op === '=') || k[1].kind === 'AEXPR_NOT_DISTINCT';
    if (equal && ((readsSetting(l) && isEmptyString(r)) || (readsSetting(r) && isEmptyString(l)))) return "the setting = ''";
    if (k[1].kind === 'AEXPR_OP' && op === '=') {
      const isZero = (n: unknown) => {
        const c = kindOf(n);
        return !!c && c[0] === 'A_Const' && (c[1].ival as { ival?: number } | undefined) !== undefined && !(c[1].ival as { ival?: number }).ival;
      };
      const isLength = (n: unknown) => {
        const c = kindOf(n);
        return (
          !!c &&
          c[0] === 'FuncCall' &&
          ['length', 'char_length', 'character_length', 'octet_length'].includes(lastName(c[1].funcname)) &&
          readsSetting(c[1].args)
        );
      };
      if ((isLength(l) && isZero(r)) || (isLength(r) && isZero(l))) return 'length(the setting) = 0';
    }
  }
  return undefined;
}

interface WalkState {
  underScalarSubselect: boolean;
  inSubquery: boolean;
  underCall: boolean;
}

/** Does the subtree reference a column of the row (or any column, in a sub-query)? */
function referencesColumn(node: unknown): boolean {
  const k = kindOf(node);
  if (k && k[0] === 'ColumnRef') return true;
  return children(node).some(referencesColumn);
}

export function analyzeExpression(text: string): ExpressionFacts {
  const facts: ExpressionFacts = {
    unparsable: false,
    settingCalls: [],
    settingsWithoutMissingOk: [],
    castsWithoutNullif: [],
    failOpenBranches: [],
    alwaysTrue: false,
    columns: new Set(),
    columnsAnywhere: new Set(),
    hasSubquery: false,
    perRowCalls: [],
    wrappedColumns: [],
    readsUserMetadata: false,
  };
  let root: unknown;
  try {
    const result = parseSync(`SELECT (\n${text}\n)`) as { stmts?: Array<{ stmt: Node }> };
    const select = result.stmts?.[0]?.stmt.SelectStmt as Node | undefined;
    root = (select?.targetList as Array<{ ResTarget: { val: unknown } }> | undefined)?.[0]?.ResTarget.val;
  } catch {
    root = undefined;
  }
  if (root === undefined) {
    facts.unparsable = true;
    return facts;
  }
  facts.alwaysTrue = isAlwaysTrue(root);

  const walk = (node: unknown, state: WalkState, parent: [string, Node] | undefined): void => {
    if (Array.isArray(node)) {
      for (const item of node) walk(item, state, parent);
      return;
    }
    const k = kindOf(node);
    if (!k) {
      for (const child of children(node)) walk(child, state, parent);
      return;
    }
    const [kind, body] = k;
    if (kind === 'A_Expr' && startsWithUserMetadata(body)) facts.readsUserMetadata = true;
    switch (kind) {
      case 'ColumnRef': {
        const name = lastName(body.fields);
        if (name) {
          facts.columnsAnywhere.add(name);
          if (!state.inSubquery) facts.columns.add(name);
          if (parent && !state.inSubquery) {
            if (parent[0] === 'TypeCast') facts.wrappedColumns.push({ column: name, wrapper: `::${typeName(parent[1].typeName)}` });
            else if (parent[0] === 'FuncCall') facts.wrappedColumns.push({ column: name, wrapper: `${lastName(parent[1].funcname)}()` });
            else if (parent[0] === 'CoalesceExpr') facts.wrappedColumns.push({ column: name, wrapper: 'COALESCE()' });
          }
        }
        return;
      }
      case 'SubLink': {
        facts.hasSubquery = true;
        const scalar = body.subLinkType === 'EXPR_SUBLINK';
        // A sub-select that reads no table and names no column cannot depend on the row: PostgreSQL runs
        // it once per statement whatever its kind (an InitPlan; a hashed SubPlan for IN), as
        // `org_id IN (SELECT private.user_org_ids())` in Supabase's helper pattern.
        const select = kindOf(body.subselect)?.[1];
        const standalone = !!select && !((select.fromClause as unknown[] | undefined)?.length ?? 0) && !referencesColumn(body.subselect);
        walk(body.testexpr, state, undefined);
        walk(body.subselect, { ...state, inSubquery: true, underScalarSubselect: state.underScalarSubselect || scalar || standalone }, undefined);
        return;
      }
      case 'FuncCall': {
        const name = lastName(body.funcname);
        const args = (body.args as unknown[] | undefined) ?? [];
        if (name === 'current_setting') {
          const settingName = args.length > 0 ? constString(args[0]) : undefined;
          const missingOk = args.length >= 2;
          facts.settingCalls.push({ name: settingName, missingOk });
          if (!missingOk) facts.settingsWithoutMissingOk.push(settingName ?? '(a computed name)');
        }
        // A call whose arguments read nothing of the row can be computed once per
        // statement; outside a scalar sub-select the planner evaluates it per row.
        const independent = !referencesColumn(args);
        if (!state.underScalarSubselect && !state.underCall && independent) facts.perRowCalls.push(name);
        walk(args, { ...state, underCall: state.underCall || independent }, k);
        return;
      }
      case 'TypeCast': {
        const target = typeName(body.typeName);
        if (!TEXT_TYPES.has(target)) {
          // Look through COALESCE and text casts: a cast of the setting's text errors on ''.
          let inner = stripTextCasts(body.arg);
          const ik = kindOf(inner);
          if (ik && ik[0] === 'CoalesceExpr') inner = ((ik[1].args as unknown[]) ?? [])[0];
          if (isSettingCall(stripTextCasts(inner))) {
            const call = kindOf(stripTextCasts(inner))![1];
            const args = (call.args as unknown[] | undefined) ?? [];
            facts.castsWithoutNullif.push({ setting: args.length > 0 ? constString(args[0]) : undefined, type: target });
          }
        }
        walk(body.arg, state, k);
        return;
      }
      case 'CoalesceExpr': {
        walk(body.args, state, k);
        return;
      }
      case 'BoolExpr': {
        if (body.boolop === 'OR_EXPR') {
          for (const arg of (body.args as unknown[]) ?? []) {
            const test = unsetTest(arg);
            if (test) facts.failOpenBranches.push(test);
          }
        }
        walk(body.args, state, k);
        return;
      }
      default:
        for (const child of children(body)) walk(child, state, k);
    }
  };
  walk(root, { underScalarSubselect: false, inSubquery: false, underCall: false }, undefined);
  return facts;
}

const JSON_OPERATORS = new Set(['->', '->>', '#>', '#>>']);

/** `x -> 'user_metadata'`, `x #>> ARRAY['user_metadata', ...]`, `x #>> '{user_metadata,...}'`. */
function startsWithUserMetadata(expr: Node): boolean {
  if (expr.kind !== 'AEXPR_OP' || !JSON_OPERATORS.has(lastName(expr.name))) return false;
  const key = constString(expr.rexpr);
  if (key !== undefined) return key === 'user_metadata' || /^\{\s*"?user_metadata"?\s*(,|\})/.test(key);
  const array = kindOf(stripTextCasts(expr.rexpr));
  const arrayNode = array && array[0] === 'TypeCast' ? kindOf(array[1].arg) : array;
  if (arrayNode && arrayNode[0] === 'A_ArrayExpr') return constString(((arrayNode[1].elements as unknown[]) ?? [])[0]) === 'user_metadata';
  return false;
}

/** Parses each distinct expression text once. */
export class ExpressionAnalyzer {
  private readonly cache = new Map<string, ExpressionFacts>();
  parsed = 0;
  analyze(text: string): ExpressionFacts {
    let facts = this.cache.get(text);
    if (!facts) {
      facts = analyzeExpression(text);
      this.cache.set(text, facts);
      this.parsed++;
    }
    return facts;
  }
}
