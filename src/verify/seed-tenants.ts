import type pg from 'pg';
import { quoteIdent } from '../compile/quote.js';
import {
  avoidCollisions,
  freshenUniques,
  insertSql,
  partitionValues,
  rowFromResult,
  selectRowSql,
  syntheticValue,
  insertableColumns,
  type Row,
  type ValueCounter,
} from './make-row.js';
import { ownerSql, tenantLiteral } from './owner-sql.js';
import type { VerifyCatalog, VerifyRelation } from './verify-catalog.js';
import { errorText, revealer } from './hide-values.js';

/**
 * Make every tenant table (every leaf partition, for a partitioned one) hold
 * at least one row of each tenant, so that every probe has a row to read,
 * update, move and delete on both sides of the boundary. Written as the
 * connecting role, which bypasses row level security; parents before
 * children (foreign keys and `via`), so a child row can point at a parent
 * row of the same tenant.
 *
 * The caller owns the transaction: verify writes inside its probing
 * transaction and rolls everything back; the pre-merge mode commits into a
 * throwaway database. Each row is written under a savepoint, so one row that
 * cannot be made does not end the others.
 */

export interface SeedFailure {
  relation: VerifyRelation;
  tenant: string;
  reason: string;
}

export interface SeedResult {
  written: number;
  failures: SeedFailure[];
}

/** `showValues`: a failure's reason may quote the values of the row (see hide-values.ts); else they are left out. */
export async function seedTenants(
  client: pg.ClientBase,
  catalog: VerifyCatalog,
  tenants: string[],
  counter: ValueCounter,
  showValues = false,
): Promise<SeedResult> {
  const result: SeedResult = { written: 0, failures: [] };
  for (const rel of seedOrder(catalog)) {
    const owner = ownerSql(catalog, rel, 'r');
    if (!owner) continue;
    const checks = tenants.map((t, i) => `EXISTS (SELECT 1 FROM ONLY ${rel.sql} AS r WHERE ${owner.sql} = ${tenantLiteral(t, owner.type)}) AS t${i}`);
    const { rows } = await client.query<Record<string, boolean>>(`SELECT ${checks.join(', ')}`);
    for (const [i, tenant] of tenants.entries()) {
      if (rows[0][`t${i}`]) continue;
      const made = await makeRow(client, catalog, rel, tenant, counter);
      if ('reason' in made) {
        result.failures.push({ relation: rel, tenant, reason: made.reason });
        continue;
      }
      const sql = insertSql(rel, made.row);
      await client.query('SAVEPOINT rlsctl_seed');
      try {
        await client.query(sql);
        await client.query('RELEASE SAVEPOINT rlsctl_seed');
        result.written += 1;
      } catch (error) {
        await client.query('ROLLBACK TO SAVEPOINT rlsctl_seed');
        await client.query('RELEASE SAVEPOINT rlsctl_seed');
        const shown = insertSql(rel, made.row, revealer(showValues, rel.tenantColumn));
        result.failures.push({ relation: rel, tenant, reason: `${errorText(error as Error & { code?: string }, showValues, made.row)} (${shown})` });
      }
    }
  }
  return result;
}

/** The relations that hold rows, parents before children; a cycle is broken in name order. */
export function seedOrder(catalog: VerifyCatalog): VerifyRelation[] {
  const storage = catalog.relations.filter((r) => r.storage && (r.kind === 'table' || r.kind === 'partition'));
  const storageOf = (oid: number): number[] => {
    const rel = catalog.byOid.get(oid);
    if (!rel) return [];
    if (rel.storage) return [oid];
    return catalog.relations.filter((r) => r.parentOid === oid).flatMap((r) => storageOf(r.oid));
  };
  const deps = new Map<number, Set<number>>();
  for (const rel of storage) {
    const refs = [...rel.foreignKeys.map((k) => k.refOid), ...(rel.via ? [rel.via.parentOid] : [])];
    deps.set(rel.oid, new Set(refs.flatMap(storageOf).filter((o) => o !== rel.oid)));
  }
  const ordered: VerifyRelation[] = [];
  const done = new Set<number>();
  let pending = [...storage];
  while (pending.length > 0) {
    const ready = pending.filter((r) => [...deps.get(r.oid)!].every((d) => done.has(d) || !deps.has(d)));
    const next = ready.length > 0 ? ready : [pending[0]];
    for (const rel of next) {
      ordered.push(rel);
      done.add(rel.oid);
    }
    pending = pending.filter((r) => !done.has(r.oid));
  }
  return ordered;
}

/** Columns that decide where a row lives: the partition keys of every ancestor. */
function partitionKeyColumns(catalog: VerifyCatalog, rel: VerifyRelation): string[] {
  const columns: string[] = [];
  let parent = rel.parentOid === undefined ? undefined : catalog.byOid.get(rel.parentOid);
  while (parent) {
    columns.push(...(parent.partitionKey ?? []));
    parent = parent.parentOid === undefined ? undefined : catalog.byOid.get(parent.parentOid);
  }
  return columns;
}

function rootOf(catalog: VerifyCatalog, rel: VerifyRelation): VerifyRelation {
  let root = rel;
  while (root.parentOid !== undefined && catalog.byOid.get(root.parentOid)) root = catalog.byOid.get(root.parentOid)!;
  return root;
}

