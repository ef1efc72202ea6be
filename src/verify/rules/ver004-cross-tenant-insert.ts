import { defineVerifyRule, detailsMessage } from '../rule.js';
import { crossTenantHelp } from './verify-help.js';
import { insertSql, type FetchedRow } from '../make-row.js';
import type { Prober } from '../prober.js';
import { labelOf, type Target } from '../target.js';
import { classifyWrite } from './write-probe.js';

/** docs/rules/VER004.md */
export const ver004 = defineVerifyRule({
  code: 'VER004',
  name: 'cross-tenant-insert',
  severity: 'error',
  title: 'A tenant can insert a row for another tenant',
  description: 'Acting as an app role with one tenant set, an INSERT of a row that belongs to another tenant was admitted by the database.',
  remediation: 'Give the INSERT policies a WITH CHECK that compares the tenant column with the current tenant (rlsctl apply makes them).',
  leak: true,
  message: detailsMessage,
  help: (input) => crossTenantHelp(input, 'INSERT (WITH CHECK)'),
});

/** As tenant `a`, insert a copy of tenant `b`'s row (fresh unique values): admitted is a leak. */
export async function probeInsert(p: Prober, target: Target & { kind: 'relation' }, role: string, a: string, b: string, rowB: FetchedRow): Promise<void> {
  const row = await p.probeRow(target.rel, rowB);
  const sql = insertSql(target.rel, row);
  const shown = insertSql(target.rel, row, p.reveal(target.rel));
  const outcome = classifyWrite(await p.session.as(role, a, sql, [], shown), p.showValues, row);
  p.recordWrite(
    'VER004',
    'insert',
    target,
    role,
    a,
    outcome,
    `${role} acting as tenant ${a} inserted a row for tenant ${b} into ${labelOf(target, p.catalog)}`,
    shown,
    row,
  );
}
