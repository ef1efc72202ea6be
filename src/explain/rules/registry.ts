import type { ExplainRule } from './rule.js';
import { exp001 } from './exp001-seq-scan-on-tenant-table.js';
import { exp002 } from './exp002-tenant-filter-not-index-condition.js';
import { exp003 } from './exp003-per-row-policy-subplan.js';
import { exp004 } from './exp004-query-failed.js';

/** Every explain rule, in code order (cli.md, "explain rules"). A code is never reused; each has a page under docs/rules/. */
export const EXPLAIN_RULES: ExplainRule[] = [exp001, exp002, exp003, exp004];
