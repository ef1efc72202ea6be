import { quoteIdent, quoteLiteral } from '../../compile/quote.js';
import type { AuditContext } from '../audit-context.js';
import type { PolicyRow, RelationRow } from '../../catalog/catalog-rows.js';
import { manualFix } from '../fix.js';
import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { clauses, policiesInScope, policyObject } from './policy-rule-helpers.js';

export const rls024 = defineRule({
  code: 'RLS024',
  name: 'user-editable-claim',
  severity: 'error',
  title: 'A policy takes the tenant or user from a claim the user can edit',
  description:
    "A policy reads the tenant (or the user's role or group) from user_metadata in the JWT (auth.jwt() -> 'user_metadata', request.jwt.claims), or from auth.users.raw_user_meta_data through a helper function. In Supabase, every signed-in user can change their own user metadata (supabase.auth.updateUser({ data })), so any user can name another tenant and read or write its rows.",
  remediation:
    'Take the tenant from a value only the server sets: app_metadata (raw_app_meta_data), or a membership table the user cannot write, read through a SECURITY DEFINER helper: org_id IN (SELECT private.user_org_ids()).',
  check(ctx) {
    const findings: Finding[] = [];
    for (const { rel, policy } of policiesInScope(ctx)) {
      const reasons = [...new Set(clauses(ctx, policy).flatMap((c) => c.facts.userEditable))];
      if (reasons.length === 0) continue;
      findings.push(
        findingOf(
          rls024,
          policyObject(rel, policy),
          `policy ${policy.name} on ${ctx.label(rel)} reads ${reasons.join(', ')}: a value every signed-in user can set for themselves, so any user can name another tenant`,
          manualFix(
            `decide which value only the server sets holds the tenant (app_metadata, a custom claim of the auth hook, or a membership table read through a SECURITY DEFINER helper), put the tenant there server-side, then change the policy; for example, if app_metadata holds it under this name:\n${exampleSql(ctx, rel, policy)}`,
          ),
        ),
      );
    }
    return findings;
  },
});

/** The policy with the tenant read from app_metadata, through auth.jwt() when the database has it, in the clauses the policy has: an example, not a fix (rlsctl cannot know the claim). */
function exampleSql(ctx: AuditContext, rel: RelationRow, policy: PolicyRow): string {
  const column = ctx.protectedTables.get(rel.oid)?.columnName ?? ctx.facts.tenantColumn;
  const claims = ctx.helpers.lookup(['auth', 'jwt'])
    ? '(SELECT auth.jwt())'
    : `(SELECT NULLIF(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb)`;
  const cast = { uuid: '::uuid', bigint: '::bigint', integer: '::integer', text: '' }[ctx.facts.tenantType];
  const predicate = `${quoteIdent(column)} = (${claims} -> 'app_metadata' ->> ${quoteLiteral(column)})${cast}`;
  const parts = [
    `-- read the tenant from app_metadata (only the server sets it), or from a membership table:`,
    `ALTER POLICY ${quoteIdent(policy.name)} ON ${ctx.sql(rel)}`,
  ];
  if (policy.using !== undefined) parts.push(`  USING (${predicate})`);
  if (policy.check !== undefined) parts.push(`  WITH CHECK (${predicate})`);
  return parts.join('\n') + ';';
}
