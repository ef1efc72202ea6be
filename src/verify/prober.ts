import { quoteIdent, quoteLiteral } from '../compile/quote.js';
import {
  avoidCollisions,
  columnLiteral,
  freshenUniques,
  insertSql,
  insertableColumns,
  rowFromResult,
  selectRowSql,
  type FetchedRow,
  type Row,
  type ValueCounter,
} from './make-row.js';
import { ownerSql, tenantLiteral } from './owner-sql.js';
import type { PgError, ProbeOutcome, ProbeSession } from './probe-session.js';
import type { SeedFailure } from './seed-tenants.js';
import type { FindingBook } from './finding-book.js';
import { labelOf, resultKey, type Target } from './target.js';
import type { VerifyCatalog, VerifyFunction, VerifyRelation } from './verify-catalog.js';
import type { VerifyRuleCode } from './rule.js';
import { notAboutContext } from './rules/ver003-unset-context-error.js';
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

const ROW_LIMIT = 200;

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

/** The rows (as JSON) a view or function returned to one role: compared across tenants and with no tenant set. */
export interface Result {
  rows: string[];
}

export class Prober {
  private readonly pairs: Array<[string, string]>;
  readonly unprobedViews: UnprobedView[] = [];

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

function sameRows(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function viewResultSql(rel: VerifyRelation): string {
  return `SELECT pg_catalog.to_jsonb(v)::text AS j FROM ${rel.sql} AS v ORDER BY 1 LIMIT ${ROW_LIMIT + 1}`;
}

function functionSql(fn: VerifyFunction): string {
  return `SELECT pg_catalog.to_jsonb(x.v)::text AS j FROM (SELECT ${fn.sql} AS v) AS x ORDER BY 1 LIMIT ${ROW_LIMIT + 1}`;
}
