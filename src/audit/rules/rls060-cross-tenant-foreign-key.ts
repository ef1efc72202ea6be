import { quoteIdent } from '../../compile/quote.js';
import type { Finding, FindingFix } from '../../report/finding.js';
import type { ForeignKeyRow, RelationRow } from '../../catalog/catalog-rows.js';
import type { AuditContext } from '../audit-context.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { manualFix, sqlFix } from '../fix.js';

export const rls060 = defineRule({
  code: 'RLS060',
  name: 'cross-tenant-foreign-key',
  severity: 'error',
  title: 'Foreign key between tenant tables that leaves out the tenant column',
  description:
    "A foreign key from one tenant table to another does not pair the tenant columns. Referential checks run without row level security, so a tenant can point its row at another tenant's row (and learn, by the error or its absence, whether a key exists in another tenant). Pairing the tenant columns makes a cross-tenant reference impossible in the schema itself.",
  remediation:
    'Make the referenced key include the tenant column (UNIQUE (tenant_id, id)) and the foreign key pair it: FOREIGN KEY (tenant_id, parent_id) REFERENCES parent (tenant_id, id).',
  check(ctx) {
    const findings: Finding[] = [];
    for (const fk of ctx.catalog.foreignKeys) {
      const from = ctx.protectedTables.get(fk.relOid);
      const to = ctx.protectedTables.get(fk.refOid);
      if (!from || !to || from.mode !== 'tenant' || to.mode !== 'tenant' || !from.column || !to.column) continue;
      const paired = fk.columns.some((c, i) => c === from.column!.num && fk.refColumns[i] === to.column!.num);
      if (paired) continue;
      const rel = from.rel;
      const cols = [from.column.name, ...fk.columnNames.filter((c) => c !== from.column!.name)];
      const refs = [to.column.name, ...fk.refColumnNames.filter((c) => c !== to.column!.name)];
      findings.push(
        findingOf(
          rls060,
          ctx.objectOf(rel),
          `foreign key ${fk.name} of ${ctx.label(rel)} (${fk.columnNames.join(', ')}) references ${ctx.label(to.rel)} (${fk.refColumnNames.join(', ')}) without pairing ${from.column.name} with ${to.column.name}: a row can reference another tenant's row`,
          pairedKeyFix(ctx, rel, to.rel, fk, cols, refs, from.column.name),
          fk.name,
        ),
      );
    }
    return findings;
  },
});

const ACTION: Record<string, string> = { a: 'NO ACTION', r: 'RESTRICT', c: 'CASCADE', n: 'SET NULL', d: 'SET DEFAULT' };

/**
 * The foreign key again with the tenant columns paired, everything else kept:
 * MATCH, ON UPDATE, ON DELETE, DEFERRABLE. ON DELETE SET NULL / SET DEFAULT
 * must not reach the tenant column (NOT NULL, and the row's tenant): it lists
 * the other columns, which PostgreSQL accepts from 15. The referenced key is
 * added first when the parent has no unique key on exactly those columns.
 */
function pairedKeyFix(
  ctx: AuditContext,
  rel: RelationRow,
  parent: RelationRow,
  fk: ForeignKeyRow,
  cols: string[],
  refs: string[],
  tenantColumn: string,
): FindingFix {
  const list = (names: string[]) => names.map(quoteIdent).join(', ');
  const keyed = ctx
    .indexesOf(parent.oid)
    .some((i) => i.unique && i.valid && !i.partial && i.keyNames?.length === refs.length && refs.every((r) => i.keyNames!.includes(r)));
  const statements = keyed ? [] : [`ALTER TABLE ${ctx.sql(parent)} ADD UNIQUE (${list(refs)});`];
  let clause = ` REFERENCES ${ctx.sql(parent)} (${list(refs)})`;
  if (fk.match === 'f') clause += ' MATCH FULL';
  if (fk.onUpdate && fk.onUpdate !== 'a') {
    if (fk.onUpdate === 'n' || fk.onUpdate === 'd')
      return manualFix(
        `${fk.name} is ON UPDATE ${ACTION[fk.onUpdate]}, which with the tenant column paired would set ${tenantColumn} too: decide the ON UPDATE action, then pair ${tenantColumn} with the parent's tenant column (FOREIGN KEY (${list(cols)}) REFERENCES ${ctx.sql(parent)} (${list(refs)}))`,
      );
    clause += ` ON UPDATE ${ACTION[fk.onUpdate]}`;
  }
  if (fk.onDelete && fk.onDelete !== 'a') {
    clause += ` ON DELETE ${ACTION[fk.onDelete]}`;
    if (fk.onDelete === 'n' || fk.onDelete === 'd') {
      if (ctx.serverVersionNum < 150000)
        return manualFix(
          `${fk.name} is ON DELETE ${ACTION[fk.onDelete]}; paired with ${tenantColumn}, it must list the other columns (ON DELETE ${ACTION[fk.onDelete]} (${list(fk.columnNames.filter((c) => c !== tenantColumn))})), which PostgreSQL accepts from 15: upgrade, or decide another ON DELETE action (a trigger, or CASCADE)`,
        );
      const set = (fk.deleteSetColumns?.length ? fk.deleteSetColumns : fk.columnNames).filter((c) => c !== tenantColumn);
      clause += ` (${list(set)})`;
    }
  }
  if (fk.deferrable) clause += fk.deferred ? ' DEFERRABLE INITIALLY DEFERRED' : ' DEFERRABLE';
  statements.push(
    `ALTER TABLE ${ctx.sql(rel)} DROP CONSTRAINT ${quoteIdent(fk.name)},\n  ADD CONSTRAINT ${quoteIdent(fk.name)} FOREIGN KEY (${list(cols)})${clause};`,
  );
  return sqlFix(statements, {
    note: keyed ? undefined : `the unique key on ${ctx.label(parent)} fails, changing nothing, while its key repeats within a tenant`,
  });
}
