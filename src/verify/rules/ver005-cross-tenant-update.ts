import { defineVerifyRule, detailsMessage } from '../rule.js';
import { crossTenantHelp } from './verify-help.js';
import { quoteIdent } from '../../compile/quote.js';
import { columnLiteral, insertableColumns, type FetchedRow } from '../make-row.js';
import type { Reveal } from '../hide-values.js';
import type { Prober } from '../prober.js';
import { labelOf, type Target } from '../target.js';
import { classifyWrite, cursorOn } from './write-probe.js';

/** docs/rules/VER005.md */
export const ver005 = defineVerifyRule({
  code: 'VER005',
  name: 'cross-tenant-update',
  severity: 'error',
  title: "A tenant can update another tenant's rows or move its own rows to another tenant",
  description: "Acting as an app role with one tenant set, an UPDATE changed a row of another tenant, or moved one of the tenant's own rows to another tenant.",
  remediation: 'Give the UPDATE policies both a USING and a WITH CHECK that compare the tenant column with the current tenant.',
  leak: true,
  message: detailsMessage,
  help: (input) => crossTenantHelp(input, 'UPDATE (USING and WITH CHECK)'),
});

/** As tenant `a`, update tenant `b`'s row under a cursor, setting a column to the value it has: admitted is a leak. */
export async function probeUpdateOther(p: Prober, target: Target & { kind: 'relation' }, role: string, a: string, b: string, rowB: FetchedRow): Promise<void> {
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
  const [sql, shown] = [update(), update(p.reveal(rel))];
  const outcome = classifyWrite(await p.session.as(role, a, sql, cursorOn(rel, rowB), shown), p.showValues, rowB.values);
  p.recordWrite(
    'VER005',
    'update',
    target,
    role,
    a,
    outcome,
    `${role} acting as tenant ${a} updated a row of tenant ${b} in ${labelOf(target, p.catalog)} (its row ${rowB.ctid} of ${rowB.storedIn}, under a cursor)`,
    shown,
    rowB.values,
  );
}

/** As tenant `a`, move its own row to tenant `b` (its tenant column, or its `via` columns, set to b's): admitted is a leak. */
export async function probeMove(
  p: Prober,
  target: Target & { kind: 'relation' },
  role: string,
  a: string,
  b: string,
  rowA: FetchedRow,
  rowB: FetchedRow,
): Promise<void> {
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
  const [sql, shown] = [move(), move(p.reveal(rel))];
  const outcome = classifyWrite(await p.session.as(role, a, sql, cursorOn(rel, rowA), shown), p.showValues, rowB.values);
  p.recordWrite(
    'VER005',
    'move',
    target,
    role,
    a,
    outcome,
    `${role} acting as tenant ${a} moved its own row ${rowA.ctid} of ${rowA.storedIn} to tenant ${b} in ${labelOf(target, p.catalog)}`,
    shown,
    rowB.values,
  );
}
