import { parseSync, scanSync, type ScanToken } from 'libpg-query';
import { children, isSettingCall, kindOf, lastName, stripTextCasts, TEXT_TYPES, typeName } from './analyze-expression.js';

/**
 * Rewrites of a policy expression in its own source: the text pg_get_expr
 * printed, changed only where a rule needs it (a NULLIF around a cast
 * setting, `, true` in current_setting, a fail-open OR branch dropped, a call
 * wrapped in a scalar sub-select, a cast moved off the tenant column). The
 * tree comes from PostgreSQL's parser (libpg-query), the positions from its
 * scanner, so string literals and quoted names are never mistaken for syntax;
 * the text between the edits is kept byte for byte (function schemas, JSON
 * paths, the policy's own tenant source). Each rewrite returns undefined when
 * the text is not of a shape it can edit safely: the fix is then not runnable.
 *
 * The caller must have awaited `loadParser()` (the parser is WebAssembly).
 */

type Node = Record<string, unknown>;

const PREFIX = 'SELECT (\n';
const SUFFIX = '\n)';

interface Parsed {
  sql: Buffer;
  tokens: ScanToken[];
  root: unknown;
}

interface Splice {
  at: number;
  remove: number;
  insert: string;
}

function parse(text: string): Parsed | undefined {
  const sql = `${PREFIX}${text}${SUFFIX}`;
  try {
    const result = parseSync(sql) as { stmts?: Array<{ stmt: Node }> };
    if (result.stmts?.length !== 1) return undefined;
    const select = result.stmts[0].stmt.SelectStmt as Node | undefined;
    const root = (select?.targetList as Array<{ ResTarget: { val: unknown } }> | undefined)?.[0]?.ResTarget.val;
    if (root === undefined) return undefined;
    return { sql: Buffer.from(sql, 'utf8'), tokens: scanSync(sql).tokens, root };
  } catch {
    return undefined;
  }
}

function apply(p: Parsed, splices: Splice[]): string | undefined {
  const prefix = Buffer.byteLength(PREFIX);
  const end = p.sql.length - Buffer.byteLength(SUFFIX);
  let out = p.sql;
  for (const s of [...splices].sort((a, b) => b.at - a.at)) {
    if (s.at < prefix || s.at + s.remove > end) return undefined;
    out = Buffer.concat([out.subarray(0, s.at), Buffer.from(s.insert, 'utf8'), out.subarray(s.at + s.remove)]);
  }
  const text = out.toString('utf8');
  return text.slice(PREFIX.length, text.length - SUFFIX.length);
}

function tokenAt(p: Parsed, at: number): number {
  return p.tokens.findIndex((t) => t.start === at);
}

function matchClose(p: Parsed, open: number): number {
  let depth = 0;
  for (let i = open; i < p.tokens.length; i++) {
    if (p.tokens[i].text === '(') depth++;
    else if (p.tokens[i].text === ')' && --depth === 0) return i;
  }
  return -1;
}

function matchOpen(p: Parsed, close: number): number {
  let depth = 0;
  for (let i = close; i >= 0; i--) {
    if (p.tokens[i].text === ')') depth++;
    else if (p.tokens[i].text === '(' && --depth === 0) return i;
  }
  return -1;
}

/** [start, end) bytes of a function call: its (qualified) name to its closing parenthesis. */
function callSpan(p: Parsed, call: Node): [number, number] | undefined {
  const first = tokenAt(p, call.location as number);
  if (first < 0) return undefined;
  let open = first;
  while (open < p.tokens.length && p.tokens[open].text !== '(') open++;
  const close = matchClose(p, open);
  return close < 0 ? undefined : [p.tokens[first].start, p.tokens[close].end];
}

