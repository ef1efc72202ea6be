import { defineVerifyRule, detailsMessage } from '../rule.js';
import { crossTenantHelp } from './verify-help.js';

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
