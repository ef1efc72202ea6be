import type pg from 'pg';
import { performance } from 'node:perf_hooks';
import type { Database } from '../db/connection.js';
import { DatabaseError, UsageError } from '../errors.js';
import type { TenantFacts } from '../facts/resolve-facts.js';
import { fingerprintOf, type Finding, type FindingObject } from '../report/finding.js';
import { quoteIdent, quoteLiteral } from '../compile/quote.js';
import {
  avoidCollisions,
  columnLiteral,
  freshenUniques,
  insertSql,
  insertableColumns,
  rowFromResult,
  selectRowSql,
  ValueCounter,
  type FetchedRow,
  type Row,
} from './make-row.js';
import { ownerSql, tenantLiteral } from './owner-sql.js';
import { pickTenants } from './pick-tenants.js';
import { PROBE_SAVEPOINT, ProbeSession, type PgError, type ProbeOutcome } from './probe-session.js';
import { seedTenants, type SeedFailure } from './seed-tenants.js';
import { readVerifyCatalog, type VerifyCatalog, type VerifyFunction, type VerifyRelation } from './verify-catalog.js';
import { LEAK_RULES, verifyRule, type VerifyRuleCode } from './verify-rules.js';
import { errorText, revealer, type Reveal } from './hide-values.js';
import { readSubjectRoles } from '../catalog/read-subject-roles.js';
import type { SubjectRole } from '../rls/row-security-subjects.js';
import { rowSecurityHelp } from './row-security-help.js';

/**
 * `rlsctl verify`: prove isolation by trying to break it. For every tenant
 * table, partition (read directly), view, materialized view and SECURITY
 * DEFINER function an app role can reach, act as each app role and try every
 * way across the tenant boundary, inside one transaction that is rolled back
 * (see ProbeSession). The order of the phases is forced by PostgreSQL:
 *
 * 1. no tenant, fresh session: the setting has never been touched, so
 *    current_setting(name) raises "unrecognized configuration parameter"
 *    and current_setting(name, true) returns NULL;
 * 2. no tenant, after a transaction-local tenant ended: once set_config(...,
 *    true) has run, the placeholder stays and reads as '' (empty string) for
 *    the rest of the session, also after the (sub)transaction that set it is
 *    rolled back; a cast of '' to uuid or bigint raises an error;
 * 3. as each tenant: read, insert, update, move, delete across the boundary.
 */

export interface VerifyOptions {
  /** Tenants to act as (`--tenant`); default: two tenants that own rows, else synthetic ones. */
  tenants?: string[];
  /** The `tenants` were written by the pre-merge seeding, not named by the user: reported as synthetic. */
  tenantsAreSynthetic?: boolean;
  /** Per probe statement (default 10 s): a probe cannot hang. */
  statementTimeoutMs?: number;
  /** Per lock wait (default 2 s): a probe never queues behind the application for long. */
  lockTimeoutMs?: number;
  /**
   * Findings may quote the values of rows (the rows verify copies from the
   * tenants, other tenants' ids, values in server errors): `--show-values`.
   * Default false: they name tables, columns and types only (hide-values.ts).
   */
  showValues?: boolean;
  /** What verify is doing, as a line for people and as data (the CLI draws it on a terminal). */
  onProgress?: (line: string, event: VerifyProgress) => void;
}

/** The three passes over the relations, in the order PostgreSQL forces (see above). */
export const VERIFY_PASSES = ['no tenant, fresh session', 'no tenant, after a transaction-local tenant ended', 'as each tenant'] as const;

export type VerifyProgress =
  /** What will be probed, once the tenants are picked and their rows written. */
  | { kind: 'start'; relations: number; roles: string[]; tenants: string[] }
  /** `done` of `total` relations (and functions) finished in pass `pass` (1 to 3); `current` is the one being probed. */
  | { kind: 'relations'; pass: number; passes: number; done: number; total: number; current?: string };

export interface VerifyResult {
  findings: Finding[];
  /** Relations and functions probed. */
  relations: number;
  /** Probe statements run as an app role. */
  probes: number;
  /** Findings of VER001, VER002, VER004, VER005, VER006. */
  leaks: number;
  tenants: string[];
  tenantOrigin: Array<'given' | 'data' | 'synthetic'>;
  roles: string[];
  /** Rows written (and rolled back) so that both tenants own rows everywhere. */
  seeded: number;
  /** Probes that did not run or could not decide (each is in `skips`, with its reason). */
  skipped: number;
  /** What verify did not prove: one entry per probe skipped, as each role and tenant. */
  skips: VerifySkip[];
  /**
   * Views and materialized views whose probes as each tenant proved nothing:
   * a relation they read has no row of a tenant and verify could not write
   * one (and no leak was found anyway). Their skipped probes are in `skips`.
   */
  unprobedViews: Array<{ schema: string; name: string; tables: string[] }>;
  durationMs: number;
  /**
   * Relations an app role holds privileges on but cannot reach, for want of
   * USAGE on their schema: not probed (no query of the role can touch them,
   * so nothing leaks there), but the application cannot use them either.
   */
  unreachable: Array<{ schema: string; name: string; role: string }>;
  /** The role verify connected as: it writes the tenants' rows (and bypasses row level security). */
  connectingRole: string;
  /**
   * Probed tables (and partitions) with user triggers that fire (enabled,
   * not internal): the rows verify writes for the tenants are inserted as
   * `connectingRole`, so these triggers run with its rights.
   */
  triggers: Array<{ schema: string; name: string; triggers: string[] }>;
}

/** A probe that did not run or could not decide. */
export interface VerifySkip {
  schema: string;
  name: string;
  kind: FindingObject['kind'];
  role?: string;
  /** read, insert, update, move, delete, no-context, rows. */
  probe: string;
  /** The tenant it would have acted as (or written a row for). */
  tenant?: string;
  reason: string;
}

type Target = { kind: 'relation'; rel: VerifyRelation } | { kind: 'function'; fn: VerifyFunction };

type Progress = (line: string, event: VerifyProgress) => void;
/** Called before each target of a pass (with the number done so far) and once after the last. */
type Step = (done: number, current?: Target) => void;

const ROW_LIMIT = 200;

