import { defineVerifyRule, detailsMessage } from '../rule.js';
import { crossTenantHelp } from './verify-help.js';

/** docs/rules/VER005.md */
export const ver005 = defineVerifyRule({
  code: 'VER005',
  name: 'cross-tenant-update',
  severity: 'error',
  title: "A tenant can update another tenant's rows or move its own rows to another tenant",
  description: "Acting as an app role with one tenant set, an UPDATE changed a row of another tenant, or moved one of the tenant's own rows to another tenant.",
  remediation: 'Give the UPDATE policies both a USING and a WITH CHECK that compare the tenant column with the current tenant.',
  leak: true,
  message: detailsMessage,
  help: (input) => crossTenantHelp(input, 'UPDATE (USING and WITH CHECK)'),
});
