import type pg from 'pg';
import { UsageError } from '../errors.js';
import type { Database } from '../db/connection.js';
import { refuseOpenTransaction } from '../db/open-transaction.js';
import { tenantLookupOfFacts, type TenantFacts } from '../facts/resolve-facts.js';
import { settingValueFor } from '../compile/tenant-lookup.js';
import type { TenantType } from '../policy/model.js';
import { loadParser } from '../policy/expression.js';
import { qualify, quoteIdent, quoteLiteral } from '../compile/quote.js';
import { fingerprintOf, type RuleMeta } from '../report/finding.js';
import type { ExplainContext, ExplainFinding, ExplainOptions, ExplainQuery, ExplainResult, QueryOutcome } from './explain-types.js';
import { inspectQuery, type PlannableKind } from './inspect-query.js';
import { PlanFailed, PlanSession, type PlannedQuery } from './plan-query.js';
import { readExplainCatalog, relationKey, type ExplainCatalog, type TenantRelation } from './read-explain-catalog.js';
import { namedRelations, planRole, type PlanRole } from './scan-security.js';
import { exp004 } from './rules/exp004-query-failed.js';
import { EXPLAIN_RULES } from './rules/registry.js';
import type { ExplainRuleContext } from './rules/rule.js';
import type { IndexSuggestion } from './suggest-index.js';
import { boundedByLead, unboundedScans } from './tenant-scan.js';
import { collectScans, planFragment, type ScanNode } from './walk-plan.js';

export type {
  ExplainContext,
  ExplainDetail,
  ExplainFinding,
  ExplainOptions,
  ExplainProblem,
  ExplainQuery,
  ExplainResult,
  QueryOutcome,
} from './explain-types.js';

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
    const catalog = await readExplainCatalog(client, facts.tenantTables, [role]);
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
      ...(facts.claim ? { settingValue: settingValueFor(tenantLookupOfFacts(facts), tenant) } : {}),
      serverVersion: catalog.serverVersion,
      major: catalog.major,
      hypopg: { ...catalog.hypopg, used: useHypopg },
    };
    const findings: ExplainFinding[] = (options.problems ?? []).map((p) => failedFinding(p.name, p.message, { file: p.file, line: p.line, column: p.column }));
    const outcomes: QueryOutcome[] = (options.problems ?? []).map((p) => ({ name: p.name, file: p.file, line: p.line, planned: false }));
    const session = await PlanSession.open(client, {
      role,
      setting: facts.setting,
      tenant,
      settingValue: context.settingValue,
      major: catalog.major,
    });
    try {
      const run: Run = { session, catalog, facts, who: planRole(catalog, role, context.policyRole), useHypopg, probes: new Map() };
      let done = 0;
      for (const query of queries) {
        const outcome = await explainOne(run, query, findings);
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
    rule: exp004.code,
    name: exp004.name,
    severity: exp004.severity,
    message: `query ${name} could not be planned: ${message}`,
    object,
    fingerprint: fingerprintOf(exp004.code, object),
    ...(location ? { location } : {}),
  };
}

/** What every query of one run shares. */
interface Run {
  session: PlanSession;
  catalog: ExplainCatalog;
  facts: TenantFacts;
  /** The role the queries are planned as, for the row-security model, and the name findings give it (the policy role). */
  who: PlanRole;
  useHypopg: boolean;
  /** The probe of each tenant table, planned once per run: the relations whose scans an index bounds, or undefined when it could not be planned. */
  probes: Map<TenantRelation, Set<string> | undefined>;
}

async function explainOne(run: Run, query: ExplainQuery, findings: ExplainFinding[]): Promise<QueryOutcome> {
  const { session, catalog, useHypopg } = run;
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
  // Probe the tables the plan reads unbounded (once per run each): does an index serve their tenant predicate?
  for (const { relation } of unboundedScans({ catalog, plans })) {
    if (!relation.table.via && !run.probes.has(relation)) run.probes.set(relation, await probe(session, catalog, relation));
  }
  const analysis = analyzeQuery(run, query, inspected.kind, inspected.stmt, plans);
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

/**
 * The probe: the tenant table read whole, `SELECT t FROM table AS t`, as the
 * app role with sequential scans and index-only scans disabled. Its only
 * conditions are the policies', and a whole-row read is no index-only scan,
 * so the planner has no index path but one whose index condition is the
 * tenant predicate: where the probe's scan is bounded by the tenant column,
 * an index serves that predicate, whatever the statistics say today
 * (docs/explain.md). The relations (partitions included) whose scans it
 * bounds; undefined when the probe cannot be planned (e.g. no SELECT privilege).
 */
async function probe(session: PlanSession, catalog: ExplainCatalog, relation: TenantRelation): Promise<Set<string> | undefined> {
  const text = `SELECT rlsctl_probe FROM ${qualify(relation.table.schema, relation.table.name)} AS rlsctl_probe`;
  try {
    const plan = await session.planWith(['SET LOCAL enable_indexonlyscan = off'], text, 0);
    const bounded = new Set<string>();
    for (const scan of collectScans(plan)) {
      if (catalog.relations.get(relationKey(scan.schema, scan.relation)) === relation && boundedByLead(scan, relation))
        bounded.add(relationKey(scan.schema, scan.relation));
    }
    return bounded;
  } catch (error) {
    if (error instanceof PlanFailed) return undefined;
    throw error;
  }
}

interface Analysed {
  finding: ExplainFinding;
  relation: TenantRelation;
  suggestion?: IndexSuggestion;
}

/** Run every rule of the registry on one planned query; one finding per fingerprint. */
function analyzeQuery(run: Run, query: ExplainQuery, kind: PlannableKind, stmt: Record<string, unknown>, plans: PlannedQuery): Analysed[] {
  const out: Analysed[] = [];
  const object = { kind: 'query' as const, name: query.name };
  const location = locationOf(query);
  const seen = new Set<string>();
  const report = (rule: RuleMeta, relation: TenantRelation, scan: ScanNode, headline: string, help: string, suggestion?: IndexSuggestion, conds = '') => {
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
  const ctx: ExplainRuleContext = {
    catalog: run.catalog,
    facts: run.facts,
    query,
    kind,
    stmt,
    plans,
    role: run.who.label,
    who: run.who,
    named: namedRelations(stmt),
    served: (scan) => {
      const relation = run.catalog.relations.get(relationKey(scan.schema, scan.relation));
      const probed = relation ? run.probes.get(relation) : undefined;
      return probed?.has(relationKey(scan.schema, scan.relation));
    },
    report,
  };
  for (const rule of EXPLAIN_RULES) rule.check?.(ctx);
  return out;
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