export async function runVerify(db: Database, facts: TenantFacts, options: VerifyOptions = {}): Promise<VerifyResult> {
  const started = performance.now();
  const setting = facts.setting;
  if (!setting) {
    throw new UsageError('verify needs the tenant setting, and none is known', { hint: 'name it with --tenant-setting, or use a policy file' });
  }
  if (facts.appRoles.length === 0) {
    throw new UsageError('verify needs the app roles to act as, and none is known', { hint: 'name them with --app-role, or use a policy file' });
  }
  const progress: Progress = options.onProgress ?? (() => undefined);
  const client = await db.connect();
  // A session the server ends (a probe that kills it, a restart) fails the pending query; without a
  // listener the client's 'error' event would also crash the process.
  client.on('error', () => undefined);
  let open = false;
  try {
    const connectingRole = await preflight(client, facts.appRoles);
    const catalog = await readVerifyCatalog(client, facts, setting);
    const picked = await pickTenants(client, catalog, facts.tenantType, options.tenants ?? []);
    const tenants = picked.tenants;
    if (options.tenantsAreSynthetic) picked.origin = picked.origin.map((o) => (o === 'given' ? 'synthetic' : o));
    const counter = new ValueCounter();
    const book = new FindingBook(catalog, await readSubjectRoles(client, facts.appRoles), await serverMajor(client));

    await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
    open = true;
    await client.query(
      `SET LOCAL statement_timeout = ${Math.max(1, Math.floor(options.statementTimeoutMs ?? 10_000))}; SET LOCAL lock_timeout = ${Math.max(1, Math.floor(options.lockTimeoutMs ?? 2_000))}`,
    );
    const showValues = options.showValues ?? false;
    const seed = await seedTenants(client, catalog, tenants, counter, showValues);
    await client.query(`SAVEPOINT ${PROBE_SAVEPOINT}`);
    for (const failure of seed.failures) book.seedFailure(failure);

    const session = new ProbeSession(client, setting, catalog.loginDefaults);
    const targets = targetsOf(catalog, facts.appRoles);
    // Read before the first probe: afterwards the session may stand in a probe's role or failed subtransaction.
    const triggers = await triggersOf(client, targets);
    progress(
      `verify: ${targets.length} relation${targets.length === 1 ? '' : 's'}, app role${facts.appRoles.length === 1 ? '' : 's'} ${facts.appRoles.join(', ')}, tenants ${tenants
        .map((t, i) => `${t} (${picked.origin[i]})`)
        .join(' and ')}${seed.written > 0 ? `; ${seed.written} row${seed.written === 1 ? '' : 's'} written for them inside the rolled-back transaction` : ''}`,
      { kind: 'start', relations: targets.length, roles: facts.appRoles, tenants },
    );

    const probe = new Prober(session, catalog, book, setting, tenants, counter, seed.failures, showValues);
    const step = (pass: number) => (done: number, current?: Target) => {
      const total = targets.length;
      const name = current ? labelOf(current, catalog) : undefined;
      progress(
        `verify: pass ${pass}/${VERIFY_PASSES.length} (${VERIFY_PASSES[pass - 1]}): ${done} of ${total} relation${total === 1 ? '' : 's'} done${name ? `, probing ${name}` : ''}`,
        { kind: 'relations', pass, passes: VERIFY_PASSES.length, done, total, current: name },
      );
    };
    // Phase 1: a session in which the tenant setting was never set.
    const fresh = await probe.noContext(targets, 'in a fresh session', step(1));
    // Phase 2: after a transaction that set the tenant locally ended.
    await session.connecting(`SELECT pg_catalog.set_config(${quoteLiteral(setting)}, ${quoteLiteral(tenants[0])}, true)`);
    await probe.noContext(targets, 'after a transaction-local tenant ended', step(2));
    // Phase 3: as each tenant.
    await probe.asTenants(targets, fresh, step(3));

    const findings = book.findings(setting, facts);
    const unreachable = catalog.relations.flatMap((rel) =>
      facts.appRoles.filter((role) => rel.privileges.get(role)?.noSchemaUsage).map((role) => ({ schema: rel.schema, name: rel.name, role })),
    );
    return {
      connectingRole,
      triggers,
      unreachable,
      findings,
      relations: targets.length,
      probes: session.probes,
      leaks: findings.filter((f) => LEAK_RULES.has(f.rule)).length,
      tenants,
      tenantOrigin: picked.origin,
      roles: facts.appRoles,
      seeded: seed.written,
      skipped: book.skips.length,
      skips: book.skips,
      unprobedViews: probe.unprobedViews,
      durationMs: Math.round(performance.now() - started),
    };
  } finally {
    if (open) await client.query('ROLLBACK').catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}

/**
 * The connecting role must see every row (superuser or BYPASSRLS: it writes
 * the rows of both tenants and knows the true owner of a row) and must be
 * able to SET ROLE to every app role (PostgreSQL 16+: a grant WITH SET; 14
 * and 15: membership).
 */
async function preflight(client: pg.Client, roles: string[]): Promise<string> {
  const { rows } = await client.query<{ me: string; super: boolean; bypass: boolean; missing: string[] }>(
    `SELECT r.rolname AS me, r.rolsuper AS super, r.rolbypassrls AS bypass,
            ARRAY(SELECT x FROM unnest($1::text[]) AS x WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles o WHERE o.rolname = x) ORDER BY 1) AS missing
       FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`,
    [roles],
  );
  const me = rows[0];
  if (me.missing.length > 0) {
    throw new UsageError(
      `the app role${me.missing.length === 1 ? '' : 's'} ${me.missing.join(', ')} do${me.missing.length === 1 ? 'es' : ''} not exist in this database`,
      {
        hint: 'create the roles (or fix roles.app in the policy file / --app-role) and run again',
      },
    );
  }
  const cannot: Array<{ role: string; reason: string }> = [];
  await client.query('BEGIN');
  try {
    for (const role of roles) {
      await client.query('SAVEPOINT rlsctl_role');
      try {
        await client.query(`SET LOCAL ROLE ${quoteIdent(role)}`);
      } catch (error) {
        cannot.push({ role, reason: (error as Error).message });
      }
      await client.query('ROLLBACK TO SAVEPOINT rlsctl_role');
    }
  } finally {
    await client.query('ROLLBACK');
  }
  const missing: string[] = [];
  if (cannot.length > 0) {
    missing.push(`${me.me} cannot SET ROLE to ${cannot.map((c) => c.role).join(', ')} (${cannot[0].reason})`);
  }
  if (!me.super && !me.bypass) missing.push(`${me.me} is neither a superuser nor BYPASSRLS, so it cannot see or write the rows of both tenants`);
  if (missing.length > 0) {
    const grants = cannot.map((c) => `GRANT ${quoteIdent(c.role)} TO ${quoteIdent(me.me)};`);
    throw new DatabaseError(`verify cannot act as the app roles: ${missing.join('; ')}`, {
      hint: [
        'verify connects as a role that bypasses row level security and switches to each app role with SET ROLE; as a superuser:',
        ...grants.map((g) => `  ${g}   -- PostgreSQL 16+: ... WITH INHERIT FALSE, SET TRUE`),
        ...(!me.super && !me.bypass ? [`  ALTER ROLE ${quoteIdent(me.me)} BYPASSRLS;   -- or connect as the migration role or a superuser`] : []),
      ].join('\n'),
    });
  }
  return me.me;
}

async function serverMajor(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ num: string }>("SELECT pg_catalog.current_setting('server_version_num') AS num");
  return Math.floor(Number(rows[0].num) / 10000);
}

