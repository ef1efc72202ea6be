import { parseSync } from 'libpg-query';

/**
 * The `via` shape of a policy expression: `EXISTS (SELECT … FROM parent [AS p]
 * WHERE p.a = self.x AND …)`, or `self.x IN (SELECT p.a FROM parent p …)`, as
 * pg_get_expr prints it, read with PostgreSQL's parser (libpg-query). For each
 * such sub-query (not nested in another one) it returns the parent as written
 * and the parent columns that the top-level AND of its WHERE compares with `=`
 * to a column of the policy's own relation, or that the IN selects for one:
 * the join that decides which parent rows a row of the relation belongs to.
 * RLS033 asks whether those columns cover a unique key of the parent.
 *
 * The caller must have awaited `loadParser()` (the parser is WebAssembly).
 */

type Node = Record<string, unknown>;

export interface ViaJoin {
  /** The parent as the FROM clause names it (schema absent when pg_get_expr left it out). */
  parent: { schema?: string; name: string };
  /** Parent columns joined with `=` to a column of the policy's relation, in order of appearance. */
  parentColumns: string[];
}

/**
 * `self` is the policy's relation's bare name; `parentHas(parent, column)`
 * says whether the parent has a column of that name (an unqualified column
 * inside the sub-query is the parent's when it has one, as PostgreSQL
 * resolves it, else the outer relation's).
 */
export function viaJoins(text: string, self: { schema: string; name: string }, parentHas: (parent: ViaJoin['parent'], column: string) => boolean): ViaJoin[] {
  let tree: unknown;
  try {
    tree = parseSync(`SELECT (\n${text}\n)`);
  } catch {
    return [];
  }
  const out: ViaJoin[] = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(visit);
      return;
    }
    if (!node || typeof node !== 'object') return;
    const sublink = (node as Node).SubLink as Node | undefined;
    if (sublink) {
      if (sublink.subLinkType === 'EXISTS_SUBLINK' || sublink.subLinkType === 'ANY_SUBLINK') {
        const join = subqueryJoin(sublink, self, parentHas);
        if (join) out.push(join);
      }
      visit(sublink.testexpr);
      // A sub-query that reads a table joins to that table, not to the policy's
      // relation; one without FROM (`(SELECT EXISTS (…))`) is still about the row.
      const inner = (sublink.subselect as Node | undefined)?.SelectStmt as Node | undefined;
      if (sublink.subLinkType !== 'EXISTS_SUBLINK' && inner && !inner.fromClause) visit([inner.targetList, inner.whereClause]);
      return;
    }
    for (const value of Object.values(node as Node)) visit(value);
  };
  visit(tree);
  return out;
}

function subqueryJoin(
  sublink: Node,
  self: { schema: string; name: string },
  parentHas: (parent: ViaJoin['parent'], column: string) => boolean,
): ViaJoin | undefined {
  const select = (sublink.subselect as Node | undefined)?.SelectStmt as Node | undefined;
  const from = select?.fromClause as Node[] | undefined;
  // One relation in FROM: the parent. Joins of several tables are not judged.
  if (!select || !from || from.length !== 1 || !from[0].RangeVar) return undefined;
  const rv = from[0].RangeVar as { schemaname?: string; relname: string; alias?: { aliasname: string } };
  const parent = { ...(rv.schemaname ? { schema: rv.schemaname } : {}), name: rv.relname };
  const parentRef = rv.alias?.aliasname ?? rv.relname;
  const side = (node: unknown): { of: 'parent' | 'self'; column: string } | undefined => {
    const ref = (node as Node | undefined)?.ColumnRef as { fields: Array<{ String?: { sval: string } }> } | undefined;
    if (!ref || ref.fields.some((f) => !f.String)) return undefined;
    const names = ref.fields.map((f) => f.String!.sval);
    const column = names[names.length - 1];
    if (names.length === 1) return { of: parentHas(parent, column) ? 'parent' : 'self', column };
    const qualifier = names.slice(0, -1);
    const is = (schema: string | undefined, name: string) => qualifier[qualifier.length - 1] === name && (qualifier.length === 1 || qualifier[0] === schema);
    // The alias hides the parent's own name; without one the parent is reached by its name.
    if (qualifier.length === 1 && qualifier[0] === parentRef) return { of: 'parent', column };
    if (!rv.alias && qualifier.length === 2 && is(rv.schemaname, rv.relname)) return { of: 'parent', column };
    if (is(self.schema, self.name)) return { of: 'self', column };
    return undefined;
  };
  const parentColumns: string[] = [];
  for (const term of conjuncts(select.whereClause)) {
    const expr = (term as Node).A_Expr as { kind: string; name: Array<{ String?: { sval: string } }>; lexpr: unknown; rexpr: unknown } | undefined;
    if (!expr || expr.kind !== 'AEXPR_OP' || expr.name.length !== 1 || expr.name[0].String?.sval !== '=') continue;
    const l = side(expr.lexpr);
    const r = side(expr.rexpr);
    if (!l || !r || l.of === r.of) continue;
    parentColumns.push(l.of === 'parent' ? l.column : r.column);
  }
  // `row.col IN (SELECT p.id FROM parent p)`, `(a, b) IN (SELECT p.x, p.y …)`, `= ANY (SELECT …)`:
  // the tested expression belongs to the policy's row, the selected columns to the parent.
  const operator = sublink.operName as Array<{ String?: { sval: string } }> | undefined;
  if (sublink.subLinkType === 'ANY_SUBLINK' && (!operator || (operator.length === 1 && operator[0].String?.sval === '='))) {
    const test = sublink.testexpr as Node | undefined;
    const outer = test?.RowExpr ? ((test.RowExpr as Node).args as unknown[]) : [test];
    const inner = ((select.targetList as Node[] | undefined) ?? []).map((t) => (t.ResTarget as Node | undefined)?.val);
    if (outer.length === inner.length) {
      outer.forEach((o, i) => {
        const ref = (o as Node | undefined)?.ColumnRef as { fields: Array<{ String?: { sval: string } }> } | undefined;
        const names = ref?.fields.map((f) => f.String?.sval ?? '');
        const ofRow =
          names !== undefined &&
          (names.length === 1 || (names.length === 2 && names[0] === self.name) || (names.length === 3 && names[0] === self.schema && names[1] === self.name));
        const p = side(inner[i]);
        if (ofRow && p?.of === 'parent') parentColumns.push(p.column);
      });
    }
  }
  return parentColumns.length > 0 ? { parent, parentColumns } : undefined;
}

function conjuncts(node: unknown): unknown[] {
  const bool = (node as Node | undefined)?.BoolExpr as { boolop: string; args: unknown[] } | undefined;
  if (bool && bool.boolop === 'AND_EXPR') return bool.args.flatMap(conjuncts);
  return node ? [node] : [];
}
