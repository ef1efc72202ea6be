import { reportUnbounded, unboundedScans } from '../tenant-scan.js';
import { defineExplainRule } from './rule.js';

export const exp002 = defineExplainRule({
  code: 'EXP002',
  name: 'tenant-filter-not-index-condition',
  severity: 'warning',
  title: 'The tenant predicate is only a filter on an index scan',
  description:
    'The query reads a tenant table through an index, but the tenant predicate is not among the index conditions: the index returns rows of every tenant and the tenant filter discards the others one by one.',
  remediation:
    'Create an index that leads with the tenant column and continues with the columns of the index now used, or rewrite the policy so that its tenant predicate can be an index condition.',
  check(ctx) {
    for (const unbounded of unboundedScans(ctx)) if (unbounded.scan.access === 'index') reportUnbounded(ctx, exp002, unbounded);
  },
});
