import { appliesToCommand, usesCheck, usesUsing } from '../rls/policy-semantics.js';
import { policyNamesRole, rowSecurityFor, type RowSecurityVerdict, type SubjectRole } from '../rls/row-security-subjects.js';
import { readSubjectRoles } from '../catalog/read-subject-roles.js';
import { readExplainViews, type ExplainView } from './read-explain-views.js';
import type { Command } from '../policy/model.js';
import type pg from 'pg';
import { UsageError } from '../errors.js';
import type { Database } from '../db/connection.js';
import { refuseOpenTransaction } from '../db/open-transaction.js';
import type { TenantFacts } from '../facts/resolve-facts.js';
import type { TenantType } from '../policy/model.js';
import { loadParser } from '../policy/expression.js';
import { qualify, quoteIdent, quoteLiteral } from '../compile/quote.js';
import { fingerprintOf, type Finding, type RuleMeta } from '../report/finding.js';
import { PER_ROW_POLICY_SUBPLAN, QUERY_FAILED, SEQ_SCAN_ON_TENANT_TABLE, TENANT_FILTER_NOT_INDEX_CONDITION } from './explain-rules.js';
import { inspectQuery, type PlannableKind } from './inspect-query.js';
import { PlanFailed, PlanSession, type PlannedQuery } from './plan-query.js';
import {
  readExplainCatalog,
  relationKey,
  type ExplainCatalog,
  type HypopgStatus,
  type PolicyInfo,
  type RelationSecurity,
  type TenantRelation,
} from './read-explain-catalog.js';
import { queryColumnUses, suggestIndex, hasLeadingIndex, type IndexSuggestion } from './suggest-index.js';
import { analyzeTenantPredicate, type PredicateAnalysis } from './tenant-predicate.js';
import { bitmapBounded, collectScans, comparedColumns, condBoundsColumns, planFragment, type PlanNode, type ScanNode } from './walk-plan.js';

/** A query to plan: from a query file, or handed in by a program. */
export interface ExplainQuery {
  name: string;
  text: string;
  file?: string;
  line?: number;
  column?: number;
}

/** A statement of a query file that is no query (a syntax error, an empty `-- name:` block): EXP004 as it stands. */
export interface ExplainProblem {
  name: string;
  file: string;
  line: number;
  column: number;
  message: string;
}

export interface ExplainOptions {
  /** The role to plan as; default the first app role of the facts. */
  role?: string;
  /**
   * The app role whose policies apply to `role` (the policy file's, when
   * `role` is a login role that is a member of it: cli/app-role-member.ts);
   * default `role`.
   */
  policyRole?: string;
  /** The tenant to set; default a well-formed value of the tenant type. */
  tenant?: string;
  /** Try each suggested index as a hypothetical index where hypopg is installed (default true). */
  hypopg?: boolean;
  /** Problems found while reading query files, reported as EXP004. */
  problems?: ExplainProblem[];
  /** Called after each query is planned. */
  onProgress?: (done: number, total: number) => void;
}

/** What a finding of explain carries beyond the shared Finding, for the text report. */
export interface ExplainDetail {
  table?: string;
  /** The message without the plan conditions, which the text report prints as a plan fragment. */
  headline?: string;
  nodeType?: string;
  /** The offending plan fragment, as EXPLAIN's text format prints it. */
  fragment?: string[];
  /** The hypothetical-index check of the suggested index. */
  hypothetical?: string;
}

export type ExplainFinding = Finding & { detail?: ExplainDetail };

export interface QueryOutcome {
  name: string;
  file?: string;
  line?: number;
  planned: boolean;
  /** The two plans (as is, and with sequential scans off), when planned. */
  plans?: PlannedQuery;
}

export interface ExplainContext {
  role: string;
  /** The app role whose policies were matched (role itself, or the declared app role it is a member of). */
  policyRole: string;
  tenant: string;
  setting: string;
  serverVersion: string;
  major: number;
  hypopg: HypopgStatus & { used: boolean };
}

export interface ExplainResult {
  findings: ExplainFinding[];
  queries: QueryOutcome[];
  context: ExplainContext;
}

/** A value of the tenant type that casts cleanly: the generic plan does not depend on it, the policy cast must not fail. */
export function defaultTenant(type: TenantType): string {
  switch (type) {
    case 'uuid':
      return '00000000-0000-4000-8000-000000000001';
    case 'bigint':
    case 'integer':
      return '1';
    case 'text':
      return 'rlsctl-explain-tenant';
  }
}

