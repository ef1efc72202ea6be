import { defineVerifyRule, detailsMessage } from '../rule.js';
import { crossTenantHelp, readerHelp } from './verify-help.js';

/** docs/rules/VER001.md */
export const ver001 = defineVerifyRule({
  code: 'VER001',
  name: 'cross-tenant-read',
  severity: 'error',
  title: "A tenant can read another tenant's rows",
  description:
    'Acting as an app role with one tenant set, a query returned rows that belong to another tenant: directly from a tenant table or partition, or through a view, a materialized view or a SECURITY DEFINER function.',
  remediation:
    "Protect the relation with row level security (rlsctl apply), make views security_invoker, revoke app roles' access to materialized views, and make SECURITY DEFINER functions filter by the current tenant or run as SECURITY INVOKER.",
  leak: true,
  message: detailsMessage,
  help: (input) => readerHelp(input) ?? crossTenantHelp(input, 'SELECT (USING)'),
});
