/**
 * Walk an `EXPLAIN (FORMAT JSON, VERBOSE)` plan tree. Pure: no database.
 *
 * The JSON differs across majors in ways that matter here:
 * - an InitPlan's output is `$0` on 14–16 and `(InitPlan 1).col1` on 17+;
 * - a hashed SubPlan is referenced as `(hashed SubPlan 2)` on 14–16 and as
 *   `(ANY (x = (hashed SubPlan 2).col1))` on 17+, while the child node is
 *   named `SubPlan 2` on every major: only the referencing expression says
 *   that it is hashed;
 * - Bitmap Index Scan nodes carry no relation name: their Bitmap Heap Scan
 *   parent does.
 * VERBOSE is what qualifies every column with its relation's alias and gives
 * each scan its schema.
 */

export interface PlanNode {
  'Node Type': string;
  'Parent Relationship'?: string;
  'Subplan Name'?: string;
  'Relation Name'?: string;
  Schema?: string;
  Alias?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  'Recheck Cond'?: string;
  Filter?: string;
  Plans?: PlanNode[];
  [key: string]: unknown;
}

export type ScanAccess =
  /** A sequential scan (or TABLESAMPLE): reads every row of the relation. */
  | 'seq'
  /** An index (or bitmap) scan with no index condition: reads the whole index. */
  | 'full-index'
  /** An index scan bounded by index conditions. */
  | 'index';

export interface SubPlanRef {
  name: string;
  /** A hashed SubPlan runs once and is probed per row; a plain one runs per row. */
  hashed: boolean;
  node: PlanNode;
}

export interface ScanNode {
  node: PlanNode;
  nodeType: string;
  schema: string;
  relation: string;
  alias: string;
  access: ScanAccess;
  /** The indexes used (one for an index scan, one or more under a bitmap heap scan). */
  indexNames: string[];
  /** Index conditions, one per index used. */
  indexConds: string[];
  filter?: string;
  /** SubPlans whose expressions this node evaluates (its quals or target list). */
  subPlans: SubPlanRef[];
  /** For a bitmap scan: true when every path through BitmapOr / BitmapAnd is bounded by `bounded`. */
  bitmap?: BitmapTree;
}

export type BitmapTree = { kind: 'index'; indexName?: string; cond?: string } | { kind: 'and' | 'or'; children: BitmapTree[] };

const SEQ_TYPES = new Set(['Seq Scan', 'Sample Scan']);
const INDEX_TYPES = new Set(['Index Scan', 'Index Only Scan']);

function bitmapTree(node: PlanNode): BitmapTree {
  switch (node['Node Type']) {
    case 'BitmapAnd':
      return { kind: 'and', children: (node.Plans ?? []).map(bitmapTree) };
    case 'BitmapOr':
      return { kind: 'or', children: (node.Plans ?? []).map(bitmapTree) };
    default:
      return { kind: 'index', indexName: node['Index Name'], cond: node['Index Cond'] };
  }
}

function bitmapLeaves(tree: BitmapTree): Array<{ indexName?: string; cond?: string }> {
  return tree.kind === 'index' ? [tree] : tree.children.flatMap(bitmapLeaves);
}

/** True when the bitmap reads only rows whose index condition satisfies `test` (an OR needs it on every branch). */
export function bitmapBounded(tree: BitmapTree, test: (cond: string) => boolean): boolean {
  if (tree.kind === 'index') return tree.cond !== undefined && test(tree.cond);
  if (tree.kind === 'and') return tree.children.some((c) => bitmapBounded(c, test));
  return tree.children.length > 0 && tree.children.every((c) => bitmapBounded(c, test));
}

/** The texts of a node's own expressions, where SubPlan references appear. */
function expressionTexts(node: PlanNode): string[] {
  const texts: string[] = [];
  for (const [key, value] of Object.entries(node)) {
    if (key === 'Plans') continue;
    if (typeof value === 'string') texts.push(value);
    else if (Array.isArray(value)) for (const v of value) if (typeof v === 'string') texts.push(v);
  }
  return texts;
}

function subPlansOf(node: PlanNode): SubPlanRef[] {
  const texts = expressionTexts(node).join('\n');
  return (node.Plans ?? [])
    .filter((c) => c['Parent Relationship'] === 'SubPlan')
    .map((c) => {
      const name = String(c['Subplan Name'] ?? '').replace(/^hashed /, '');
      const number = /SubPlan (\d+)/.exec(name)?.[1];
      const hashed = /^hashed /.test(String(c['Subplan Name'] ?? '')) || (number !== undefined && new RegExp(`hashed SubPlan ${number}(?!\\d)`).test(texts));
      return { name, hashed, node: c };
    });
}