export function checkTenant(value: string, type: TenantType): void {
  const ok =
    type === 'uuid'
      ? /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(value)
      : type === 'text'
        ? value.length > 0 && !value.includes('\0')
        : /^-?\d+$/.test(value) &&
          (type === 'bigint' ? BigInt(value) <= 9223372036854775807n && BigInt(value) >= -9223372036854775808n : Math.abs(Number(value)) <= 2147483647);
  if (!ok)
    throw new UsageError(`--tenant ${value} is not a value of the tenant type ${type}`, { hint: `give a ${type} value, as the application sets the tenant` });
}

function isDatabase(target: Database | pg.ClientBase): target is Database {
  return typeof (target as Database).label === 'string' && 'pool' in target;
}

/**
 * Plan every query as the app role with a tenant set, and report tenant
 * tables that are not read by an index seek on the tenant column (EXP001,
 * EXP002), policy sub-queries that run per row (EXP003), and queries that
 * cannot be planned (EXP004). Nothing is written: all of it runs in a READ
 * ONLY transaction that is rolled back.
 *
 * Takes a Database (a connection of its own is opened and closed) or a
 * connected client (used as is; a client inside a transaction is refused with
 * a UsageError, its transaction untouched: see refuseOpenTransaction).
 */
export async function runExplain(
  target: Database | pg.ClientBase,
  facts: TenantFacts,
  queries: ExplainQuery[],
  options: ExplainOptions = {},
): Promise<ExplainResult> {
  await loadParser();
  const role = options.role ?? facts.appRoles[0];
  if (!role) {
    throw new UsageError('no app role to plan the queries as', {
      hint: 'name the role the application connects as with --app-role, or list it under roles.app in the policy file',
    });
  }
  if (!facts.setting) {
    throw new UsageError('no tenant setting: explain plans with the tenant set, as the application runs', {
      hint: 'say it with --tenant-setting NAME (e.g. app.tenant_id), or use a policy file',
    });
  }
  if (facts.tenantTables.length === 0) {
    throw new UsageError('no tenant table to check the queries against', {
      hint:
        facts.source === 'policy-file'
          ? 'declare tenant tables in the policy file'
          : `no table in scope has the column ${facts.tenantColumn}: say the tenant column with --tenant-column, or use a policy file`,
    });
  }
  const tenant = options.tenant ?? defaultTenant(facts.tenantType);
  checkTenant(tenant, facts.tenantType);

  const client = isDatabase(target) ? await target.connect() : target;
  try {
    if (!isDatabase(target)) {
      await refuseOpenTransaction(
        client,
        'explain',
        'give it the Database, or a client outside any transaction: it plans in a READ ONLY transaction of its own and rolls it back',
      );
    }
    const catalog = await readExplainCatalog(client, facts.tenantTables);
    if (catalog.missing.length > 0) {
      throw new UsageError(
        `the database lacks ${catalog.missing.length === 1 ? 'a table' : 'tables'} the policy file declares: ${catalog.missing.map((t) => `${t.schema}.${t.name}`).join(', ')}`,
        {
          hint: 'run the migrations that create them first, or point --db at the database the application uses',
        },
      );
    }
    const useHypopg = catalog.hypopg.installed && options.hypopg !== false;
    const context: ExplainContext = {
      role,
      policyRole: options.policyRole ?? role,
      tenant,
      setting: facts.setting,
      serverVersion: catalog.serverVersion,
      major: catalog.major,
      hypopg: { ...catalog.hypopg, used: useHypopg },
    };
    const findings: ExplainFinding[] = (options.problems ?? []).map((p) => failedFinding(p.name, p.message, { file: p.file, line: p.line, column: p.column }));
    const outcomes: QueryOutcome[] = (options.problems ?? []).map((p) => ({ name: p.name, file: p.file, line: p.line, planned: false }));
    const who: PlanRole = {
      subject: await planSubject(client, role, context.policyRole),
      label: context.policyRole,
      views: await readExplainViews(client, catalog),
      major: catalog.major,
    };
    const session = await PlanSession.open(client, { role, setting: facts.setting, tenant, major: catalog.major });
    try {
      let done = 0;
      for (const query of queries) {
        const outcome = await explainOne(session, catalog, facts, query, who, useHypopg, findings);
        outcomes.push(outcome);
        options.onProgress?.(++done, queries.length);
      }
    } finally {
      await session.close();
    }
    return { findings: dedupe(findings), queries: outcomes, context };
  } finally {
    if (isDatabase(target)) await (client as pg.Client).end().catch(() => undefined);
  }
}

