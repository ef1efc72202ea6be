import { defineVerifyRule, detailsMessage } from '../rule.js';
import { crossTenantHelp } from './verify-help.js';

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