/** [start, end) bytes of the argument of a `::` cast (its own parentheses included). */
function castArgSpan(p: Parsed, cast: Node): [number, number] | undefined {
  const op = tokenAt(p, cast.location as number);
  if (op < 1 || p.tokens[op].text !== '::') return undefined;
  const before = p.tokens[op - 1];
  const arg = kindOf(cast.arg);
  if (!arg) return undefined;
  const argStart = arg[1].location as number | undefined;
  if (before.text !== ')') return argStart === undefined ? undefined : [argStart, before.end];
  const open = matchOpen(p, op - 1);
  if (open < 0) return undefined;
  // f(x)::t: the parenthesis is the call's own; (x)::t: it wraps the argument.
  if (arg[0] === 'FuncCall' && argStart !== undefined && p.tokens[open].start > argStart) return [argStart, before.end];
  return [p.tokens[open].start, before.end];
}

const TYPE_WORDS = new Set(['character', 'varying', 'double', 'precision', 'with', 'without', 'time', 'zone', 'national', 'char', 'varchar', 'bit']);

/** [start, end) bytes of a whole cast: its argument, `::` and the type name. */
function castSpan(p: Parsed, cast: Node): [number, number] | undefined {
  const arg = castArgSpan(p, cast);
  if (!arg) return undefined;
  let i = tokenAt(p, cast.location as number) + 1;
  if (i <= 0 || i >= p.tokens.length) return undefined;
  let end = p.tokens[i].end;
  i++;
  while (i < p.tokens.length) {
    const t = p.tokens[i];
    if (t.text === '.' && i + 1 < p.tokens.length) {
      end = p.tokens[i + 1].end;
      i += 2;
    } else if (TYPE_WORDS.has(t.text.toLowerCase())) {
      end = t.end;
      i++;
    } else break;
  }
  return [arg[0], end];
}

function referencesColumn(node: unknown): boolean {
  const k = kindOf(node);
  if (k && k[0] === 'ColumnRef') return true;
  return children(node).some(referencesColumn);
}

function visit(node: unknown, fn: (kind: string, body: Node) => boolean | void): void {
  const k = kindOf(node);
  if (k && fn(k[0], k[1]) === false) return;
  for (const child of children(k ? k[1] : node)) visit(child, fn);
}

function bytes(p: Parsed, span: [number, number]): string {
  return p.sql.subarray(span[0], span[1]).toString('utf8');
}

/** `current_setting(name)` → `current_setting(name, true)` (RLS020). */
export function addMissingOk(text: string): string | undefined {
  const p = parse(text);
  if (!p) return undefined;
  const splices: Splice[] = [];
  let ok = true;
  visit(p.root, (kind, body) => {
    if (kind !== 'FuncCall' || lastName(body.funcname) !== 'current_setting' || ((body.args as unknown[] | undefined)?.length ?? 0) !== 1) return;
    const span = callSpan(p, body);
    if (!span) ok = false;
    else splices.push({ at: span[1] - 1, remove: 0, insert: ', true' });
  });
  return ok ? apply(p, splices) : undefined;
}

/** `current_setting(...)::uuid` → `NULLIF(current_setting(...), '')::uuid` (RLS021), through COALESCE and text casts as the analysis looks. */
export function nullifSettingCasts(text: string): string | undefined {
  const p = parse(text);
  if (!p) return undefined;
  const splices: Splice[] = [];
  let ok = true;
  visit(p.root, (kind, body) => {
    if (kind !== 'TypeCast' || TEXT_TYPES.has(typeName(body.typeName))) return;
    let inner = stripTextCasts(body.arg);
    const ik = kindOf(inner);
    if (ik && ik[0] === 'CoalesceExpr') inner = ((ik[1].args as unknown[]) ?? [])[0];
    if (!isSettingCall(stripTextCasts(inner))) return;
    const span = castArgSpan(p, body);
    if (!span) ok = false;
    else splices.push({ at: span[0], remove: 0, insert: 'NULLIF(' }, { at: span[1], remove: 0, insert: ", '')" });
  });
  return ok ? apply(p, splices) : undefined;
}

/**
 * Drop the OR branches that `failsOpen` says admit every row when no tenant
 * is set (RLS022), one OR at a time, until none is left. The branches are cut
 * at the OR keywords the scanner finds at the OR's own depth, and each cut
 * must parse back to the branch the tree holds.
 */
