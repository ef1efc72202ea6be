import { parseSync } from 'libpg-query';

/**
 * A policy expression, as `pg_get_expr(polqual, polrelid)` prints it, read
 * with PostgreSQL's own parser (libpg-query) rather than matched as text: the
 * rules that care about its shape (RLS020, RLS021, RLS022, RLS024, RLS030,
 * RLS032, RLS034, RLS035, RLS041, RLS042) ask the questions below of the
 * tree, among them where the tenant comes from (its tenant sources). Each distinct text is
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
  /**
   * Column references inside a sub-query whose qualifier names no relation of
   * that sub-query: a correlated reference to the policy's row, as pg_get_expr
   * prints it (`items.org_id`), by qualifier.
   */
  outerColumns: Map<string, Set<string>>;
  /** Where the expression takes its tenant or user from (src/audit/tenant-sources.ts), in reading order. */
  sources: TenantSource[];
  /** Tenant sources that the user can edit (Supabase's user_metadata), one description each (RLS024). */
  userEditable: string[];
  /**
   * The whole expression only tests that a user is signed in (RLS034): `auth.uid() IS NOT NULL`,
   * `auth.role() = 'authenticated'`, a tenant source compared with a constant, or an AND of such tests.
   */
  loginOnly: boolean;
  /** Relations the expression reads in its sub-queries, and through the non-SECURITY DEFINER helpers it calls (RLS035). */
  relationsRead: Array<{ schema?: string; name: string }>;
}

/**
 * A place a policy takes its tenant or user from: a setting
 * (`current_setting('app.tenant_id', true)`), a path inside a JSON value
 * read from one (`current_setting('request.jwt.claims', true)::jsonb ->>
 * 'org_id'`, `auth.jwt() -> 'app_metadata' ->> 'org_id'`), or a function
 * that wraps one (`auth.uid()`, a SQL helper whose body reads one).
 */
export interface TenantSource {
  kind: 'setting' | 'claim' | 'function';
  /** The setting name, or the function's qualified name (for a claim: what the JSON comes from). */
  name: string;
  /** For a claim: the keys, outermost last. */
  path?: string[];
}

/** What the analysis knows of a function a policy calls (src/audit/tenant-sources.ts builds it for SQL helpers). */
export interface SourceFunction {
  qualified: string;
  securityDefiner: boolean;
  /** It returns a tenant or user taken from a tenant source. */
  readsSource: boolean;
  /** Relations its body reads (with those of the non-definer helpers it calls). */
  relations: Array<{ schema?: string; name: string }>;
  /** Why what it returns is user-editable, if it is ("raw_user_meta_data"). */
  userEditable?: string;
}

/** Resolves a function name as the parser gives it (`['auth', 'uid']`, `['user_org_ids']`). */
export interface SourceFunctions {
  lookup(names: string[]): SourceFunction | undefined;
}

/**
 * Supabase's wrappers of the JWT claims (auth.uid(), auth.jwt(), auth.role(),
 * auth.email(): SQL functions that read `request.jwt.claims`), known by name
 * so that a database whose auth schema the audit cannot read still has them.
 */
const AUTH_WRAPPERS = new Map<string, SourceFunction>(
  ['uid', 'jwt', 'role', 'email'].map((n) => [`auth.${n}`, { qualified: `auth.${n}`, securityDefiner: false, readsSource: true, relations: [] }]),
);

/** JSON keys that the user can set in a Supabase JWT (`supabase.auth.updateUser({ data })`). */
export const USER_EDITABLE_KEYS = new Set(['user_metadata', 'raw_user_meta_data']);

const JSON_OPS = new Set(['->', '->>', '#>', '#>>']);

function resolveFunction(names: string[], functions: SourceFunctions | undefined): SourceFunction | undefined {
  const helper = functions?.lookup(names);
  if (helper) return helper;
  return names.length === 2 ? AUTH_WRAPPERS.get(names.join('.')) : undefined;
}