function locationOf(query: ExplainQuery, offset?: number): { file: string; line: number; column: number } | undefined {
  if (!query.file) return undefined;
  let line = query.line ?? 1;
  let column = query.column ?? 1;
  if (offset !== undefined) {
    const before = query.text.slice(0, offset);
    const breaks = before.split('\n');
    if (breaks.length > 1) {
      line += breaks.length - 1;
      column = breaks[breaks.length - 1].length + 1;
    } else column += offset;
  }
  return { file: query.file, line, column };
}

function failedFinding(name: string, message: string, location?: { file: string; line: number; column: number }): ExplainFinding {
  const object = { kind: 'query' as const, name };
  return {
    rule: QUERY_FAILED.code,
    name: QUERY_FAILED.name,
    severity: QUERY_FAILED.severity,
    message: `query ${name} could not be planned: ${message}`,
    object,
    fingerprint: fingerprintOf(QUERY_FAILED.code, object),
    ...(location ? { location } : {}),
  };
}

async function explainOne(
  session: PlanSession,
  catalog: ExplainCatalog,
  facts: TenantFacts,
  query: ExplainQuery,
  who: PlanRole,
  useHypopg: boolean,
  findings: ExplainFinding[],
): Promise<QueryOutcome> {
  const outcome: QueryOutcome = { name: query.name, file: query.file, line: query.line, planned: false };
  const inspected = inspectQuery(query.text);
  if (!inspected.ok) {
    const offset = inspected.reason === 'syntax' ? inspected.position : undefined;
    findings.push(
      failedFinding(query.name, inspected.reason === 'syntax' ? `syntax error: ${inspected.message}` : inspected.message, locationOf(query, offset)),
    );
    return outcome;
  }
  let plans: PlannedQuery | undefined;
  // A parameter whose type the server cannot infer (`SELECT $1 FROM ...`, as pg_stat_statements
  // writes a constant of the select list) is planned as text: the plan does not depend on it.
  let types: string[] | undefined;
  for (let attempt = 0; plans === undefined; attempt++) {
    try {
      plans = await session.plan(query.text, inspected.paramCount, types);
    } catch (error) {
      if (!(error instanceof PlanFailed)) throw error;
      const untyped = /could not determine data type of parameter \$(\d+)/.exec(error.message);
      if (error.sqlState === '42P18' && untyped && attempt < inspected.paramCount) {
        types ??= Array.from({ length: inspected.paramCount }, () => 'unknown');
        types[Number(untyped[1]) - 1] = 'text';
        continue;
      }
      findings.push(failedFinding(query.name, error.message, locationOf(query, error.position)));
      return outcome;
    }
  }
  outcome.planned = true;
  outcome.plans = plans;
  const analysis = analyzeQuery(catalog, facts, query, inspected.kind, inspected.stmt, plans, who);
  if (useHypopg) {
    for (const item of analysis) {
      if (item.suggestion && !item.suggestion.existing && item.finding.detail) {
        item.finding.detail.hypothetical = await tryHypothetical(session, catalog, query.text, inspected.paramCount, types, item.relation, item.suggestion);
        item.finding.help = `${item.finding.help}\n-- hypopg: ${item.finding.detail.hypothetical}`;
      }
    }
  }
  findings.push(...analysis.map((a) => a.finding));
  return outcome;
}

interface Analysed {
  finding: ExplainFinding;
  relation: TenantRelation;
  suggestion?: IndexSuggestion;
}

/**
 * The policy commands whose policies a statement may meet: its own, and SELECT's, which PostgreSQL
 * adds when the statement reads existing rows (a WHERE, RETURNING, ON CONFLICT).
 */
const COMMANDS_OF: Record<PlannableKind, Command[]> = {
  SelectStmt: ['select'],
  InsertStmt: ['insert', 'select'],
  UpdateStmt: ['update', 'select'],
  DeleteStmt: ['delete', 'select'],
  MergeStmt: ['select', 'insert', 'update', 'delete'],
};

/**
 * The role the queries are planned as (`subject`, for the row-security model), the name findings give it
 * (the policy role), and the views over the tenant tables, which may run as another role.
 */
interface PlanRole {
  subject: SubjectRole;
  label: string;
  views: Map<string, ExplainView>;
  major: number;
}

/**
 * The role the queries are planned as, for the row-security model: its attributes and the roles whose
 * privileges it has, the policy role (the declared app role a login role is a member of) counted among them.
 */
