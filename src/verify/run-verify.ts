import { performance } from 'node:perf_hooks';
import type { Database } from '../db/connection.js';
import { UsageError } from '../errors.js';
import { tenantLookupOfFacts, type TenantFacts } from '../facts/resolve-facts.js';
import { settingValueFor } from '../compile/tenant-lookup.js';
import type { Finding } from '../report/finding.js';
import { quoteLiteral } from '../compile/quote.js';
import { ValueCounter } from './make-row.js';
import { pickTenants } from './pick-tenants.js';
import { seedMemberships } from './membership-probes.js';
import { PROBE_SAVEPOINT, ProbeSession } from './probe-session.js';
import { seedTenants } from './seed-tenants.js';
import { readVerifyCatalog } from './verify-catalog.js';
import { LEAK_RULES } from './registry.js';
import { FindingBook, type VerifySkip } from './finding-book.js';
import { preflight } from './preflight.js';
import { Prober, type UnprobedView } from './prober.js';
import { labelOf, targetsOf, triggersOf, type Target } from './target.js';

export type { VerifySkip } from './finding-book.js';

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
 *
 * This file is the orchestration; the parts are preflight.ts (can the
 * connecting role act as the app roles), target.ts (what is probed),
 * prober.ts (the probes) and finding-book.ts (what they found, as findings).
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
  unprobedViews: UnprobedView[];
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

type Progress = (line: string, event: VerifyProgress) => void;

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
    const book = new FindingBook(catalog);

    await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
    open = true;
    await client.query(
      `SET LOCAL statement_timeout = ${Math.max(1, Math.floor(options.statementTimeoutMs ?? 10_000))}; SET LOCAL lock_timeout = ${Math.max(1, Math.floor(options.lockTimeoutMs ?? 2_000))}`,
    );
    const showValues = options.showValues ?? false;
    const seed = await seedTenants(client, catalog, tenants, counter, showValues);
    // Memberships before the probes' savepoint: every probe rolls back to it.
    const members = facts.model?.tenant.membership ? await seedMemberships(client, facts.model, tenants) : undefined;
    await client.query(`SAVEPOINT ${PROBE_SAVEPOINT}`);
    for (const failure of seed.failures) book.seedFailure(failure);

    const lookup = tenantLookupOfFacts(facts);
    const identity = members?.identity ?? ((tenant: string): Array<[string, string]> => [[setting, settingValueFor(lookup, tenant)]]);
    const session = new ProbeSession(client, setting, catalog.loginDefaults, identity);
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
    await session.connecting(
      `SELECT ${session
        .identity(tenants[0])
        .map(([name, value]) => `pg_catalog.set_config(${quoteLiteral(name)}, ${quoteLiteral(value)}, true)`)
        .join(', ')}`,
    );
    await probe.noContext(targets, 'after a transaction-local tenant ended', step(2));
    // Phase 3: as each tenant.
    await probe.asTenants(targets, fresh, step(3));
    // Memberships: a user with none, and a member acting in another tenant, read no row.
    for (const stranger of members?.strangers ?? []) await probe.asStranger(targets, stranger);

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
