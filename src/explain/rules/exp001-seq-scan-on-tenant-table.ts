import { reportUnbounded, unboundedScans } from '../tenant-scan.js';
import { defineExplainRule } from './rule.js';

export const exp001 = defineExplainRule({
  code: 'EXP001',
  name: 'seq-scan-on-tenant-table',
  severity: 'error',
  title: 'A tenant table is read by a full scan',
  description:
    "The query reads a tenant table with a sequential scan (or a full index scan with no index condition) even when sequential scans are disabled: no index can serve its tenant filter, so every tenant pays for reading every tenant's rows, and the cost grows with the whole table, not with the tenant.",
  remediation:
    'Create an index that leads with the tenant column, followed by the columns the query compares for equality and then its range or sort column; if such an index exists and is still not used, rewrite the policy so that its tenant predicate is `column = (SELECT ...)` on the bare column, with no OR and no per-row function.',
  check(ctx) {
    for (const unbounded of unboundedScans(ctx)) if (unbounded.scan.access !== 'index') reportUnbounded(ctx, exp001, unbounded);
  },
});