async function planSubject(client: pg.ClientBase, role: string, policyRole: string): Promise<SubjectRole> {
  const found = (await readSubjectRoles(client, [role])).get(role) ?? { name: role, superuser: false, bypassRls: false };
  return { ...found, hasPrivilegesOf: (other) => other === policyRole || (found.hasPrivilegesOf?.(other) ?? false) };
}

/** Whose row security a scan meets: the relation's own, and the views the query reads it through (outermost first). */
interface ScanSecurity {
  security?: RelationSecurity;
  views: ExplainView[];
}

/**
 * Whose row security a scan meets (src/rls/row-security-subjects.ts): the relation the query names.
 * A partition the query names is checked with its own flags and policies, one read through its parent
 * with the tenant table's; a table read through a view the query names is checked as the role that
 * view runs as. A relation reached another way (a function) counts as the tenant table read directly.
 */
function rowSecurityOf(catalog: ExplainCatalog, who: PlanRole, relation: TenantRelation, scan: ScanNode, named: (qualified: string) => boolean): ScanSecurity {
  const own = relationKey(scan.schema, scan.relation);
  const root = relationKey(relation.table.schema, relation.table.name);
  if (own !== root && named(own)) return { security: catalog.security.get(own), views: [] };
  if (!named(root)) {
    const through = (key: string, seen: Set<string>): { views: ExplainView[]; target: string } | undefined => {
      const view = who.views.get(key);
      if (!view || seen.has(key)) return undefined;
      seen.add(key);
      const target = view.reads.includes(own) ? own : view.reads.includes(root) ? root : undefined;
      if (target) return { views: [view], target };
      for (const read of view.reads) {
        const inner = through(read, seen);
        if (inner) return { views: [view, ...inner.views], target: inner.target };
      }
      return undefined;
    };
    for (const key of who.views.keys()) {
      const path = named(key) ? through(key, new Set()) : undefined;
      if (path) return { security: catalog.security.get(path.target), views: path.views };
    }
  }
  return { security: catalog.security.get(root), views: [] };
}

/** What row security does to the role on the scan's relation, and the policies that apply (none when it does not apply). */
function rowSecurityAt(at: ScanSecurity, who: PlanRole, kind: PlannableKind): { verdict?: RowSecurityVerdict; policies: PolicyInfo[] } {
  const security = at.security;
  if (!security) return { policies: [] };
  const verdict = rowSecurityFor({
    relation: security.relation,
    role: who.subject,
    via: at.views.length > 0 ? { views: at.views.map((v) => v.view), serverMajor: who.major } : undefined,
    policies: { list: security.policies, command: COMMANDS_OF[kind][0] },
  });
  // Through a view that runs as its owner, the owner's policies apply.
  const policies =
    verdict.outcome === 'policies' || verdict.outcome === 'no-rows'
      ? security.policies.filter((p) => policyNamesRole(p, verdict.role) && COMMANDS_OF[kind].some((c) => appliesToCommand(p.command, c)))
      : [];
  return { verdict, policies };
}

/**
 * A policy sub-query that refers to the row being checked: pg_get_expr
 * qualifies such outer references with the table's name.
 */
function isCorrelated(policy: PolicyInfo, on: { name: string }): boolean {
  const name = on.name;
  const ident = /^[a-z_][a-z0-9_$]*$/.test(name) ? name.replace(/\$/g, '\\$') : `"${name.replace(/"/g, '""')}"`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return /\bSELECT\b/i.test(policy.using ?? '') && new RegExp(`(?<![\\w$."])${ident}\\.`).test(policy.using ?? '');
}

const CAST: Record<TenantType, string> = { uuid: '::uuid', bigint: '::bigint', integer: '::integer', text: '' };

/** The predicate every tenant policy should hold (the shape `rlsctl compile` writes). */
function idealPredicate(facts: TenantFacts, column: string): string {
  return `${quoteIdent(column)} = (SELECT NULLIF(pg_catalog.current_setting(${quoteLiteral(facts.setting!)}, true), '')${CAST[facts.tenantType]})`;
}