/**
 * User triggers that fire in an ordinary session (tgenabled O or A; not the
 * internal ones of foreign keys) on the probed tables and partitions: the
 * rows verify writes for the tenants run them as the connecting role.
 */
async function triggersOf(client: pg.Client, targets: Target[]): Promise<VerifyResult['triggers']> {
  const rels = targets.flatMap((t) => (t.kind === 'relation' && (t.rel.kind === 'table' || t.rel.kind === 'partition') ? [t.rel] : []));
  if (rels.length === 0) return [];
  const { rows } = await client.query<{ oid: string; names: string[] }>(
    `SELECT t.tgrelid::text AS oid, array_agg(t.tgname::text ORDER BY t.tgname) AS names
       FROM pg_catalog.pg_trigger t
      WHERE t.tgrelid = ANY ($1::pg_catalog.oid[]) AND NOT t.tgisinternal AND t.tgenabled IN ('O', 'A')
      GROUP BY t.tgrelid`,
    [rels.map((r) => r.oid)],
  );
  const byOid = new Map(rows.map((r) => [Number(r.oid), r.names]));
  return rels
    .filter((r) => byOid.has(r.oid))
    .map((r) => ({ schema: r.schema, name: r.name, triggers: byOid.get(r.oid)! }))
    .sort((a, b) => `${a.schema}.${a.name}`.localeCompare(`${b.schema}.${b.name}`));
}

function targetsOf(catalog: VerifyCatalog, roles: string[]): Target[] {
  const reaches = (rel: VerifyRelation) =>
    roles.some((r) => {
      const p = rel.privileges.get(r);
      return p && (p.select || p.insert || p.update || p.delete);
    });
  const rels = catalog.relations.filter(reaches).map((rel) => ({ kind: 'relation' as const, rel }));
  const fns = catalog.functions.map((fn) => ({ kind: 'function' as const, fn }));
  return [...rels, ...fns];
}

// ---------------------------------------------------------------------------

interface Hit {
  rule: VerifyRuleCode;
  object: FindingObject;
  target?: Target;
  role?: string;
  /** Distinguishes findings of the same rule, object and role (VER010). */
  extra?: string;
  /** One detail per way the rule was broken (update vs move), in order. */
  details: Map<string, string>;
  /** VER002 / VER003: the no-tenant states it happened in. */
  states: string[];
  statement?: string;
  /** VER003: the error in each state. */
  errors: Map<string, string>;
}

function objectOf(target: Target): FindingObject {
  if (target.kind === 'function') return { kind: 'function', schema: target.fn.schema, name: target.fn.name };
  return { kind: target.rel.kind, schema: target.rel.schema, name: target.rel.name };
}

function labelOf(target: Target, catalog?: VerifyCatalog): string {
  if (target.kind === 'function') return `function ${target.fn.schema}.${target.fn.name}()`;
  const rel = target.rel;
  const name = `${rel.schema}.${rel.name}`;
  switch (rel.kind) {
    case 'partition': {
      const parent = rel.parentOid !== undefined ? catalog?.byOid.get(rel.parentOid) : undefined;
      return `partition ${name}${parent ? ` of ${parent.schema}.${parent.name}` : ''} (read directly)`;
    }
    case 'view':
      return `view ${name}`;
    case 'materialized_view':
      return `materialized view ${name}`;
    case 'foreign_table':
      return `foreign table ${name}`;
    case 'table':
      return name;
  }
}

class FindingBook {
  private hits = new Map<string, Hit>();
  readonly skips: VerifySkip[] = [];

  /** A probe that did not run or could not decide: counted in the summary (and `--strict` fails on it). */
  skip(target: Target, role: string | undefined, probe: string, tenant: string | undefined, reason: string): void {
    const { kind, schema, name } = objectOf(target);
    this.skips.push({ schema: schema ?? '', name, kind, ...(role ? { role } : {}), probe, ...(tenant ? { tenant } : {}), reason });
  }

  /** A leak (VER001, VER002, VER004-VER006) was found on the target. */
  hasLeak(target: Target): boolean {
    const object = objectOf(target);
    return [...this.hits.values()].some(
      (h) => LEAK_RULES.has(h.rule) && h.object.kind === object.kind && h.object.schema === object.schema && h.object.name === object.name,
    );
  }

  constructor(
    private readonly catalog: VerifyCatalog,
    /** The app roles as the row-security model sees them (src/rls/row-security-subjects.ts). */
    private readonly subjects: Map<string, SubjectRole> = new Map(),
    private readonly serverMajor = 15,
  ) {}
  private seedFailures = new Map<number, SeedFailure[]>();

  seedFailure(failure: SeedFailure): void {
    const list = this.seedFailures.get(failure.relation.oid) ?? [];
    list.push(failure);
    this.seedFailures.set(failure.relation.oid, list);
    const target: Target = { kind: 'relation', rel: failure.relation };
    this.add(
      'VER010',
      target,
      undefined,
      'rows',
      `rows:${failure.tenant}`,
      `verify could not write a row of tenant ${failure.tenant} into it, so the probes that need one were skipped: ${failure.reason}`,
    );
  }

  hasSeedFailure(oid: number): boolean {
    return this.seedFailures.has(oid);
  }

