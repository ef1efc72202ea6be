import { defineExplainRule } from './rule.js';

/** Reported by run-explain.ts when a query cannot be read or planned; no plan to check. */
export const exp004 = defineExplainRule({
  code: 'EXP004',
  name: 'query-failed',
  severity: 'error',
  title: 'The query could not be planned',
  description:
    'The query could not be parsed or planned as the app role with a tenant set: a syntax error, an unknown table or column, a missing privilege, a timeout, or a statement that is not a query.',
  remediation: "Fix the query at the location given; the message carries PostgreSQL's error.",
});
