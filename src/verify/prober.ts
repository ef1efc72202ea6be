import { quoteIdent } from '../compile/quote.js';
import { avoidCollisions, freshenUniques, rowFromResult, selectRowSql, type FetchedRow, type Row, type ValueCounter } from './make-row.js';
import { ownerSql, tenantLiteral } from './owner-sql.js';
import type { PgError, ProbeSession } from './probe-session.js';
import type { SeedFailure } from './seed-tenants.js';
import type { FindingBook } from './finding-book.js';
import { functionSql, labelOf, resultKey, viewResultSql, type Target } from './target.js';
import type { Stranger } from './membership-probes.js';
import type { VerifyCatalog, VerifyRelation } from './verify-catalog.js';
import type { VerifyRuleCode } from './rule.js';
import { probeRead, probeResults, probeViewWithTenantColumn } from './rules/ver001-cross-tenant-read.js';
import { notAboutContext } from './rules/ver003-unset-context-error.js';
import { probeInsert } from './rules/ver004-cross-tenant-insert.js';
import { probeMove, probeUpdateOther } from './rules/ver005-cross-tenant-update.js';
import { probeDelete } from './rules/ver006-cross-tenant-delete.js';
import type { WriteOutcome } from './rules/write-probe.js';
import { errorText, revealer, type Reveal } from './hide-values.js';

/**
 * The prober: the probes themselves, as each app role, in the no-tenant
 * states and as each tenant (see run-verify.ts for the order of the passes).
 * What they find goes into the finding book (finding-book.ts).
 */

/** Called before each target of a pass (with the number done so far) and once after the last. */
export type Step = (done: number, current?: Target) => void;

/** A view that verify could not prove anything about as each tenant (VerifyResult.unprobedViews). */
export interface UnprobedView {
  schema: string;
  name: string;
  tables: string[];
}

/** The rows (as JSON) a view or function returned to one role: compared across tenants and with no tenant set. */
export interface Result {
  rows: string[];
}

/**
 * Runs the passes over the targets. The probes that decide a rule's finding
 * are in the rule's file (rules/ver001-..., ver004-..., ver005-..., ver006-...)
 * and use what the prober offers here; the no-tenant probe decides VER002
 * and VER003 at once, so it stays here.
 */
export class Prober {
  /** Each tenant with the next: acting as the first, across to the second. */
  readonly pairs: Array<[string, string]>;
  readonly unprobedViews: UnprobedView[] = [];

  constructor(
    readonly session: ProbeSession,
    readonly catalog: VerifyCatalog,
    readonly book: FindingBook,
    private readonly setting: string,
    readonly tenants: string[],
    private readonly counter: ValueCounter,
    private readonly seedFailures: SeedFailure[],
    readonly showValues: boolean,
  ) {
    this.pairs = tenants.map((a, i) => [a, tenants[(i + 1) % tenants.length]] as [string, string]);
  }

  /** A server error for a finding: values hidden unless --show-values (hide-values.ts). */
  errorText(e: PgError, row?: Row): string {
    return errorText(e, this.showValues, row);
  }

  /** Which values a statement shown in a finding prints (the tenant column's only, unless --show-values). */
  reveal(rel: VerifyRelation): Reveal {
    return revealer(this.showValues, rel.tenantColumn);
  }

  /** An owner found in a row: a tenant verify acts as is named (the header names them); another tenant's id only with --show-values. */
  tenantName(owner: string): string {
    return this.showValues || this.tenants.includes(owner) ? `tenant ${owner}` : 'another tenant (one verify does not act as; --show-values names it)';
  }

  rolesFor(target: Target, need: 'select' | 'any'): string[] {
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
  tenantValuesIn(json: string | null): Array<string | null> {
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
      if (target.kind === 'function') await probeResults(this, target, noTenant);
      else if (target.rel.kind === 'view' || target.rel.kind === 'materialized_view') {
        if (target.rel.viewTenantColumn) await probeViewWithTenantColumn(this, target);
        else await probeResults(this, target, noTenant);
        this.unseededView(target);
      } else await this.probeTable(target);
    }
    step(targets.length);
  }

  /** Every tenant table read as an identity that may read no row of it (membership-probes.ts). */
  async asStranger(targets: Target[], stranger: Stranger): Promise<void> {
    for (const target of targets) {
      if (target.kind !== 'relation' || (target.rel.kind !== 'table' && target.rel.kind !== 'partition')) continue;
      const owner = ownerSql(this.catalog, target.rel, 'r');
      if (!owner) continue;
      for (const role of this.rolesFor(target, 'select')) {
        const sql = `SELECT (${owner.sql})::text AS rlsctl_owner FROM ${target.rel.sql} AS r LIMIT 1`;
        const outcome = await this.session.as(role, stranger.key, sql);
        if (!outcome.ok) {
          this.skipped(target, role, 'read', undefined, `the read probe as ${stranger.description} failed: ${this.errorText(outcome.error)}`, sql);
        } else if (outcome.result.rows.length > 0) {
          const found = outcome.result.rows[0].rlsctl_owner as string | null;
          const whose = found === null ? 'a row that belongs to no tenant' : `a row of ${this.tenantName(found)}`;
          this.book.add(
            'VER001',
            target,
            role,
            stranger.key.replace('\u0000', 'membership-'),
            'read',
            `${role} acting as ${stranger.description} reads ${whose} in ${labelOf(target, this.catalog)}`,
            sql,
          );
        }
      }
    }
  }

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
        if (priv.select && (await probeRead(this, target, role, a, owner)) === 'clean' && writable && !rowB) this.missingRow(target, role, 'read', b);
        if (!writable) continue;
        if (priv.insert) {
          if (rowB) await probeInsert(this, target, role, a, b, rowB);
          else this.missingRow(target, role, 'insert', b);
        }
        if (priv.update) {
          if (rowB) await probeUpdateOther(this, target, role, a, b, rowB);
          else this.missingRow(target, role, 'update', b);
          if (rowA && rowB) await probeMove(this, target, role, a, b, rowA, rowB);
          else this.missingRow(target, role, 'move', rowA ? b : a);
        }
        if (priv.delete) {
          if (rowB) await probeDelete(this, target, role, a, b, rowB);
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
  skipped(target: Target, role: string, probe: string, tenant: string | undefined, reason: string, statement?: string, finding = true): void {
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

  /** The row a probe writes for tenant `b`: a copy of b's row, with fresh unique values (none a row already holds). */
  async probeRow(rel: VerifyRelation, rowB: FetchedRow): Promise<Row> {
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

  /** `sql`: the statement as a finding shows it (values hidden unless --show-values); `row`: the values the probe used. */
  recordWrite(
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
}
