import { defineVerifyRule, detailsMessage } from '../rule.js';
import { crossTenantHelp } from './verify-help.js';
import type { FetchedRow } from '../make-row.js';
import type { Prober } from '../prober.js';
import { labelOf, type Target } from '../target.js';
import { classifyWrite, cursorOn } from './write-probe.js';

/** docs/rules/VER006.md */
export const ver006 = defineVerifyRule({
  code: 'VER006',
  name: 'cross-tenant-delete',
  severity: 'error',
  title: "A tenant can delete another tenant's rows",
  description: 'Acting as an app role with one tenant set, a DELETE removed a row of another tenant.',
  remediation: 'Give the DELETE policies a USING that compares the tenant column with the current tenant.',
  leak: true,
  message: detailsMessage,
  help: (input) => crossTenantHelp(input, 'DELETE (USING)'),
});

/** As tenant `a`, delete tenant `b`'s row under a cursor: admitted is a leak. */
export async function probeDelete(p: Prober, target: Target & { kind: 'relation' }, role: string, a: string, b: string, rowB: FetchedRow): Promise<void> {
  const rel = target.rel;
  const sql = `DELETE FROM ${rel.sql} WHERE CURRENT OF rlsctl_row`;
  const outcome = classifyWrite(await p.session.as(role, a, sql, cursorOn(rel, rowB)), p.showValues, rowB.values);
  p.recordWrite(
    'VER006',
    'delete',
    target,
    role,
    a,
    outcome,
    `${role} acting as tenant ${a} deleted a row of tenant ${b} from ${labelOf(target, p.catalog)} (its row ${rowB.ctid} of ${rowB.storedIn}, under a cursor)`,
    sql,
  );
}