export function dropFailOpenBranches(text: string, failsOpen: (branch: string) => boolean): string | undefined {
  let current = text;
  for (let pass = 0; pass < 20; pass++) {
    const p = parse(current);
    if (!p) return undefined;
    let edit: Splice | undefined | null;
    visit(p.root, (kind, body) => {
      if (edit !== undefined || kind !== 'BoolExpr' || body.boolop !== 'OR_EXPR') return;
      const args = (body.args as unknown[]) ?? [];
      const branches = orBranches(p, body);
      if (!branches || branches.spans.length !== args.length) {
        edit = null;
        return false;
      }
      const texts = branches.spans.map((s) => bytes(p, s));
      if (texts.some((t, i) => !sameTree(t, args[i]))) {
        edit = null;
        return false;
      }
      const keep = texts.filter((t) => !failsOpen(t));
      if (keep.length === texts.length) return;
      if (keep.length === 0) {
        edit = null;
        return false;
      }
      const [start, end] = branches.range;
      edit = { at: start, remove: end - start, insert: keep.join(' OR ') };
      return false;
    });
    if (edit === null) return undefined;
    if (edit === undefined) return current;
    const next = apply(p, [edit]);
    if (next === undefined) return undefined;
    current = next;
  }
  return undefined;
}

const CLAUSE_WORDS = new Set(['select', 'from', 'where', 'when', 'then', 'else', 'case', 'end', 'group', 'having', 'order', 'limit', 'on', 'join']);

function orBranches(p: Parsed, or: Node): { spans: Array<[number, number]>; range: [number, number] } | undefined {
  const first = tokenAt(p, or.location as number);
  if (first < 0 || p.tokens[first].text.toLowerCase() !== 'or') return undefined;
  let depth = 0;
  let open = -1;
  for (let i = first - 1; i >= 0; i--) {
    const t = p.tokens[i].text;
    if (t === ')') depth++;
    else if (t === '(') {
      if (depth === 0) {
        open = i;
        break;
      }
      depth--;
    }
  }
  const close = open < 0 ? -1 : matchClose(p, open);
  if (close < 0 || close - open < 2) return undefined;
  const spans: Array<[number, number]> = [];
  let from = open + 1;
  depth = 0;
  for (let i = open + 1; i < close; i++) {
    const t = p.tokens[i].text.toLowerCase();
    if (t === '(') depth++;
    else if (t === ')') depth--;
    else if (depth === 0 && (t === ',' || CLAUSE_WORDS.has(t))) return undefined;
    else if (depth === 0 && t === 'or') {
      if (i === from) return undefined;
      spans.push([p.tokens[from].start, p.tokens[i - 1].end]);
      from = i + 1;
    }
  }
  if (from >= close) return undefined;
  spans.push([p.tokens[from].start, p.tokens[close - 1].end]);
  return { spans, range: [p.tokens[open + 1].start, p.tokens[close - 1].end] };
}

function withoutLocations(node: unknown): string {
  return JSON.stringify(node, (key, value) => (key === 'location' ? undefined : value));
}

function sameTree(text: string, node: unknown): boolean {
  const p = parse(text);
  return !!p && withoutLocations(p.root) === withoutLocations(node);
}

/**
 * Wrap each row-independent call named in `calls` that no scalar sub-select
 * wraps as `(SELECT call)` (RLS041), as the analysis walks: a standalone or
 * scalar sub-select already runs once per statement.
 */