/**
 * A row of `rel` that belongs to `tenant`: a copy of an existing row of the
 * relation (or of a sibling partition) with the tenant column set, every
 * foreign key and `via` key pointed at a row of the same tenant, and unique
 * columns made fresh; without any row to copy, a synthetic one.
 */
export async function makeRow(
  client: pg.ClientBase,
  catalog: VerifyCatalog,
  rel: VerifyRelation,
  tenant: string,
  counter: ValueCounter,
): Promise<{ row: Row } | { reason: string }> {
  let template: Row | undefined;
  let ownTemplate = false;
  const own = await client.query(selectRowSql(rel, `ONLY ${rel.sql}`, 'r', 'true'));
  if (own.rows[0]) {
    template = rowFromResult(rel, own.rows[0]).values;
    ownTemplate = true;
  } else {
    const root = rootOf(catalog, rel);
    if (root !== rel) {
      const sibling = await client.query(selectRowSql(rel, root.sql, 'r', 'true'));
      if (sibling.rows[0]) template = rowFromResult(rel, sibling.rows[0]).values;
    }
  }
  const row: Row = template ? new Map(template) : new Map();
  const pinned = new Set<string>();
  if (rel.tenantColumn) {
    row.set(rel.tenantColumn, { kind: 'literal', text: tenant });
    pinned.add(rel.tenantColumn);
  }

  // Foreign keys and the `via` key: point them at a row of the same tenant.
  const links = rel.foreignKeys.map((k) => ({
    columns: k.columns,
    refOid: k.refOid,
    refSql: k.refSql,
    refColumns: k.refColumns,
    name: `foreign key ${k.name}`,
  }));
  if (rel.via) {
    const parent = catalog.byOid.get(rel.via.parentOid)!;
    if (!links.some((l) => l.refOid === parent.oid && l.columns.join() === rel.via!.columns.join())) {
      links.push({ columns: rel.via.columns, refOid: parent.oid, refSql: parent.sql, refColumns: rel.via.references, name: 'via key' });
    }
  }
  for (const link of links) {
    const ref = catalog.byOid.get(link.refOid);
    const refOwner = ref ? ownerSql(catalog, ref, 'p') : undefined;
    const cols = link.refColumns.map((c, i) => `p.${quoteIdent(c)}::text AS c${i}`).join(', ');
    if (refOwner) {
      const { rows } = await client.query(`SELECT ${cols} FROM ${link.refSql} AS p WHERE ${refOwner.sql} = ${tenantLiteral(tenant, refOwner.type)} LIMIT 1`);
      if (rows[0]) {
        link.columns.forEach((c, i) => row.set(c, { kind: 'literal', text: rows[0][`c${i}`] }));
        link.columns.forEach((c) => pinned.add(c));
        continue;
      }
      const nullable = link.columns.filter((c) => !pinned.has(c) && !rel.columns.find((col) => col.name === c)?.notNull);
      if (nullable.length > 0) {
        // MATCH SIMPLE: a foreign key with a NULL column is not checked.
        for (const c of nullable) row.set(c, { kind: 'literal', text: null });
        link.columns.forEach((c) => pinned.add(c));
        continue;
      }
      return { reason: `its ${link.name} needs a row of ${ref!.schema}.${ref!.name} that belongs to tenant ${tenant}, and there is none` };
    }
    if (template) {
      link.columns.forEach((c) => pinned.add(c));
      continue;
    }
    const { rows } = await client.query(`SELECT ${cols} FROM ${link.refSql} AS p LIMIT 1`);
    if (rows[0]) {
      link.columns.forEach((c, i) => row.set(c, { kind: 'literal', text: rows[0][`c${i}`] }));
      link.columns.forEach((c) => pinned.add(c));
      continue;
    }
    const nullable = link.columns.filter((c) => !rel.columns.find((col) => col.name === c)?.notNull);
    if (nullable.length === link.columns.length) {
      for (const c of nullable) row.set(c, { kind: 'literal', text: null });
      link.columns.forEach((c) => pinned.add(c));
      continue;
    }
    return { reason: `its ${link.name} needs a row of ${link.refSql}, which is empty` };
  }

  // Where the row lives: a partition accepts only keys inside its bound.
  const keyColumns = partitionKeyColumns(catalog, rel);
  if (ownTemplate) keyColumns.forEach((c) => pinned.add(c));
  else if (keyColumns.length > 0) {
    const bound = partitionValues(catalog, rel);
    if ('error' in bound) return { reason: bound.error };
    for (const [column, value] of bound.values) {
      const current = row.get(column);
      if (pinned.has(column) && current?.kind === 'literal' && current.text !== value) {
        return { reason: `the partition holds only rows with ${column} = ${value ?? 'NULL'}, so no row of tenant ${tenant} can be stored in it` };
      }
      row.set(column, { kind: 'literal', text: value });
      pinned.add(column);
    }
  }

  // No template: every required column without a default gets a synthetic value.
  if (!template) {
    for (const column of insertableColumns(rel)) {
      if (row.has(column.name) || !column.notNull || column.hasDefault) continue;
      const value = syntheticValue(column, counter.next());
      if (value === undefined) return { reason: `it is empty and verify cannot make up a value for the required column ${column.name} (${column.type})` };
      row.set(column.name, { kind: 'literal', text: value });
    }
  }
  freshenUniques(rel, row, pinned, counter);
  const collision = await avoidCollisions(async (sql) => (await client.query(sql)).rows, rel, row, pinned, counter);
  if (collision) return { reason: collision };
  return { row };
}
