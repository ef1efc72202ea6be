import { parseSync } from 'libpg-query';
import { analyzeTree, type SourceFunction, type SourceFunctions } from './analyze-expression.js';

/**
 * The SQL-language functions of a database, read through their bodies
 * (pg_proc.prosrc, parsed with libpg-query): which of them return a tenant or
 * user taken from a tenant source (`private.current_org()` reading
 * `request.jwt.claims`, a helper calling `auth.uid()`), which read a value the
 * user can edit (`raw_user_meta_data`), and which tables they read (RLS035:
 * a policy that calls a helper reads what the helper reads, unless the
 * helper is SECURITY DEFINER). Helpers that call helpers are resolved to a
 * fixed point. A body that does not parse (or another language) is a
 * function the audit knows nothing about.
 */

export interface HelperFunction {
  schema: string;
  name: string;
  /** The body: prosrc, or the deparsed BEGIN ATOMIC body. */
  body: string;
  securityDefiner: boolean;
}

export class Helpers implements SourceFunctions {
  readonly byQualified = new Map<string, SourceFunction>();
  /** Bare names held by exactly one helper (a policy prints a function in the search path without its schema). */
  private readonly byName = new Map<string, SourceFunction | null>();

  add(f: SourceFunction): void {
    this.byQualified.set(f.qualified, f);
    const bare = f.qualified.slice(f.qualified.indexOf('.') + 1);
    this.byName.set(bare, this.byName.has(bare) ? null : f);
  }

  lookup(names: string[]): SourceFunction | undefined {
    if (names.length === 2) return this.byQualified.get(names.join('.'));
    if (names.length === 1) return this.byName.get(names[0]) ?? undefined;
    return undefined;
  }
}

export function analyzeHelpers(functions: readonly HelperFunction[]): Helpers {
  // Overloads share a name, and a policy's call is resolved by name only: their bodies are read as one
  // (a source if any reads one; SECURITY DEFINER only if all are, so a cycle through any of them counts).
  const trees = new Map<string, { securityDefiner: boolean; tree: unknown[] }>();
  for (const fn of functions) {
    let tree: unknown[];
    try {
      tree = ((parseSync(statements(fn.body)) as { stmts?: Array<{ stmt: unknown }> }).stmts ?? []).map((s) => s.stmt);
    } catch {
      continue;
    }
    const key = `${fn.schema}.${fn.name}`;
    const known = trees.get(key);
    if (known) trees.set(key, { securityDefiner: known.securityDefiner && fn.securityDefiner, tree: [...known.tree, ...tree] });
    else trees.set(key, { securityDefiner: fn.securityDefiner, tree });
  }
  // Each round reads every body with what the previous rounds learnt; a
  // helper is at most as deep as the number of helpers, and rounds stop when
  // nothing changes.
  let known = new Helpers();
  for (let round = 0; round <= trees.size; round++) {
    const next = new Helpers();
    let changed = false;
    for (const [qualified, { securityDefiner, tree }] of trees) {
      const facts = analyzeTree(tree, known);
      const f: SourceFunction = {
        qualified,
        securityDefiner,
        readsSource: facts.sources.length > 0,
        relations: unique(facts.relationsRead),
        ...(facts.userEditable.length > 0 ? { userEditable: rootCause(facts.userEditable[0]) } : {}),
      };
      const before = known.byQualified.get(qualified);
      if (!before || before.readsSource !== f.readsSource || before.relations.length !== f.relations.length || before.userEditable !== f.userEditable)
        changed = true;
      next.add(f);
    }
    known = next;
    if (!changed) break;
  }
  return known;
}

/** "private.meta_org() reads raw_user_meta_data" → "raw_user_meta_data": what a caller reports is the editable value itself. */
function rootCause(reason: string): string {
  const at = reason.lastIndexOf(' reads ');
  return at < 0 ? reason : reason.slice(at + ' reads '.length);
}

function unique(relations: Array<{ schema?: string; name: string }>): Array<{ schema?: string; name: string }> {
  const seen = new Map<string, { schema?: string; name: string }>();
  for (const r of relations) seen.set(`${r.schema ?? ''}.${r.name}`, r);
  return [...seen.values()];
}

/** A body as statements the parser reads: `BEGIN ATOMIC ... END` unwrapped, `RETURN expr` as `SELECT expr`. */
function statements(body: string): string {
  const t = body.trim();
  const atomic = /^BEGIN\s+ATOMIC\b([\s\S]*)\bEND;?$/i.exec(t);
  if (atomic) return atomic[1];
  const ret = /^RETURN\b([\s\S]*)$/i.exec(t);
  return ret ? `SELECT ${ret[1]}` : t;
}