export function wrapPerRowCalls(text: string, calls: ReadonlySet<string>): string | undefined {
  const p = parse(text);
  if (!p) return undefined;
  const splices: Splice[] = [];
  let ok = true;
  const walk = (node: unknown, underCall: boolean): void => {
    if (Array.isArray(node)) {
      for (const item of node) walk(item, underCall);
      return;
    }
    const k = kindOf(node);
    if (!k) {
      for (const child of children(node)) walk(child, underCall);
      return;
    }
    const [kind, body] = k;
    if (kind === 'SubLink') {
      const select = kindOf(body.subselect)?.[1];
      const standalone = !!select && !((select.fromClause as unknown[] | undefined)?.length ?? 0) && !referencesColumn(body.subselect);
      walk(body.testexpr, underCall);
      if (body.subLinkType !== 'EXPR_SUBLINK' && !standalone) walk(body.subselect, underCall);
      return;
    }
    if (kind === 'FuncCall') {
      const args = (body.args as unknown[] | undefined) ?? [];
      const independent = !referencesColumn(args);
      if (independent && !underCall && calls.has(lastName(body.funcname))) {
        const span = callSpan(p, body);
        if (!span) ok = false;
        else splices.push({ at: span[0], remove: 0, insert: '(SELECT ' }, { at: span[1], remove: 0, insert: ')' });
        return;
      }
      walk(args, underCall || independent);
      return;
    }
    for (const child of children(body)) walk(child, underCall);
  };
  walk(p.root, false);
  return ok ? apply(p, splices) : undefined;
}

/**
 * `column::text = X` → `column = (SELECT NULLIF(X, '')::type)` (RLS042): the
 * cast moves from the tenant column to the other side, which must not read the
 * row. Only casts: a function of the column (lower(tenant_id)) is not moved.
 */
export function unwrapColumnCasts(text: string, column: string, type: string): string | undefined {
  const p = parse(text);
  if (!p) return undefined;
  const splices: Splice[] = [];
  let ok = true;
  visit(p.root, (kind, body) => {
    if (kind !== 'A_Expr' || body.kind !== 'AEXPR_OP' || lastName(body.name) !== '=') return;
    for (const [mine, other] of [
      [body.lexpr, body.rexpr],
      [body.rexpr, body.lexpr],
    ] as const) {
      const cast = kindOf(mine);
      if (!cast || cast[0] !== 'TypeCast') continue;
      const col = kindOf(cast[1].arg);
      if (!col || col[0] !== 'ColumnRef' || lastName(col[1].fields) !== column) continue;
      const o = kindOf(other);
      if (!o || referencesColumn(other)) {
        ok = false;
        return false;
      }
      const castRange = castSpan(p, cast[1]);
      const colRange = castArgSpan(p, cast[1]);
      const otherRange =
        o[0] === 'SubLink' ? parenSpan(p, o[1]) : o[0] === 'FuncCall' ? callSpan(p, o[1]) : o[0] === 'TypeCast' ? castSpan(p, o[1]) : undefined;
      if (!castRange || !colRange || !otherRange) {
        ok = false;
        return false;
      }
      splices.push(
        { at: castRange[0], remove: castRange[1] - castRange[0], insert: bytes(p, colRange) },
        { at: otherRange[0], remove: otherRange[1] - otherRange[0], insert: `(SELECT NULLIF(${bytes(p, otherRange)}, '')::${type})` },
      );
      return false;
    }
  });
  return ok && splices.length > 0 ? apply(p, splices) : undefined;
}

/** A sub-select's parentheses: its location is the opening one. */
function parenSpan(p: Parsed, sublink: Node): [number, number] | undefined {
  if (sublink.subLinkType !== 'EXPR_SUBLINK') return undefined;
  const open = tokenAt(p, sublink.location as number);
  if (open < 0 || p.tokens[open].text !== '(') return undefined;
  const close = matchClose(p, open);
  return close < 0 ? undefined : [p.tokens[open].start, p.tokens[close].end];
}

/**
 * When the whole expression is `column = X` with X not reading the row (the
 * tenant predicate, in the policy's own source), the expression; else undefined.
 */
export function isTenantEquality(text: string, column: string): boolean {
  const p = parse(text);
  const k = p ? kindOf(p.root) : undefined;
  if (!k || k[0] !== 'A_Expr' || k[1].kind !== 'AEXPR_OP' || lastName(k[1].name) !== '=') return false;
  const isColumn = (n: unknown) => {
    const c = kindOf(n);
    return !!c && c[0] === 'ColumnRef' && ((c[1].fields as unknown[]) ?? []).length === 1 && lastName(c[1].fields) === column;
  };
  return (isColumn(k[1].lexpr) && !referencesColumn(k[1].rexpr)) || (isColumn(k[1].rexpr) && !referencesColumn(k[1].lexpr));
}