  /** Record that `rule` was broken; the first detail of each `way` is kept. */
  add(rule: VerifyRuleCode, target: Target, role: string | undefined, extra: string | undefined, way: string, detail: string, statement?: string): Hit {
    const object = objectOf(target);
    const key = fingerprintOf(rule, object, [role, extra].filter(Boolean).join(':') || undefined);
    let hit = this.hits.get(key);
    if (!hit) {
      hit = { rule, object, target, role, extra, details: new Map(), states: [], statement, errors: new Map() };
      this.hits.set(key, hit);
    }
    if (!hit.details.has(way)) hit.details.set(way, statement ? `${detail}: ${statement}` : detail);
    return hit;
  }

  noContext(rule: 'VER002' | 'VER003', target: Target, role: string, state: string, statement: string, error?: string): void {
    const hit = this.add(rule, target, role, undefined, 'no-context', '', statement);
    if (!hit.states.includes(state)) hit.states.push(state);
    hit.statement = statement;
    if (error && !hit.errors.has(state)) hit.errors.set(state, error);
  }

  /** A leak of a role that row security does not hold (it bypasses it, or a view reads as the role): that fix first. */
  private rowSecurityHelp(hit: Hit): string | undefined {
    if (!LEAK_RULES.has(hit.rule) || hit.target?.kind !== 'relation' || !hit.role) return undefined;
    return rowSecurityHelp(this.catalog, hit.target.rel, this.subjects.get(hit.role), this.serverMajor);
  }

  findings(setting: string, facts: TenantFacts): Finding[] {
    return [...this.hits.values()].map((hit) => {
      const meta = verifyRule(hit.rule);
      const label = hit.target ? labelOf(hit.target, this.catalog) : hit.object.name;
      let message: string;
      if (hit.rule === 'VER002') {
        message = `${hit.role} sees rows of ${label} with no tenant set (${hit.states.join('; and ')}): ${hit.statement}`;
      } else if (hit.rule === 'VER003') {
        const errors = [...hit.errors].map(([state, error]) => `${state}: ${error}`).join('; ');
        message = `${hit.role}'s query on ${label} fails with no tenant set instead of returning zero rows (${errors}): ${hit.statement}`;
      } else {
        message = [...hit.details.values()].join('; ');
        if (hit.rule === 'VER010' && hit.role) message = `${label}, as ${hit.role}: ${message}`;
        else if (hit.rule === 'VER010') message = `${label}: ${message}`;
      }
      const finding: Finding = {
        rule: meta.code,
        name: meta.name,
        severity: meta.severity,
        message,
        object: hit.object,
        fingerprint: fingerprintOf(hit.rule, hit.object, [hit.role, hit.extra].filter(Boolean).join(':') || undefined),
      };
      const help = hit.target ? (this.rowSecurityHelp(hit) ?? helpFor(hit.rule, hit.target, hit.role, setting, facts, this.catalog)) : undefined;
      if (help) finding.help = help;
      return finding;
    });
  }
}

function helpFor(
  rule: VerifyRuleCode,
  target: Target,
  role: string | undefined,
  setting: string,
  facts: TenantFacts,
  catalog: VerifyCatalog,
): string | undefined {
  const current = `(SELECT NULLIF(pg_catalog.current_setting(${quoteLiteral(setting)}, true), '')::${facts.tenantType})`;
  if (target.kind === 'function') {
    const fn = target.fn;
    if (rule === 'VER001' || rule === 'VER002') {
      return `ALTER FUNCTION ${fn.sql} SECURITY INVOKER;  -- or filter by ${current} inside it\nREVOKE EXECUTE ON FUNCTION ${fn.sql} FROM ${role ? quoteIdent(role) : 'PUBLIC'};  -- if the app does not need it`;
    }
    if (rule === 'VER003') return `read the setting with current_setting(${quoteLiteral(setting)}, true) and NULLIF(..., '') before any cast, inside ${fn.sql}`;
    return undefined;
  }
  const rel = target.rel;
  const column = rel.tenantColumn ?? rel.viewTenantColumn;
  const parent = rel.via ? catalog.byOid.get(rel.via.parentOid) : undefined;
  const predicate =
    rel.via && parent
      ? `EXISTS (SELECT 1 FROM ${parent.sql} AS p WHERE ${rel.via.columns.map((c, i) => `p.${quoteIdent(rel.via!.references[i])} = ${quoteIdent(rel.name)}.${quoteIdent(c)}`).join(' AND ')})`
      : column
        ? `${quoteIdent(column)} = ${current}`
        : `the tenant column = ${current}`;
  if (rel.kind === 'view' && (rule === 'VER001' || rule === 'VER002')) {
    return `ALTER VIEW ${rel.sql} SET (security_invoker = on);  -- PostgreSQL 15+: the view then reads as the app role, under its policies\n-- PostgreSQL 14: REVOKE SELECT ON ${rel.sql} FROM ${role ? quoteIdent(role) : 'PUBLIC'}, or filter by ${current} in the view`;
  }
  if (rel.kind === 'materialized_view' && (rule === 'VER001' || rule === 'VER002')) {
    return `REVOKE SELECT ON ${rel.sql} FROM ${role ? quoteIdent(role) : 'PUBLIC'};  -- a materialized view cannot have row level security; serve it through a security_invoker view that filters by ${current}`;
  }
  switch (rule) {
    case 'VER001':
    case 'VER004':
    case 'VER005':
    case 'VER006': {
      const what = { VER001: 'SELECT (USING)', VER004: 'INSERT (WITH CHECK)', VER005: 'UPDATE (USING and WITH CHECK)', VER006: 'DELETE (USING)' }[rule];
      const partition =
        rel.kind === 'partition'
          ? " A partition read directly is protected by its own policies, not its parent's: rlsctl apply gives every partition the parent's."
          : '';
      return `the ${what} policies of ${rel.sql} for ${role} must hold ${predicate}; run rlsctl audit for the hole and rlsctl apply to fix it.${partition}`;
    }
    case 'VER002':
      return `compare with ${current} in every policy of ${rel.sql}: an unset or empty setting then admits no row`;
    case 'VER003':
      return `read the setting with current_setting(${quoteLiteral(setting)}, true) and wrap it in NULLIF(..., '') before the cast, in the policies of ${rel.sql} (as rlsctl compile writes them)`;
    case 'VER010':
      return undefined;
  }
}

// ---------------------------------------------------------------------------