function funcNames(list: unknown): string[] {
  return ((list as Array<{ String?: { sval: string } }> | undefined) ?? []).map((n) => n.String?.sval ?? '').filter((n) => n !== 'pg_catalog');
}

/** Type names of PostgreSQL's text types, as the parser gives them. */
export const TEXT_TYPES = new Set(['text', 'varchar', 'bpchar', 'name', 'character varying', 'char']);

/** The one key of a parse-tree node and its body (`{ A_Expr: {...} }` -> ['A_Expr', {...}]). */
export function kindOf(node: unknown): [string, Node] | undefined {
  if (!node || typeof node !== 'object' || Array.isArray(node)) return undefined;
  const keys = Object.keys(node as Node);
  if (keys.length !== 1) return undefined;
  return [keys[0], (node as Node)[keys[0]] as Node];
}

export function lastName(list: unknown): string {
  const items = (list as Array<{ String?: { sval: string } }> | undefined) ?? [];
  return items.length > 0 ? (items[items.length - 1].String?.sval ?? '') : '';
}

export function typeName(typeNameNode: unknown): string {
  const names = ((typeNameNode as Node | undefined)?.names as Array<{ String?: { sval: string } }> | undefined) ?? [];
  return names
    .map((n) => n.String?.sval ?? '')
    .filter((n) => n !== 'pg_catalog')
    .join('.');
}

export function children(node: unknown): unknown[] {
  if (!node || typeof node !== 'object') return [];
  if (Array.isArray(node)) return node;
  return Object.values(node as Node).filter((v) => v !== null && typeof v === 'object');
}

