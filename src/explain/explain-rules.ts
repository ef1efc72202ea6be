import type { RuleMeta } from '../report/finding.js';

/**
 * The four `explain` rules (cli.md, "explain rules"). Codes are stable and
 * never reused; each has a page under docs/rules/.
 */

export const SEQ_SCAN_ON_TENANT_TABLE: RuleMeta = {
  code: 'EXP001',
  name: 'seq-scan-on-tenant-table',
  severity: 'error',
  title: 'A tenant table is read by a full scan',
  description:
    "The query reads a tenant table with a sequential scan (or a full index scan with no index condition) even when sequential scans are disabled: no index can serve its tenant filter, so every tenant pays for reading every tenant's rows, and the cost grows with the whole table, not with the tenant.",
  remediation:
    'Create an index that leads with the tenant column, followed by the columns the query compares for equality and then its range or sort column; if such an index exists and is still not used, rewrite the policy so that its tenant predicate is `column = (SELECT ...)` on the bare column, with no OR and no per-row function.',
};

export const TENANT_FILTER_NOT_INDEX_CONDITION: RuleMeta = {
  code: 'EXP002',
  name: 'tenant-filter-not-index-condition',
  severity: 'warning',
  title: 'The tenant predicate is only a filter on an index scan',
  description:
    'The query reads a tenant table through an index, but the tenant predicate is not among the index conditions: the index returns rows of every tenant and the tenant filter discards the others one by one.',
  remediation:
    'Create an index that leads with the tenant column and continues with the columns of the index now used, or rewrite the policy so that its tenant predicate can be an index condition.',
};

export const PER_ROW_POLICY_SUBPLAN: RuleMeta = {
  code: 'EXP003',
  name: 'per-row-policy-subplan',
  severity: 'warning',
  title: 'A policy sub-query runs once per row',
  description:
    'A sub-query of a row-level security policy is planned as a SubPlan that runs for every row the scan reads, instead of an InitPlan that runs once per statement (or a hashed SubPlan that runs once and is probed per row).',
  remediation:
    'Make the policy look up the tenant once: compare the tenant column with an uncorrelated scalar sub-select, `tenant_id = (SELECT ...)`, and keep references to the row being checked out of the sub-query.',
};

export const QUERY_FAILED: RuleMeta = {
  code: 'EXP004',
  name: 'query-failed',
  severity: 'error',
  title: 'The query could not be planned',
  description:
    'The query could not be parsed or planned as the app role with a tenant set: a syntax error, an unknown table or column, a missing privilege, a timeout, or a statement that is not a query.',
  remediation: "Fix the query at the location given; the message carries PostgreSQL's error.",
};

export const EXPLAIN_RULES: RuleMeta[] = [SEQ_SCAN_ON_TENANT_TABLE, TENANT_FILTER_NOT_INDEX_CONDITION, PER_ROW_POLICY_SUBPLAN, QUERY_FAILED];