/** How a write attempt ended. */
type WriteOutcome = { kind: 'crossed'; rows: number; note: string } | { kind: 'blocked' } | { kind: 'undecided'; error: PgError };

/**
 * Row level security is checked before the table's own constraints: for an
 * INSERT or UPDATE, PostgreSQL runs the WITH CHECK policies (ExecWithCheckOptions)
 * before NOT NULL and CHECK constraints, unique indexes and the foreign keys
 * (after-row triggers); a DELETE's foreign keys fire after the row is gone.
 * So a constraint error means the policies had already admitted the write:
 * it crossed, and only the data stopped this one row. A partition routing or
 * partition constraint error (23514 without a constraint name) comes before
 * the policies and decides nothing.
 */
function classifyWrite(outcome: ProbeOutcome, show: boolean, row?: Row): WriteOutcome {
  if (outcome.ok) return (outcome.result.rowCount ?? 0) > 0 ? { kind: 'crossed', rows: outcome.result.rowCount ?? 0, note: '' } : { kind: 'blocked' };
  const e = outcome.error;
  if (e.code === '42501') return { kind: 'blocked' };
  const admitted = ['23502', '23503', '23505', '23P01'].includes(e.code) || (e.code === '23514' && Boolean(e.constraint));
  if (admitted)
    return {
      kind: 'crossed',
      rows: 0,
      note: ` (the row policies admitted it; only ${e.constraint ? `the constraint ${e.constraint}` : 'a NOT NULL constraint'} stopped this particular row: ${errorText({ message: e.message }, show, row)})`,
    };
  return { kind: 'undecided', error: e };
}

/** Errors that say nothing about the tenant context: no privilege, a matview never refreshed, a timeout. */
function notAboutContext(e: PgError): boolean {
  return e.code === '42501' || e.code === '55000' || e.code === '57014' || e.code === '55P03';
}

interface Result {
  rows: string[];
}

class Prober {
  private readonly pairs: Array<[string, string]>;
  readonly unprobedViews: VerifyResult['unprobedViews'] = [];

  constructor(
    private readonly session: ProbeSession,
    private readonly catalog: VerifyCatalog,
    private readonly book: FindingBook,
    private readonly setting: string,
    private readonly tenants: string[],
    private readonly counter: ValueCounter,
    private readonly seedFailures: SeedFailure[],
    private readonly showValues: boolean,
  ) {
    this.pairs = tenants.map((a, i) => [a, tenants[(i + 1) % tenants.length]] as [string, string]);
  }

  /** A server error for a finding: values hidden unless --show-values (hide-values.ts). */
  private errorText(e: PgError, row?: Row): string {
    return errorText(e, this.showValues, row);
  }

  /** Which values a statement shown in a finding prints (the tenant column's only, unless --show-values). */
  private reveal(rel: VerifyRelation): Reveal {
    return revealer(this.showValues, rel.tenantColumn);
  }

  /** An owner found in a row: a tenant verify acts as is named (the header names them); another tenant's id only with --show-values. */
  private tenantName(owner: string): string {
    return this.showValues || this.tenants.includes(owner) ? `tenant ${owner}` : 'another tenant (one verify does not act as; --show-values names it)';
  }

  private rolesFor(target: Target, need: 'select' | 'any'): string[] {
    if (target.kind === 'function') return target.fn.executableBy;
    return [...target.rel.privileges]
      .filter(([, p]) => (need === 'select' ? p.select : p.select || p.insert || p.update || p.delete))
      .map(([role]) => role)
      .sort();
  }

  /** VER002 / VER003 in the session's current no-tenant state; returns the result sets of views and functions. */
  async noContext(targets: Target[], state: string, step: Step = () => undefined): Promise<Map<string, Result>> {
    const results = new Map<string, Result>();
    for (const [i, target] of targets.entries()) {
      step(i, target);
      for (const role of this.rolesFor(target, 'select')) {
        const { sql, shows } = this.noContextSql(target);
        const outcome = await this.session.as(role, null, sql);
        if (!outcome.ok) {
          if (notAboutContext(outcome.error)) {
            this.skipped(
              target,
              role,
              'no-context',
              undefined,
              `the query with no tenant set failed for a reason that is not the tenant context: ${this.errorText(outcome.error)}`,
              sql,
            );
          } else {
            this.book.noContext('VER003', target, role, state, sql, this.errorText(outcome.error));
          }
          continue;
        }
        const rows = outcome.result.rows as Array<Record<string, string | null>>;
        if (shows === 'result') {
          results.set(resultKey(target, role), { rows: rows.map((r) => r.j ?? 'null') });
          const visible = rows.filter((r) => this.tenantValuesIn(r.j).some((v) => v !== null));
          if (visible.length > 0) this.book.noContext('VER002', target, role, state, sql);
        } else if (rows.length > 0) {
          this.book.noContext('VER002', target, role, state, sql);
        }
      }
    }
    step(targets.length);
    return results;
  }

  private noContextSql(target: Target): { sql: string; shows: 'rows' | 'result' } {
    if (target.kind === 'function') return { sql: functionSql(target.fn), shows: 'result' };
    const rel = target.rel;
    if (rel.kind === 'view' || rel.kind === 'materialized_view') {
      if (rel.viewTenantColumn) {
        const c = quoteIdent(rel.viewTenantColumn);
        return { sql: `SELECT v.${c}::text AS rlsctl_owner FROM ${rel.sql} AS v WHERE v.${c} IS NOT NULL LIMIT 1`, shows: 'rows' };
      }
      return { sql: viewResultSql(rel), shows: 'result' };
    }
    return { sql: `SELECT 1 AS rlsctl_row FROM ${rel.sql} AS r LIMIT 1`, shows: 'rows' };
  }