/** ALTER POLICY statements that give the offending policies the one-lookup, index-friendly shape. */
function policyRewrite(facts: TenantFacts, on: { schema: string; name: string }, policies: PolicyInfo[], column: string): string {
  const lines: string[] = [];
  const target = qualify(on.schema, on.name);
  for (const p of policies) {
    const flat = (text: string) => text.replace(/\s+/g, ' ').replace(/\( /g, '(');
    lines.push(`-- ${p.name} now: USING ${flat(p.using ?? '(none)')}${p.check ? ` WITH CHECK ${flat(p.check)}` : ''}`);
    const ideal = idealPredicate(facts, column);
    const using = usesUsing(p.command) ? ` USING (${ideal})` : '';
    const check = usesCheck(p.command) ? ` WITH CHECK (${ideal})` : '';
    lines.push(`ALTER POLICY ${quoteIdent(p.name)} ON ${target}${using}${check};`);
  }
  if (facts.source === 'policy-file') lines.push('-- or let `rlsctl apply` write the policies of the policy file, which have this shape');
  else if (lines.length > 0) lines.push('-- keep any other condition the policy needs beside the tenant comparison');
  return lines.join('\n');
}

function tableLabel(scan: ScanNode, relation: TenantRelation): string {
  const own = `${scan.schema}.${scan.relation}`;
  const root = `${relation.table.schema}.${relation.table.name}`;
  return own === root ? root : `${own} (a partition of ${root})`;
}

/** An index scan that reads at most one row: every column of a unique index bound by `=`. */
function isUniqueLookup(scan: ScanNode, catalog: ExplainCatalog, relation: TenantRelation): boolean {
  if (scan.indexNames.length !== 1 || scan.indexConds.length !== 1) return false;
  const index = catalog.indexes.get(relationKey(scan.schema, scan.indexNames[0]));
  if (!index || !index.unique || index.partial || index.columns.some((c) => c === null)) return false;
  // `= ANY (array)` compares with many values: not a single-row lookup.
  const bound = comparedColumns(scan.indexConds[0].replace(/=\s*ANY\b/g, '@ANY'), scan.alias, relation.columns)
    .filter((c) => c.op === 'eq')
    .map((c) => c.column);
  return index.columns.every((c) => bound.includes(c!));
}

const SHAPE_REASON: Record<Exclude<PredicateAnalysis['shape'], 'sargable' | 'absent'>, (culprit?: string) => string> = {
  or: () => 'its tenant comparison sits under an OR, so no index condition can come of it (and an OR beside the tenant comparison is how a policy fails open)',
  'per-row-function': (culprit) =>
    `its tenant filter calls ${culprit ?? 'a function'} for every row it reads (a volatile function, or one not wrapped in a scalar sub-select, is not evaluated once and cannot be an index condition)`,
  subplan: () => 'its tenant value comes from a SubPlan that runs for every row it reads',
  'wrapped-column': () => 'its tenant column is cast or passed to a function in the filter, so no index on the column can serve it',
};

function analyzeQuery(
  catalog: ExplainCatalog,
  facts: TenantFacts,
  query: ExplainQuery,
  kind: PlannableKind,
  stmt: Record<string, unknown>,
  plans: PlannedQuery,
  who: PlanRole,
): Analysed[] {
  const role = who.label;
  const named = namedRelations(stmt);
  const out: Analysed[] = [];
  const object = { kind: 'query' as const, name: query.name };
  const location = locationOf(query);
  const seen = new Set<string>();
  const push = (rule: RuleMeta, relation: TenantRelation, scan: ScanNode, headline: string, help: string, suggestion?: IndexSuggestion, conds = '') => {
    const table = `${relation.table.schema}.${relation.table.name}`;
    const fingerprint = fingerprintOf(rule.code, object, table);
    if (seen.has(fingerprint)) return;
    seen.add(fingerprint);
    out.push({
      finding: {
        rule: rule.code,
        name: rule.name,
        severity: rule.severity,
        message: `query ${query.name}: ${headline}${conds ? ` (${conds})` : ''}`,
        object,
        help,
        fingerprint,
        ...(location ? { location } : {}),
        detail: { table, nodeType: scan.nodeType, headline, fragment: planFragment(scan) },
      },
      relation,
      suggestion,
    });
  };

  // EXP001 / EXP002: judged on the plan with sequential scans disabled, so the amount of test data does not decide.
  for (const scan of collectScans(plans.noSeqScan)) {
    const relation = catalog.relations.get(relationKey(scan.schema, scan.relation));
    if (!relation) continue;
    const bounds = (cond: string) => condBoundsColumns(cond, scan.alias, relation.lead);
    const bounded = scan.access === 'index' && (scan.bitmap ? bitmapBounded(scan.bitmap, bounds) : scan.indexConds.some(bounds));
    if (bounded) continue;
    if (scan.access === 'index' && isUniqueLookup(scan, catalog, relation)) continue;
    const rule = scan.access === 'index' ? TENANT_FILTER_NOT_INDEX_CONDITION : SEQ_SCAN_ON_TENANT_TABLE;
    const where = tableLabel(scan, relation);
    const how =
      scan.access === 'seq'
        ? `${scan.nodeType} on ${where}, even with sequential scans disabled`
        : scan.access === 'full-index'
          ? `${scan.nodeType} on ${where} reads the whole index ${scan.indexNames.join(', ')} (no index condition), even with sequential scans disabled`
          : `${scan.nodeType} on ${where} using ${scan.indexNames.join(', ')}: the tenant predicate is not an index condition`;
    const conds = [scan.indexConds.length > 0 ? `Index Cond: ${scan.indexConds.join(' / ')}` : '', scan.filter ? `Filter: ${scan.filter}` : '']
      .filter(Boolean)
      .join('; ');
    const uses = queryColumnUses(stmt, relation.table.schema, new Set([relation.table.name, scan.relation]), relation.columns);
    const suggestion = suggestIndex(relation, uses, scan.filter, scan.alias);

    if (relation.table.via) {
      const via = relation.table.via;
      const leading = hasLeadingIndex(relation);
      const message = `${how}; the tenant of ${relation.table.schema}.${relation.table.name} comes via ${via.parentSchema}.${via.parentName}, and the scan is not bounded by ${via.columns.join(', ')}`;
      const parent = `${via.parentSchema}.${via.parentName}`;
      const help = leading
        ? [
            `-- ${relation.table.schema}.${relation.table.name} has no tenant column: a read of all of the tenant's rows cannot be an index seek on it.`,
            `-- Read it through ${parent}: the tenant's rows of ${parent} are an index seek, and each of theirs one on ${leading.name}, e.g.`,
            `--   SELECT ... FROM ${parent} p JOIN ${qualify(relation.table.schema, relation.table.name)} c ON ${via.columns.map((c, i) => `c.${quoteIdent(c)} = p.${quoteIdent(via.references[i])}`).join(' AND ')}`,
            `-- or give it a tenant column of its own and declare it mode tenant.`,
          ].join('\n')
        : suggestion.sql;
      push(rule, relation, scan, message, help, leading ? undefined : suggestion, conds);
      continue;
    }

    const column = relation.lead[0];
    const predicate = analyzeTenantPredicate(scan.filter, relation.lead, scan.alias, { planText: true });
    const at = rowSecurityOf(catalog, who, relation, scan, named);
    const security = at.security;
    const on = security ?? relation.table;
    const { verdict, policies } = rowSecurityAt(at, who, kind);
    if (predicate.shape === 'absent' && !predicate.unparsed) {
      const why = verdict && !verdict.applies ? `: ${verdict.reason.message}` : '';
      const message = `${how}, and with no tenant filter on it at all: row level security does not filter ${where} for ${role}${why}`;
      const target = qualify(on.schema, on.name);
      const help = verdict?.bypass
        ? bypassHelp(verdict, target, at.views, who.major)
        : verdict?.reason.code === 'rls-disabled' && security!.policies.some((p) => policyNamesRole(p, who.subject))
          ? `-- ${role} has policies on ${target} but they do not apply: ${verdict.reason.message}\nALTER TABLE ${target} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;`
          : policies.length === 0
            ? `ALTER TABLE ${target} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;\nCREATE POLICY rlsctl_tenant_guard ON ${target} AS RESTRICTIVE FOR ALL TO ${quoteIdent(role)} USING (${idealPredicate(facts, column)}) WITH CHECK (${idealPredicate(facts, column)});\n-- see rlsctl audit (RLS001, RLS010) for why the policies do not apply${facts.source === 'policy-file' ? '; rlsctl apply writes them from the policy file' : ''}`
            : `-- ${role} has policies on ${target} but they do not apply: is row level security enabled and forced, and does ${role} bypass it? See rlsctl audit (RLS001, RLS002, RLS010).\n${suggestion.sql}`;
      push(rule, relation, scan, message, help, undefined, conds);
      continue;
    }
    if (predicate.shape !== 'sargable' && predicate.shape !== 'absent') {
      const offending = policies.filter((p) => {
        const shape = analyzeTenantPredicate(p.using ?? undefined, relation.lead, on.name).shape;
        return (shape !== 'sargable' && shape !== 'absent') || (predicate.shape === 'subplan' && isCorrelated(p, on));
      });
      const message = `${how}: ${SHAPE_REASON[predicate.shape](predicate.culprit)}`;
      const help = offending.length > 0 ? policyRewrite(facts, on, offending, column) : `-- rewrite the tenant predicate as: ${idealPredicate(facts, column)}`;
      push(rule, relation, scan, message, help, undefined, conds);
      continue;
    }
    // The tenant predicate could be an index condition: an index is what is missing.
    const message = suggestion.existing
      ? `${how}; an index with the suggested columns exists (${suggestion.existing.name}) but the planner does not use it for this query`
      : `${how}: no index leads with ${relation.lead.join(', ')} and serves this query`;
    const help = suggestion.existing
      ? `-- check that the query compares ${suggestion.columns.join(', ')} with values of the columns' own types, so that the index applies\n-- suggested: ${suggestion.sql}`
      : `${suggestion.sql}${facts.source === 'policy-file' ? `\n-- or declare it in the policy file: ${relation.table.schema}.${relation.table.name} indexes: [${suggestion.columns.slice(relation.lead.length).join(', ')}]` : ''}`;
    push(rule, relation, scan, message, help, suggestion.existing ? undefined : suggestion, conds);
  }

  // EXP003: per-row SubPlans of policies, in either plan.
  const inQuerySubLinks = subLinkRelations(stmt);
  for (const plan of [plans.noSeqScan, plans.asIs]) {
    for (const scan of collectScans(plan)) {
      const relation = catalog.relations.get(relationKey(scan.schema, scan.relation));
      if (!relation) continue;
      for (const sp of scan.subPlans) {
        if (sp.hashed) continue;
        const inner = relationsIn(sp.node);
        // A SubPlan that only reads relations the query's own sub-queries name is the query's, not a policy's.
        if (inQuerySubLinks && (inner.length === 0 || inner.every(inQuerySubLinks))) continue;
        const where = tableLabel(scan, relation);
        const at = rowSecurityOf(catalog, who, relation, scan, named);
        const on = at.security ?? relation.table;
        const withSubqueries = rowSecurityAt(at, who, kind).policies.filter((p) => /\bSELECT\b/i.test(p.using ?? ''));
        // Prefer the policies whose sub-query refers to the row being checked: those are the per-row ones.
        const correlated = withSubqueries.filter((p) => isCorrelated(p, on));
        const policies = correlated.length > 0 ? correlated : withSubqueries;
        const names = policies.map((p) => p.name).join(', ');
        const message = `${sp.name} (${sp.node['Node Type']}${inner.length > 0 ? ` on ${inner.join(', ')}` : ''}) runs for every row the ${scan.nodeType} on ${where} reads${names ? `: a sub-query of the polic${policies.length === 1 ? 'y' : 'ies'} ${names}` : ''}, instead of once as an InitPlan`;
        const help = relation.table.via
          ? `-- the tenant of ${relation.table.schema}.${relation.table.name} comes via ${relation.table.via.parentSchema}.${relation.table.via.parentName}: each row's parent is looked up per row. Filter by ${relation.table.via.columns.join(', ')} so that few rows are read, or give the table a tenant column of its own (mode tenant) so that the check is one comparison`
          : policies.length > 0
            ? policyRewrite(facts, on, policies, relation.lead[0])
            : `-- compare ${relation.lead[0]} with an uncorrelated scalar sub-select: ${idealPredicate(facts, relation.lead[0])}`;
        push(PER_ROW_POLICY_SUBPLAN, relation, scan, message, help);
      }
    }
  }
  return out;
}

/** The fix for a role that row security does not apply to (src/rls/row-security-subjects.ts says why). */
function bypassHelp(verdict: RowSecurityVerdict, target: string, views: ExplainView[], major: number): string {
  const code = verdict.reason.code;
  // The view that reads the table, when it runs as its owner (the role the verdict is about).
  const inner = views[views.length - 1];
  const reader = inner && !(inner.view.securityInvoker && major >= 15) ? inner : undefined;
  if (reader) {
    const view = qualify(reader.schema, reader.name);
    return major >= 15
      ? `-- ${verdict.reason.message}\nALTER VIEW ${view} SET (security_invoker = true);  -- the view then reads ${target} as the caller, under its policies`
      : `-- ${verdict.reason.message}; PostgreSQL ${major} has no security_invoker (it came in 15)\nALTER VIEW ${view} OWNER TO view_owner;  -- a role the policies of ${target} apply to: NOBYPASSRLS, not its owner`;
  }
  if (code === 'owner' || code === 'owner-privileges') {
    return `-- ${verdict.reason.message}\nALTER TABLE ${target} FORCE ROW LEVEL SECURITY;  -- or plan and run as a role that does not own it`;
  }
  const attribute = code === 'superuser' ? 'NOSUPERUSER' : 'NOBYPASSRLS';
  return `-- ${verdict.reason.message}: no policy applies to it. Plan as the role the application runs as (--app-role), and run the application as one that is not\nALTER ROLE ${quoteIdent(verdict.role.name)} ${attribute};`;
}

/**
 * The relations a statement names anywhere (FROM, the target of a write, sub-queries), `schema.name`
 * or a bare name; a bare name matches the relation of that name in any schema.
 */
function namedRelations(stmt: unknown): (qualified: string) => boolean {
  const names = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const n of node) visit(n);
      return;
    }
    if (!node || typeof node !== 'object') return;
    const obj = node as Record<string, unknown>;
    // A RangeVar, wrapped as a Node or inline where the field can only hold one (InsertStmt.relation).
    const rv = (obj.RangeVar ?? ('relpersistence' in obj ? obj : undefined)) as { schemaname?: string; relname?: string } | undefined;
    if (typeof rv?.relname === 'string') names.add(rv.schemaname ? `${rv.schemaname}.${rv.relname}` : rv.relname);
    for (const v of Object.values(obj)) visit(v);
  };
  visit(stmt);
  return (qualified) => names.has(qualified) || names.has(qualified.slice(qualified.indexOf('.') + 1));
}