/** Strip casts to a text type (the `'app.tenant_id'::text` of pg_get_expr output, `x::text`). */
export function stripTextCasts(node: unknown): unknown {
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

export function isSettingCall(node: unknown): boolean {
  const k = kindOf(node);
  return !!k && k[0] === 'FuncCall' && lastName(k[1].funcname) === 'current_setting';
}

/** The name of the first tenant source the subtree reads (directly, through casts, COALESCE, NULLIF, JSON paths or a scalar sub-select). */
function sourceRead(node: unknown, functions: SourceFunctions | undefined): { name: string; setting: boolean } | undefined {
  const k = kindOf(node);
  if (k && k[0] === 'FuncCall') {
    if (lastName(k[1].funcname) === 'current_setting') {
      const args = (k[1].args as unknown[] | undefined) ?? [];
      return { name: (args.length > 0 ? constString(args[0]) : undefined) ?? '(a computed name)', setting: true };
    }
    const f = resolveFunction(funcNames(k[1].funcname), functions);
    if (f?.readsSource) return { name: f.qualified, setting: false };
  }
  for (const child of children(node)) {
    const found = sourceRead(child, functions);
    if (found) return found;
  }
  return undefined;
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
function unsetTest(node: unknown, functions: SourceFunctions | undefined): string | undefined {
  const readsSetting = (n: unknown) => sourceRead(n, functions) !== undefined;
  const k = kindOf(node);
  if (!k) return undefined;
  if (k[0] === 'NullTest' && k[1].nulltesttype === 'IS_NULL') {
    const source = sourceRead(k[1].arg, functions);
    if (source) return source.setting ? 'the setting IS NULL' : `${source.name}() IS NULL`;
  }
  // COALESCE(<a test of the tenant>, true): NULL when the tenant is unset, and so true.
  if (k[0] === 'CoalesceExpr') {
    const args = (k[1].args as unknown[] | undefined) ?? [];
    if (args.length > 1 && isTrueConst(args[args.length - 1]) && args.slice(0, -1).some(readsSetting)) return 'COALESCE(..., true) on an unset tenant';
  }
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

/**
 * A test that holds for every row once a user is signed in: a tenant source
 * IS NOT NULL, or compared with a constant (`auth.role() = 'authenticated'`),
 * that names no column; or an AND of such tests.
 */
function loginTest(node: unknown, functions: SourceFunctions | undefined): boolean {
  const k = kindOf(node);
  if (!k) return false;
  const bySource = (n: unknown) => !referencesColumn(n) && sourceRead(n, functions) !== undefined;
  if (k[0] === 'BoolExpr' && k[1].boolop === 'AND_EXPR') {
    const args = (k[1].args as unknown[] | undefined) ?? [];
    return args.length > 0 && args.every((a) => loginTest(a, functions));
  }
  if (k[0] === 'NullTest') return k[1].nulltesttype === 'IS_NOT_NULL' && bySource(k[1].arg);
  if (k[0] === 'A_Expr' && k[1].kind === 'AEXPR_OP' && lastName(k[1].name) === '=') {
    return (isConst(k[1].rexpr) && bySource(k[1].lexpr)) || (isConst(k[1].lexpr) && bySource(k[1].rexpr));
  }
  return false;
}

interface WalkState {
  underScalarSubselect: boolean;
  inSubquery: boolean;
  underCall: boolean;
  /** The names (aliases, else relation names) of the FROM items of the enclosing sub-queries. */
  innerNames: ReadonlySet<string>;
}

/** The names a FROM list gives its items: aliases, else relation names; and the relations it reads. */
function fromItems(list: unknown, names: Set<string>, relations: Array<{ schema?: string; name: string }>): void {
  for (const item of (list as unknown[] | undefined) ?? []) {
    const k = kindOf(item);
    if (!k) continue;
    const alias = (k[1].alias as { aliasname?: string } | undefined)?.aliasname;
    if (k[0] === 'RangeVar') {
      names.add(alias ?? (k[1].relname as string));
      relations.push({ ...(k[1].schemaname ? { schema: k[1].schemaname as string } : {}), name: k[1].relname as string });
    } else if (k[0] === 'JoinExpr') {
      fromItems([k[1].larg, k[1].rarg], names, relations);
      if (alias) names.add(alias);
    } else if (alias) names.add(alias);
  }
}

/** Does the subtree reference a column of the row (or any column, in a sub-query)? */
function referencesColumn(node: unknown): boolean {
  const k = kindOf(node);
  if (k && k[0] === 'ColumnRef') return true;
  return children(node).some(referencesColumn);
}

export function analyzeExpression(text: string, functions?: SourceFunctions): ExpressionFacts {
  let root: unknown;
  try {
    const result = parseSync(`SELECT (\n${text}\n)`) as { stmts?: Array<{ stmt: Node }> };
    const select = result.stmts?.[0]?.stmt.SelectStmt as Node | undefined;
    root = (select?.targetList as Array<{ ResTarget: { val: unknown } }> | undefined)?.[0]?.ResTarget.val;
  } catch {
    root = undefined;
  }
  return analyzeTree(root, functions);
}

/**
 * The facts of a parsed expression (or, for a helper's body, of any parse
 * tree: src/audit/tenant-sources.ts); `root` undefined when it did not parse.
 */
export function analyzeTree(root: unknown, functions?: SourceFunctions): ExpressionFacts {
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
    outerColumns: new Map(),
    sources: [],
    userEditable: [],
    relationsRead: [],
    loginOnly: false,
  };
  if (root === undefined) {
    facts.unparsable = true;
    return facts;
  }
  facts.alwaysTrue = isAlwaysTrue(root);
  facts.loginOnly = loginTest(root, functions);
  const rootTest = kindOf(root)?.[0] === 'BoolExpr' ? undefined : unsetTest(root, functions);
  if (rootTest) facts.failOpenBranches.push(rootTest);
  const editable = (what: string) => {
    if (!facts.userEditable.includes(what)) facts.userEditable.push(what);
  };

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
    // A path given as an array or a text[] literal (`#>> ARRAY['user_metadata', ...]`, `#>> '{user_metadata,...}'`).
    if (kind === 'A_Expr' && startsWithUserMetadata(body)) editable('the JWT claims -> user_metadata');
    switch (kind) {
      case 'ColumnRef': {
        const name = lastName(body.fields);
        if (name) {
          facts.columnsAnywhere.add(name);
          if (!state.inSubquery) facts.columns.add(name);
          // auth.users.raw_user_meta_data read in a sub-query or a helper's body; a column of the policy's own row
          // that happens to bear the name is the application's, not the user's JWT.
          if (state.inSubquery && USER_EDITABLE_KEYS.has(name)) editable(name);
          const fields = (body.fields as unknown[] | undefined) ?? [];
          if (state.inSubquery && fields.length >= 2) {
            const qualifier = lastName(fields.slice(0, -1));
            if (qualifier && !state.innerNames.has(qualifier)) {
              let set = facts.outerColumns.get(qualifier);
              if (!set) facts.outerColumns.set(qualifier, (set = new Set()));
              set.add(name);
            }
          }
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
        const innerNames = new Set(state.innerNames);
        if (select) fromItems(select.fromClause, innerNames, facts.relationsRead);
        walk(body.testexpr, state, undefined);
        walk(body.subselect, { ...state, innerNames, inSubquery: true, underScalarSubselect: state.underScalarSubselect || scalar || standalone }, undefined);
        return;
      }
      case 'SelectStmt': {
        // A statement of a helper's body (a policy's sub-selects come through SubLink): its FROM names its own columns.
        if (state.inSubquery) {
          for (const child of children(body)) walk(child, state, k);
          return;
        }
        const innerNames = new Set(state.innerNames);
        fromItems(body.fromClause, innerNames, facts.relationsRead);
        for (const child of children(body)) walk(child, { ...state, innerNames, inSubquery: true }, k);
        return;
      }
      case 'A_Expr': {
        if (body.kind === 'AEXPR_OP' && JSON_OPS.has(lastName(body.name))) {
          // The whole path at once: ((base -> 'a') ->> 'b'): base, then ['a', 'b'].
          const path: string[] = [];
          let base: unknown = node;
          for (;;) {
            const b = kindOf(stripTextCasts(base));
            if (!b || b[0] !== 'A_Expr' || b[1].kind !== 'AEXPR_OP' || !JSON_OPS.has(lastName(b[1].name))) break;
            path.unshift(constString(b[1].rexpr) ?? '?');
            walk(b[1].rexpr, state, b);
            base = b[1].lexpr;
          }
          walk(base, state, k);
          const from = sourceRead(base, functions);
          if (from) {
            facts.sources.push({ kind: 'claim', name: from.name, path });
            const key = path.find((p) => USER_EDITABLE_KEYS.has(p));
            if (key) editable(`${from.name} -> ${key}`);
          }
          return;
        }
        for (const child of children(body)) walk(child, state, k);
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
          facts.sources.push({ kind: 'setting', name: settingName ?? '(a computed name)' });
        } else {
          const f = resolveFunction(funcNames(body.funcname), functions);
          if (f?.readsSource) facts.sources.push({ kind: 'function', name: f.qualified });
          if (f?.userEditable) editable(`${f.qualified}() reads ${f.userEditable}`);
          // A SECURITY DEFINER helper reads its tables as its owner: their policies do not apply to the caller.
          if (f && !f.securityDefiner) facts.relationsRead.push(...f.relations);
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
            const test = unsetTest(arg, functions);
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
  walk(root, { underScalarSubselect: false, inSubquery: false, underCall: false, innerNames: new Set() }, undefined);
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
  /** `functions`: the SQL helpers of the database, read through their bodies (src/audit/tenant-sources.ts). */
  constructor(private readonly functions?: SourceFunctions) {}
  analyze(text: string): ExpressionFacts {
    let facts = this.cache.get(text);
    if (!facts) {
      facts = analyzeExpression(text, this.functions);
      this.cache.set(text, facts);
      this.parsed++;
    }
    return facts;
  }
}