  /** Values of tenant columns in a JSON row (a view's or function's result). */
  private tenantValuesIn(json: string | null): Array<string | null> {
    if (json === null) return [];
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch {
      return [];
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return [];
    const names = new Set(this.catalog.tenantColumns.map((c) => c.name));
    return Object.entries(value as Record<string, unknown>)
      .filter(([k]) => names.has(k))
      .map(([, v]) => (v === null || v === undefined ? null : String(v)));
  }

  async asTenants(targets: Target[], noTenant: Map<string, Result>, step: Step = () => undefined): Promise<void> {
    for (const [i, target] of targets.entries()) {
      step(i, target);
      if (target.kind === 'function') await this.probeResults(target, noTenant);
      else if (target.rel.kind === 'view' || target.rel.kind === 'materialized_view') {
        if (target.rel.viewTenantColumn) await this.probeViewWithTenantColumn(target);
        else await this.probeResults(target, noTenant);
        this.unseededView(target);
      } else await this.probeTable(target);
    }
    step(targets.length);
  }

  // -- tables and partitions ---------------------------------------------------

  private async probeTable(target: Target & { kind: 'relation' }): Promise<void> {
    const rel = target.rel;
    const owner = ownerSql(this.catalog, rel, 'r');
    if (!owner) return;
    const rows = new Map<string, FetchedRow | undefined>();
    const writable = rel.kind !== 'foreign_table';
    if (writable) {
      for (const tenant of this.tenants) {
        const { rows: found } = await this.session.connecting(selectRowSql(rel, rel.sql, 'r', `${owner.sql} = ${tenantLiteral(tenant, owner.type)}`));
        rows.set(tenant, found[0] ? rowFromResult(rel, found[0]) : undefined);
      }
    }
    for (const role of this.rolesFor(target, 'any')) {
      const priv = rel.privileges.get(role)!;
      for (const [a, b] of this.pairs) {
        const rowA = rows.get(a);
        const rowB = rows.get(b);
        // Reading across proves something only when the other tenant has a row there to be read.
        if (priv.select && (await this.probeRead(target, role, a, owner)) === 'clean' && writable && !rowB) this.missingRow(target, role, 'read', b);
        if (!writable) continue;
        if (priv.insert) {
          if (rowB) await this.probeInsert(target, role, a, b, rowB);
          else this.missingRow(target, role, 'insert', b);
        }
        if (priv.update) {
          if (rowB) await this.probeUpdateOther(target, role, a, b, rowB);
          else this.missingRow(target, role, 'update', b);
          if (rowA && rowB) await this.probeMove(target, role, a, b, rowA, rowB);
          else this.missingRow(target, role, 'move', rowA ? b : a);
        }
        if (priv.delete) {
          if (rowB) await this.probeDelete(target, role, a, b, rowB);
          else this.missingRow(target, role, 'delete', b);
        }
      }
    }
  }

  /**
   * A view that reads a relation in which verify could not write a row of a
   * tenant: a clean result as each tenant proves nothing (that tenant's rows
   * are missing from it), so unless a leak was found its tenant probes count
   * as skipped and the view is listed.
   */
  private unseededView(target: Target & { kind: 'relation' }): void {
    const reads = target.rel.reads.map((oid) => this.catalog.byOid.get(oid)).filter((r): r is VerifyRelation => r !== undefined);
    const failures = this.seedFailures.filter((f) => reads.some((r) => f.relation.oid === r.oid || this.descendsFrom(f.relation, r)));
    if (failures.length === 0 || this.book.hasLeak(target)) return;
    const tables = [...new Set(failures.map((f) => `${f.relation.schema}.${f.relation.name}`))].sort();
    this.unprobedViews.push({ schema: target.rel.schema, name: target.rel.name, tables });
    for (const role of this.rolesFor(target, 'select')) {
      for (const f of failures) {
        this.skipped(
          target,
          role,
          'read',
          f.tenant,
          `it reads ${f.relation.schema}.${f.relation.name}, which has no row of tenant ${f.tenant} (verify could not write one), so reading it as each tenant proves nothing`,
        );
      }
    }
  }

  private missingRow(target: Target & { kind: 'relation' }, role: string, probe: string, tenant: string): void {
    // A row verify tried to write and could not is reported once, by the seeding; the probe still counts as skipped.
    const failure = this.seedFailures.find((f) => f.tenant === tenant && (f.relation.oid === target.rel.oid || this.descendsFrom(f.relation, target.rel)));
    if (failure) {
      this.skipped(
        target,
        role,
        probe,
        tenant,
        `no row of tenant ${tenant}: verify could not write one into ${failure.relation.schema}.${failure.relation.name} (${failure.reason})`,
        undefined,
        false,
      );
      return;
    }
    const noPartition = !target.rel.storage && !this.catalog.relations.some((r) => r.parentOid === target.rel.oid);
    const reason = noPartition
      ? `no partition to hold a row, so the ${probe} probe was skipped`
      : `no row of tenant ${tenant} to ${probe === 'insert' ? 'copy' : probe === 'read' ? 'read across to' : 'target'}, so the ${probe} probe was skipped`;
    this.skipped(target, role, probe, tenant, reason);
  }

  /** A probe that did not run or could not decide: a VER010 finding (unless another one already says why) and a counted skip. */
  private skipped(target: Target, role: string, probe: string, tenant: string | undefined, reason: string, statement?: string, finding = true): void {
    if (finding) this.book.add('VER010', target, role, probe, probe, reason, statement);
    this.book.skip(target, role, probe, tenant, reason);
  }

  private descendsFrom(rel: VerifyRelation, ancestor: VerifyRelation): boolean {
    let current: VerifyRelation | undefined = rel;
    while (current?.parentOid !== undefined) {
      if (current.parentOid === ancestor.oid) return true;
      current = this.catalog.byOid.get(current.parentOid);
    }
    return false;
  }

  private async probeRead(
    target: Target & { kind: 'relation' },
    role: string,
    a: string,
    owner: { sql: string; type: string },
  ): Promise<'leak' | 'clean' | 'failed'> {
    const rel = target.rel;
    const sql = `SELECT (${owner.sql})::text AS rlsctl_owner, r.tableoid::pg_catalog.regclass::text AS rlsctl_rel, r.ctid::text AS rlsctl_ctid FROM ${rel.sql} AS r WHERE (${owner.sql}) IS DISTINCT FROM ${tenantLiteral(a, owner.type)} LIMIT 5`;
    const outcome = await this.session.as(role, a, sql);
    if (!outcome.ok) {
      this.skipped(target, role, 'read', a, `the read probe as tenant ${a} failed: ${this.errorText(outcome.error)}`, sql);
      return 'failed';
    }
    const found = outcome.result.rows as Array<{ rlsctl_owner: string | null; rlsctl_rel: string; rlsctl_ctid: string }>;
    if (found.length === 0) return 'clean';
    let owners = found.map((r) => r.rlsctl_owner);
    if (rel.via) {
      // As the app role a hidden parent reads as NULL: ask the connecting role who really owns these rows.
      const truth = ownerSql(this.catalog, rel, 'r')!;
      const tids = `ARRAY[${found.map((r) => quoteLiteral(r.rlsctl_ctid)).join(', ')}]::pg_catalog.tid[]`;
      const { rows: real } = await this.session.connecting(
        `SELECT (${truth.sql})::text AS owner, r.tableoid::pg_catalog.regclass::text AS rel, r.ctid::text AS ctid FROM ${rel.sql} AS r WHERE r.ctid = ANY (${tids})`,
      );
      const wanted = new Set(found.map((r) => `${r.rlsctl_rel}@${r.rlsctl_ctid}`));
      owners = real
        .filter((r) => wanted.has(`${r.rel}@${r.ctid}`))
        .map((r) => r.owner as string | null)
        .filter((o) => o !== a);
      if (owners.length === 0) return 'clean';
    }
    const whose = owners[0] === null ? 'a row that belongs to no tenant' : `a row of ${this.tenantName(owners[0])}`;
    this.book.add('VER001', target, role, undefined, 'read', `${role} acting as tenant ${a} reads ${whose} in ${labelOf(target, this.catalog)}`, sql);
    return 'leak';
  }

  /** The row a probe writes for tenant `b`: a copy of b's row, with fresh unique values (none a row already holds). */
  private async probeRow(rel: VerifyRelation, rowB: FetchedRow): Promise<Row> {
    const row: Row = new Map(rowB.values);
    const pinned = new Set<string>([
      ...(rel.tenantColumn ? [rel.tenantColumn] : []),
      ...(rel.via?.columns ?? []),
      ...rel.foreignKeys.flatMap((k) => k.columns),
      ...this.partitionKeys(rel),
    ]);
    freshenUniques(rel, row, pinned, this.counter);
    // Best effort: a row that still collides is decided all the same (the policies run before the unique index).
    await avoidCollisions(async (sql) => (await this.session.connecting(sql)).rows, rel, row, pinned, this.counter);
    return row;
  }

  private partitionKeys(rel: VerifyRelation): string[] {
    const keys: string[] = [...(rel.partitionKey ?? [])];
    let parent = rel.parentOid === undefined ? undefined : this.catalog.byOid.get(rel.parentOid);
    while (parent) {
      keys.push(...(parent.partitionKey ?? []));
      parent = parent.parentOid === undefined ? undefined : this.catalog.byOid.get(parent.parentOid);
    }
    // Keys of sub-partitions also decide where a row sent to a partitioned table lands.
    for (const child of this.catalog.relations.filter((r) => this.descendsFrom(r, rel))) keys.push(...(child.partitionKey ?? []));
    return keys;
  }

  private async probeInsert(target: Target & { kind: 'relation' }, role: string, a: string, b: string, rowB: FetchedRow): Promise<void> {
    const row = await this.probeRow(target.rel, rowB);
    const sql = insertSql(target.rel, row);
    const shown = insertSql(target.rel, row, this.reveal(target.rel));
    const outcome = classifyWrite(await this.session.as(role, a, sql, [], shown), this.showValues, row);
    this.recordWrite(
      'VER004',
      'insert',
      target,
      role,
      a,
      outcome,
      `${role} acting as tenant ${a} inserted a row for tenant ${b} into ${labelOf(target, this.catalog)}`,
      shown,
      row,
    );
  }

  /** A cursor opened by the connecting role stands on the target row, so only the UPDATE or DELETE policies decide (a WHERE on a column would bring in the SELECT policies too). */
  private cursorOn(rel: VerifyRelation, row: FetchedRow): string[] {
    return [
      `DECLARE rlsctl_row CURSOR FOR SELECT 1 FROM ${rel.sql} AS r WHERE r.ctid = ${quoteLiteral(row.ctid)}::pg_catalog.tid AND r.tableoid = ${quoteLiteral(row.storedIn)}::pg_catalog.regclass`,
      'FETCH rlsctl_row',
    ];
  }

  private async probeUpdateOther(target: Target & { kind: 'relation' }, role: string, a: string, b: string, rowB: FetchedRow): Promise<void> {
    const rel = target.rel;
    const updatable = rel.privileges.get(role)!.updatable;
    const insertable = new Set(insertableColumns(rel).map((c) => c.name));
    // Set a column to the value it already has: the row stays tenant b's.
    const preferred = [rel.tenantColumn, ...(rel.via?.columns ?? []), ...rel.columns.map((c) => c.name)].filter((c): c is string => Boolean(c));
    const column = preferred.find((c) => updatable.includes(c) && insertable.has(c) && rowB.values.has(c));
    if (!column) return; // no column it may update: the privileges already stop it
    const cell = rowB.values.get(column)!;
    const update = (reveal?: Reveal) =>
      `UPDATE ${rel.sql} SET ${quoteIdent(column)} = ${columnLiteral(rel, column, cell.kind === 'literal' ? cell.text : null, reveal)} WHERE CURRENT OF rlsctl_row`;
    const [sql, shown] = [update(), update(this.reveal(rel))];
    const outcome = classifyWrite(await this.session.as(role, a, sql, this.cursorOn(rel, rowB), shown), this.showValues, rowB.values);
    this.recordWrite(
      'VER005',
      'update',
      target,
      role,
      a,
      outcome,
      `${role} acting as tenant ${a} updated a row of tenant ${b} in ${labelOf(target, this.catalog)} (its row ${rowB.ctid} of ${rowB.storedIn}, under a cursor)`,
      shown,
      rowB.values,
    );
  }

  private async probeMove(target: Target & { kind: 'relation' }, role: string, a: string, b: string, rowA: FetchedRow, rowB: FetchedRow): Promise<void> {
    const rel = target.rel;
    const updatable = rel.privileges.get(role)!.updatable;
    const columns = rel.tenantColumn ? [rel.tenantColumn] : (rel.via?.columns ?? []);
    if (columns.length === 0 || !columns.every((c) => updatable.includes(c))) return; // the privileges already stop it
    const move = (reveal?: Reveal) => {
      const sets = columns.map((c, i) => {
        const cell = rel.tenantColumn === c ? { kind: 'literal' as const, text: b } : rowB.values.get(c);
        return `${quoteIdent(c)} = ${columnLiteral(rel, c, cell?.kind === 'literal' ? cell.text : null, reveal, i + 1)}`;
      });
      return `UPDATE ${rel.sql} SET ${sets.join(', ')} WHERE CURRENT OF rlsctl_row`;
    };
    const [sql, shown] = [move(), move(this.reveal(rel))];
    const outcome = classifyWrite(await this.session.as(role, a, sql, this.cursorOn(rel, rowA), shown), this.showValues, rowB.values);
    this.recordWrite(
      'VER005',
      'move',
      target,
      role,
      a,
      outcome,
      `${role} acting as tenant ${a} moved its own row ${rowA.ctid} of ${rowA.storedIn} to tenant ${b} in ${labelOf(target, this.catalog)}`,
      shown,
      rowB.values,
    );
  }

  private async probeDelete(target: Target & { kind: 'relation' }, role: string, a: string, b: string, rowB: FetchedRow): Promise<void> {
    const rel = target.rel;
    const sql = `DELETE FROM ${rel.sql} WHERE CURRENT OF rlsctl_row`;
    const outcome = classifyWrite(await this.session.as(role, a, sql, this.cursorOn(rel, rowB)), this.showValues, rowB.values);
    this.recordWrite(
      'VER006',
      'delete',
      target,
      role,
      a,
      outcome,
      `${role} acting as tenant ${a} deleted a row of tenant ${b} from ${labelOf(target, this.catalog)} (its row ${rowB.ctid} of ${rowB.storedIn}, under a cursor)`,
      sql,
    );
  }

  /** `sql`: the statement as a finding shows it (values hidden unless --show-values); `row`: the values the probe used. */
  private recordWrite(
    rule: VerifyRuleCode,
    probe: string,
    target: Target,
    role: string,
    tenant: string,
    outcome: WriteOutcome,
    detail: string,
    sql: string,
    row?: Row,
  ): void {
    if (outcome.kind === 'crossed') this.book.add(rule, target, role, undefined, probe, `${detail}${outcome.note}`, sql);
    else if (outcome.kind === 'undecided')
      this.skipped(target, role, probe, tenant, `the ${probe} probe could not decide: ${this.errorText(outcome.error, row)}`, sql);
  }

  // -- views, materialized views, functions -----------------------------------

  private async probeViewWithTenantColumn(target: Target & { kind: 'relation' }): Promise<void> {
    const rel = target.rel;
    const c = quoteIdent(rel.viewTenantColumn!);
    const type = rel.columns.find((col) => col.name === rel.viewTenantColumn)!.type;
    for (const role of this.rolesFor(target, 'select')) {
      for (const [a] of this.pairs) {
        const sql = `SELECT v.${c}::text AS rlsctl_owner FROM ${rel.sql} AS v WHERE v.${c} IS NOT NULL AND v.${c} <> ${tenantLiteral(a, type)} LIMIT 1`;
        const outcome = await this.session.as(role, a, sql);
        if (!outcome.ok) {
          this.skipped(target, role, 'read', a, `the read probe as tenant ${a} failed: ${this.errorText(outcome.error)}`, sql);
          continue;
        }
        const found = outcome.result.rows[0] as { rlsctl_owner: string } | undefined;
        if (found)
          this.book.add(
            'VER001',
            target,
            role,
            undefined,
            'read',
            `${role} acting as tenant ${a} reads a row of ${this.tenantName(found.rlsctl_owner)} through ${labelOf(target, this.catalog)}`,
            sql,
          );
      }
    }
  }

  /**
   * A view without a tenant column, or a function: what it returns is
   * compared per tenant. A leak is (a) a row carrying another tenant's value
   * in a tenant column (a column named like a tenant column), or (b) the same
   * non-empty result for every tenant and for a session with no tenant at
   * all: it returns the same whoever asks, so it does not filter by tenant
   * (the tenants own different rows, and with no tenant set a filtered
   * result is empty or differs).
   */
  private async probeResults(target: Target, noTenant: Map<string, Result>): Promise<void> {
    const sql = target.kind === 'function' ? functionSql(target.fn) : viewResultSql(target.rel);
    for (const role of this.rolesFor(target, 'select')) {
      const results = new Map<string, Result>();
      for (const tenant of this.tenants) {
        const outcome = await this.session.as(role, tenant, sql);
        if (!outcome.ok) {
          this.skipped(target, role, 'read', tenant, `the probe as tenant ${tenant} failed: ${this.errorText(outcome.error)}`, sql);
          continue;
        }
        const rows = (outcome.result.rows as Array<{ j: string | null }>).map((r) => r.j ?? 'null');
        results.set(tenant, { rows });
        const other = rows.flatMap((r) => this.tenantValuesIn(r)).find((v): v is string => v !== null && v !== tenant);
        if (other !== undefined) {
          this.book.add(
            'VER001',
            target,
            role,
            undefined,
            'read',
            `${role} acting as tenant ${tenant} gets a row of ${this.tenantName(other)} from ${labelOf(target, this.catalog)}`,
            sql,
          );
        }
      }
      const none = noTenant.get(resultKey(target, role));
      const all = this.tenants.map((t) => results.get(t));
      if (none && all.every((r) => r !== undefined) && none.rows.length > 0 && all.every((r) => sameRows(r!.rows, none.rows))) {
        const n = none.rows.length;
        this.book.add(
          'VER001',
          target,
          role,
          undefined,
          'same-for-all',
          `${role} gets the same ${n >= ROW_LIMIT + 1 ? `${ROW_LIMIT}+` : n} row${n === 1 ? '' : 's'} from ${labelOf(target, this.catalog)} as tenant ${this.tenants.join(', as tenant ')} and with no tenant set: it does not filter by tenant`,
          sql,
        );
      }
    }
  }
}

function resultKey(target: Target, role: string): string {
  return `${target.kind === 'function' ? `f${target.fn.oid}` : `r${target.rel.oid}`}:${role}`;
}

function sameRows(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function viewResultSql(rel: VerifyRelation): string {
  return `SELECT pg_catalog.to_jsonb(v)::text AS j FROM ${rel.sql} AS v ORDER BY 1 LIMIT ${ROW_LIMIT + 1}`;
}

function functionSql(fn: VerifyFunction): string {
  return `SELECT pg_catalog.to_jsonb(x.v)::text AS j FROM (SELECT ${fn.sql} AS v) AS x ORDER BY 1 LIMIT ${ROW_LIMIT + 1}`;
}
