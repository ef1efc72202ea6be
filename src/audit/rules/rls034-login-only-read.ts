import type { Finding } from '../../report/finding.js';
import { coversCommand, effectiveExpression, findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { policyObject, rolesToCheck } from './policy-rule-helpers.js';
import { freePolicyName, guardStatement, manualFix, sqlFix } from '../fix.js';
import { quoteIdent } from '../../compile/quote.js';
import { quoteRole } from '../../compile/render-sql.js';
import type { PolicyRow } from '../../catalog/catalog-rows.js';
import type { FindingFix } from '../../report/finding.js';
import type { AuditContext, ProtectedTable } from '../audit-context.js';

export const rls034 = defineRule({
  code: 'RLS034',
  name: 'login-only-read',
  severity: 'error',
  title: 'A read policy on a tenant table only checks that someone is signed in',
  description:
    "A permissive policy lets an app role read a tenant table, and its USING reads who the user is (auth.uid(), auth.role(), a JWT claim, a setting, a membership sub-query) but only tests that a user is signed in, with no column of the row: auth.uid() IS NOT NULL, (SELECT auth.uid()) IS NOT NULL, auth.role() = 'authenticated', or an AND of such tests. Every signed-in user of every tenant then reads every tenant's rows, unless a restrictive policy that checks the tenant is AND-ed beside it, which this table lacks for that role.",
  remediation:
    'Tie the row to the user: compare the tenant column with the tenants the user belongs to (org_id IN (SELECT private.user_org_ids())), or keep the policy and add the restrictive tenant guard.',
  check(ctx) {
    const findings: Finding[] = [];
    for (const table of ctx.tenantTables()) {
      for (const policy of ctx.policiesOf(table.rel.oid)) {
        if (!policy.permissive || !coversCommand(policy.command, 'select')) continue;
        const facts = ctx.analyze(effectiveExpression(policy, 'using'));
        // Only the shapes that test a sign-in: a sub-query (EXISTS (SELECT 1 FROM admins WHERE user_id = auth.uid()))
        // or a boolean helper (is_admin()) may be a deliberate cross-tenant rule, and is not judged.
        if (!facts || facts.unparsable || !facts.loginOnly) continue;
        const roles = rolesToCheck(ctx, policy).filter((role) => !ctx.restrictiveTenantGuard(table, role, 'select', 'using'));
        if (roles.length === 0) continue;
        const source = facts.sources.find((s) => s.kind === 'function') ?? facts.sources[0];
        const what =
          source.kind === 'function' ? `${source.name}()` : source.kind === 'claim' ? `the claim ${source.path?.join('.')}` : `the setting ${source.name}`;
        findings.push(
          findingOf(
            rls034,
            policyObject(table.rel, policy),
            `policy ${policy.name} on ${ctx.label(table.rel)} lets ${roles.join(', ')} read every row once signed in: its USING reads ${what} but no column of the row`,
            fixOf(ctx, table, policy, roles),
          ),
        );
      }
    }
    return findings;
  },
});

/**
 * The fix in the table's own terms (src/audit/fix.ts): the restrictive tenant
 * guard with the tenant predicate another policy of the table already uses,
 * or the generated one when the tenant comes from a plain setting; otherwise
 * what must be decided (no invented setting).
 */
function fixOf(ctx: AuditContext, table: ProtectedTable, policy: PolicyRow, roles: string[]): FindingFix {
  const own = ctx.policiesOf(table.rel.oid).find((p) => p !== policy && p.using !== undefined && ctx.checksTenant(table, p.using));
  if (own?.using !== undefined) {
    const name = quoteIdent(freePolicyName(ctx, table.rel, `${policy.name}_tenant`));
    return sqlFix([`CREATE POLICY ${name} ON ${ctx.sql(table.rel)} AS RESTRICTIVE FOR SELECT TO ${roles.map(quoteRole).join(', ')}\n  USING (${own.using});`], {
      note: `holds the tenant predicate of policy ${own.name} for reads too`,
    });
  }
  const guard = guardStatement(ctx, table);
  if ('sql' in guard) return sqlFix([guard.sql], { note: 'the guard holds the tenant predicate for every command of the app roles' });
  return manualFix(
    `decide where the user's tenants come from (a membership table read through a SECURITY DEFINER function, a claim only the server sets), then hold that tenant test as a restrictive policy for reads: ${guard.reason}`,
  );
}
