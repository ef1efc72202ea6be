import type pg from 'pg';
import { performance } from 'node:perf_hooks';
import { DatabaseError, RlsctlError, UsageError } from '../errors.js';
import type { TenantFacts } from '../facts/resolve-facts.js';
import { loadParser } from '../policy/expression.js';
import { sortFindings, type Finding } from '../report/finding.js';
import { AuditContext, type PlanFacts } from './audit-context.js';
import { collectCatalog } from './collect-catalog.js';
import { AUDIT_RULES } from './registry.js';
import { refuseOpenTransaction } from '../db/open-transaction.js';

export interface AuditOptions {
  /**
   * `own` (the default): the scan runs in a transaction of its own on this
   * client, `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`, with a
   * statement_timeout, rolled back at the end: one consistent snapshot, and
   * nothing can be written, even by a bug. `caller`: the caller already holds
   * a transaction (its own read-only one, or a test's rolled-back fixture).
   */
  transaction?: 'own' | 'caller';
  /** statement_timeout of the scan's transaction (default 30 s): a slow catalog cannot hang a production host. */
  statementTimeoutMs?: number;
  /** Judge RLS070 as if the server ran this version (server_version_num), e.g. an upgrade target. */
  serverVersionNum?: number;
  /**
   * The plan of the policy file against this database, for RLS005 and RLS006,
   * or how to get it. Only with a policy file; without one these rules are silent.
   */
  plan?: PlanFacts | (() => Promise<PlanFacts | undefined>);
  /** Only these rule codes (default: every rule). */
  rules?: string[];
  /** Called at each step of the scan (for a progress line on a terminal). */
  onProgress?: (step: string) => void;
}

export interface AuditResult {
  findings: Finding[];
  facts: TenantFacts;
  server: { version: string; versionNum: number; database: string };
  stats: { relations: number; policies: number; expressionsParsed: number; catalogMs: number; rulesMs: number; queries: Record<string, number> };
}

/** A read-only transaction on `client` for `fn`, always rolled back. Refuses a client already in a transaction. */
export async function withReadOnlyTransaction<T>(client: pg.ClientBase, fn: () => Promise<T>, statementTimeoutMs = 30_000): Promise<T> {
  await refuseOpenTransaction(
    client,
    'the audit',
    "give it a client outside any transaction (it runs its own READ ONLY one), or pass { transaction: 'caller' } to scan inside yours (make that one READ ONLY, REPEATABLE READ, with a statement_timeout)",
  );
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    // Local: the limits end with the transaction; the session keeps its own.
    await setScanTimeouts(client, statementTimeoutMs, true);
    return await fn();
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
  }
}

/**
 * The time limits of every audit connection: statement_timeout as given, and
 * lock_timeout the same but at most 10 s. `local` for the scan's transaction;
 * the planner's second connection (its own transactions, closed after) gets
 * them for its session.
 */
export async function setScanTimeouts(client: pg.ClientBase, statementTimeoutMs: number, local: boolean): Promise<void> {
  await client.query(`SELECT pg_catalog.set_config('statement_timeout', $1, $3), pg_catalog.set_config('lock_timeout', $2, $3)`, [
    `${Math.max(1, Math.floor(statementTimeoutMs))}ms`,
    `${Math.max(1, Math.floor(Math.min(statementTimeoutMs, 10_000)))}ms`,
    local,
  ]);
}

/**
 * Scan the catalog for isolation holes: every rule of the registry over one
 * snapshot of the catalog. Throws UsageError when the policy file declares a
 * table the database lacks, DatabaseError when the catalog cannot be read.
 */
export async function runAudit(client: pg.ClientBase, facts: TenantFacts, options: AuditOptions = {}): Promise<AuditResult> {
  await loadParser();
  const scan = async (): Promise<AuditResult> => {
    const started = performance.now();
    const catalog = await collectCatalog(client, facts, options.onProgress);
    const catalogMs = performance.now() - started;
    if (facts.source === 'policy-file') checkDeclaredTablesExist(facts, new Set(catalog.relations.map((r) => `${r.schema}.${r.name}`)));
    let plan: PlanFacts | undefined;
    if (facts.model && options.plan) {
      options.onProgress?.('planning the policy file against the database');
      plan = typeof options.plan === 'function' ? await options.plan() : options.plan;
    }
    options.onProgress?.('checking the rules');
    const rulesStarted = performance.now();
    const ctx = new AuditContext(facts, catalog, { serverVersionNum: options.serverVersionNum, plan });
    const wanted = options.rules ? new Set(options.rules) : undefined;
    const findings: Finding[] = [];
    for (const rule of AUDIT_RULES) {
      if (wanted && !wanted.has(rule.code)) continue;
      if (rule.needsPolicyFile && facts.source !== 'policy-file') continue;
      findings.push(...rule.check(ctx));
    }
    return {
      findings: sortFindings(dedupe(findings)),
      facts,
      server: { version: catalog.server.version, versionNum: catalog.server.versionNum, database: catalog.server.database },
      stats: {
        relations: catalog.relations.length,
        policies: catalog.policies.length,
        expressionsParsed: ctx.expressions.parsed,
        catalogMs: Math.round(catalogMs),
        rulesMs: Math.round(performance.now() - rulesStarted),
        queries: catalog.timings,
      },
    };
  };
  try {
    return options.transaction === 'caller' ? await scan() : await withReadOnlyTransaction(client, scan, options.statementTimeoutMs);
  } catch (error) {
    throw asAuditError(error);
  }
}

function checkDeclaredTablesExist(facts: TenantFacts, existing: Set<string>): void {
  const declared = [...facts.tenantTables, ...facts.sharedTables, ...facts.exemptTables].map((t) => `${t.schema}.${t.name}`);
  const missing = declared.filter((k) => !existing.has(k));
  if (missing.length === 0) return;
  throw new UsageError(
    `the policy file declares ${missing.length === 1 ? 'a table' : `${missing.length} tables`} that the database lacks: ${missing.join(', ')}`,
    {
      hint: 'check that --db names the right database, or remove the table from the policy file',
    },
  );
}

/** Two rules never report the same fingerprint; one rule may reach the same one twice by two paths. */
function dedupe(findings: Finding[]): Finding[] {
  const seen = new Set<string>();
  return findings.filter((f) => (seen.has(f.fingerprint) ? false : (seen.add(f.fingerprint), true)));
}

/** A database error met while scanning, as the error the CLI maps to exit 3; rlsctl's own errors unchanged. */
export function asAuditError(error: unknown): unknown {
  if (error instanceof RlsctlError) return error;
  const e = error as { code?: string; message?: string };
  if (e && typeof e.code === 'string') {
    if (e.code === '57014') {
      return new DatabaseError('the catalog scan took longer than its statement_timeout and was cancelled', {
        hint: 'the audit runs read-only with a time limit so that it cannot hang a busy server; try again off-peak',
        cause: error,
      });
    }
    if (e.code === '42501') {
      return new DatabaseError(`permission denied while reading the catalog: ${e.message}`, {
        hint: 'the audit needs only a role that can connect (see docs/audit.md, "The connecting role")',
        cause: error,
      });
    }
    return new DatabaseError(`reading the catalog failed: ${e.message}`, { cause: error });
  }
  return error;
}