/** Relations scanned in a plan subtree, `schema.name`. */
function relationsIn(node: PlanNode): string[] {
  const names = new Set<string>();
  const visit = (n: PlanNode) => {
    if (n['Relation Name']) names.add(`${n.Schema ? `${n.Schema}.` : ''}${n['Relation Name']}`);
    for (const c of n.Plans ?? []) visit(c);
  };
  visit(node);
  return [...names];
}

/**
 * Whether a relation (`schema.name`, as the plan names it) is named inside
 * one of the query's own sub-queries; undefined when the query has none.
 */
function subLinkRelations(stmt: unknown): ((qualified: string) => boolean) | undefined {
  let found: Set<string> | undefined;
  const visit = (node: unknown, inSubLink: boolean): void => {
    if (Array.isArray(node)) {
      for (const n of node) visit(n, inSubLink);
      return;
    }
    if (!node || typeof node !== 'object') return;
    const obj = node as Record<string, unknown>;
    if (obj.SubLink) {
      found ??= new Set();
      visit(obj.SubLink, true);
      return;
    }
    const rv = obj.RangeVar as { schemaname?: string; relname?: string } | undefined;
    if (inSubLink && rv?.relname) found!.add(rv.schemaname ? `${rv.schemaname}.${rv.relname}` : rv.relname);
    for (const v of Object.values(obj)) visit(v, inSubLink);
  };
  visit(stmt, false);
  if (!found) return undefined;
  const names = found;
  // A bare name in the query matches the relation of that name in any schema.
  return (qualified) => names.has(qualified) || names.has(qualified.slice(qualified.indexOf('.') + 1));
}