/** Every scan of a relation in the tree, sub-plans and init-plans included, in tree order. */
export function collectScans(root: PlanNode): ScanNode[] {
  const scans: ScanNode[] = [];
  const visit = (node: PlanNode): void => {
    const type = node['Node Type'];
    const relation = node['Relation Name'];
    if (relation !== undefined && type !== 'ModifyTable') {
      const base = {
        node,
        nodeType: type,
        schema: node.Schema ?? '',
        relation,
        alias: node.Alias ?? relation,
        filter: node.Filter,
        subPlans: subPlansOf(node),
      };
      if (SEQ_TYPES.has(type)) {
        scans.push({ ...base, access: 'seq', indexNames: [], indexConds: [] });
      } else if (INDEX_TYPES.has(type)) {
        const cond = node['Index Cond'];
        scans.push({
          ...base,
          access: cond ? 'index' : 'full-index',
          indexNames: node['Index Name'] ? [node['Index Name']] : [],
          indexConds: cond ? [cond] : [],
        });
      } else if (type === 'Bitmap Heap Scan') {
        const child = (node.Plans ?? []).find((c) => c['Parent Relationship'] === 'Outer');
        const tree = child ? bitmapTree(child) : { kind: 'or' as const, children: [] };
        const leaves = bitmapLeaves(tree);
        const bounded = bitmapBounded(tree, () => true);
        scans.push({
          ...base,
          access: bounded ? 'index' : 'full-index',
          indexNames: leaves.flatMap((l) => (l.indexName ? [l.indexName] : [])),
          indexConds: leaves.flatMap((l) => (l.cond ? [l.cond] : [])),
          bitmap: tree,
        });
      }
      // Other scans (Tid, Function, Foreign, CTE, ...) read no tenant table by an access path of ours to judge.
    }
    for (const child of node.Plans ?? []) visit(child);
  };
  visit(root);
  return scans;
}

/** The first node of an EXPLAIN (FORMAT JSON) result: `[{ "Plan": {...} }]`. */
export function rootOf(explainJson: unknown): PlanNode {
  const doc = (Array.isArray(explainJson) ? explainJson[0] : explainJson) as { Plan?: PlanNode } | undefined;
  if (!doc?.Plan) throw new Error('EXPLAIN returned no plan');
  return doc.Plan;
}

/**
 * An identifier as EXPLAIN VERBOSE prints it (quote_identifier); the
 * pattern accepts the quoted and the bare spelling, since which words need
 * quotes depends on the server's keyword list.
 */
function identPattern(name: string): string {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const quoted = `"${name.replace(/"/g, '""')}"`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? `(?:${escaped}|${quoted})` : quoted;
}

/** A pattern for `alias.column` in an EXPLAIN VERBOSE expression. */
export function columnRefPattern(alias: string, column: string): RegExp {
  return new RegExp(`(?<![\\w$."])${identPattern(alias)}\\.${identPattern(column)}(?![\\w$"])`);
}

/** True when `cond` compares one of `columns` of `alias` with `=` (or `= ANY`), as an index condition does. */
export function condBoundsColumns(cond: string, alias: string, columns: string[]): boolean {
  return columns.some((c) => new RegExp(`${columnRefPattern(alias, c).source}\\s*=\\s`).test(cond));
}

/** True when the expression mentions `alias.column` at all. */
export function mentionsColumn(text: string | undefined, alias: string, column: string): boolean {
  return text !== undefined && columnRefPattern(alias, column).test(text);
}

/** Columns of `alias` that `text` compares with =, <, >, <=, >=, in order of appearance, each once. */
export function comparedColumns(text: string, alias: string, known: Set<string>): Array<{ column: string; op: 'eq' | 'range' }> {
  const found: Array<{ column: string; op: 'eq' | 'range' }> = [];
  const ident = '(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)';
  const re = new RegExp(`(?<![\\w$."])(${ident})\\.(${ident})\\s*(=|<=|>=|<|>)\\s`, 'g');
  for (const m of text.matchAll(re)) {
    const unquote = (s: string) => (s.startsWith('"') ? s.slice(1, -1).replace(/""/g, '"') : s);
    if (unquote(m[1]) !== alias) continue;
    const column = unquote(m[2]);
    if (!known.has(column) || found.some((f) => f.column === column)) continue;
    found.push({ column, op: m[3] === '=' ? 'eq' : 'range' });
  }
  return found;
}

/** The plan fragment a finding shows: the node line and its conditions, as EXPLAIN's text format prints them. */
export function planFragment(scan: ScanNode): string[] {
  const on = `${scan.schema ? `${scan.schema}.` : ''}${scan.relation}${scan.alias && scan.alias !== scan.relation ? ` ${scan.alias}` : ''}`;
  const lines: string[] = [];
  const using = scan.nodeType === 'Index Scan' || scan.nodeType === 'Index Only Scan' ? ` using ${scan.indexNames[0]}` : '';
  lines.push(`${scan.nodeType}${using} on ${on}`);
  if (scan.nodeType !== 'Bitmap Heap Scan') {
    for (const cond of scan.indexConds) lines.push(`  Index Cond: ${cond}`);
  } else {
    if (scan.node['Recheck Cond']) lines.push(`  Recheck Cond: ${scan.node['Recheck Cond']}`);
  }
  if (scan.filter) lines.push(`  Filter: ${scan.filter}`);
  if (scan.nodeType === 'Bitmap Heap Scan') {
    const leaves = scan.bitmap ? bitmapLeaves(scan.bitmap) : [];
    for (const leaf of leaves) lines.push(`  ->  Bitmap Index Scan on ${leaf.indexName ?? '?'}${leaf.cond ? `\n        Index Cond: ${leaf.cond}` : ''}`);
  }
  for (const sp of scan.subPlans) {
    const read = firstRelationNode(sp.node);
    const on = read ? `${read === sp.node ? '' : ` -> ${read['Node Type']}`} on ${read.Schema ? `${read.Schema}.` : ''}${read['Relation Name']}` : '';
    lines.push(`  ${sp.hashed ? 'hashed ' : ''}${sp.name}: ${sp.node['Node Type']}${on}`);
  }
  return lines.flatMap((l) => l.split('\n'));
}

function firstRelationNode(node: PlanNode): PlanNode | undefined {
  if (node['Relation Name'] !== undefined) return node;
  for (const child of node.Plans ?? []) {
    if (child['Parent Relationship'] === 'InitPlan') continue;
    const found = firstRelationNode(child);
    if (found) return found;
  }
  return undefined;
}
