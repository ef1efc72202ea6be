import { defineVerifyRule } from '../rule.js';
import { currentTenantSql, readerHelp } from './verify-help.js';

/** docs/rules/VER002.md */
export const ver002 = defineVerifyRule({
  code: 'VER002',
  name: 'unset-context-visible',
  severity: 'error',
  title: 'Rows are visible with no tenant set',
  description:
    'Acting as an app role in a session where no tenant was ever set, or after a transaction that set it with set_config(..., true) ended, a query returned tenant rows. Every query must return zero rows without a tenant.',
  remediation:
    "Compare the tenant column with (SELECT NULLIF(current_setting('SETTING', true), '')::TYPE): an unset or empty setting then admits no row. Remove predicates that admit every row when the setting is empty.",
  leak: true,
  message: (e, label) => `${e.role} sees rows of ${label} with no tenant set (${e.states.join('; and ')}): ${e.statement}`,
  help(input) {
    const reader = readerHelp(input);
    if (reader || input.target.kind === 'function') return reader;
    return `compare with ${currentTenantSql(input)} in every policy of ${input.target.rel.sql}: an unset or empty setting then admits no row`;
  },
});