async function tryHypothetical(
  session: PlanSession,
  catalog: ExplainCatalog,
  text: string,
  paramCount: number,
  paramTypes: string[] | undefined,
  relation: TenantRelation,
  suggestion: IndexSuggestion,
): Promise<string> {
  const schema = quoteIdent(catalog.hypopg.schema ?? 'public');
  const create = `CREATE INDEX ON ${qualify(relation.table.schema, relation.table.name)} (${suggestion.columns.map(quoteIdent).join(', ')})`;
  try {
    const plan = await session.planWith([`SELECT ${schema}.hypopg_create_index(${quoteLiteral(create)})`], text, paramCount, paramTypes);
    const used = collectScans(plan).some(
      (s) => catalog.relations.get(relationKey(s.schema, s.relation)) === relation && s.indexNames.some((n) => /^<\d+>/.test(n)) && s.access === 'index',
    );
    return used ? 'with this index as a hypothetical index, the planner uses it' : 'with this index as a hypothetical index, the planner still does not use it';
  } catch (error) {
    return `the hypothetical index could not be tried: ${(error as Error).message}`;
  } finally {
    // Hypothetical indexes live in the backend, outside any transaction.
    await session.query(`SELECT ${schema}.hypopg_reset()`).catch(() => undefined);
  }
}

/** One finding per fingerprint: a query that scans several partitions of a table is one finding about the table. */
function dedupe(findings: ExplainFinding[]): ExplainFinding[] {
  const seen = new Map<string, ExplainFinding>();
  for (const f of findings) {
    const key = `${f.fingerprint}@${f.location ? `${f.location.file}:${f.location.line}` : ''}`;
    if (!seen.has(key)) seen.set(key, f);
  }
  return [...seen.values()];
}
