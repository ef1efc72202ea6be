import { quoteIdent } from '../../compile/quote.js';
import type { Finding } from '../../report/finding.js';
import { effectiveExpression, findingOf, clausesOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { guardStatement, manualFix, repairExpression, sqlFix, tenantPredicate } from '../fix.js';
import { policyObject, rolesToCheck } from './policy-rule-helpers.js';

export const rls032 = defineRule({
  code: 'RLS032',
  name: 'write-not-tenant-checked',
  severity: 'error',
  title: 'A policy allows INSERT or UPDATE without checking the tenant column',
  description:
    'A permissive policy lets an app role insert or update rows of a tenant table, and its WITH CHECK (or the USING it falls back to) does not test the tenant column, with no restrictive tenant policy beside it. A tenant can then write rows into another tenant, or move its rows there, which the other tenant then sees as its own.',
  remediation:
    'Give the policy a WITH CHECK that compares the tenant column with the current tenant, or add the restrictive tenant guard (FOR ALL, USING and WITH CHECK).',
  check(ctx) {
    const findings: Finding[] = [];
    for (const table of ctx.tenantTables()) {
      for (const policy of ctx.policiesOf(table.rel.oid)) {
        if (!policy.permissive) continue;
        const holes = new Set<string>();
        for (const role of rolesToCheck(ctx, policy)) {
          for (const { command, clause } of clausesOf(policy)) {
            if (clause !== 'check') continue;
            const expression = effectiveExpression(policy, 'check');
            const facts = ctx.analyze(expression);
            // Always-true checks are RLS030's; an unparsable one is not judged.
            if (!facts || facts.alwaysTrue || facts.unparsable || ctx.checksTenant(table, expression)) continue;
            if (ctx.restrictiveTenantGuard(table, role, command, 'check')) continue;
            holes.add(`${command.toUpperCase()} for ${role}`);
          }
        }
        if (holes.size === 0) continue;
        const column = table.columnName;
        // Fail-closed: the tenant predicate AND-ed to what the policy checks now (its condition kept);
        // the restrictive guard as the alternative. The WITH CHECK of an INSERT, UPDATE or ALL policy only.
        const predicate = tenantPredicate(ctx, table, table.rel);
        const guard = guardStatement(ctx, table);
        const current = effectiveExpression(policy, 'check');
        const fix =
          'sql' in predicate && current !== undefined && policy.command !== 'select' && policy.command !== 'delete'
            ? sqlFix(
                [
                  `ALTER POLICY ${quoteIdent(policy.name)} ON ${ctx.sql(table.rel)}\n  WITH CHECK ((${repairExpression(ctx, table.rel, current)}) AND ${predicate.sql});`,
                ],
                {
                  alternatives: 'sql' in guard ? [`add the restrictive guard:\n${guard.sql}`] : [],
                },
              )
            : 'sql' in guard
              ? sqlFix([guard.sql])
              : manualFix(`${guard.reason}; then check the tenant in the WITH CHECK of policy ${policy.name} on ${ctx.label(table.rel)}`);
        findings.push(
          findingOf(
            rls032,
            policyObject(table.rel, policy),
            `policy ${policy.name} on ${ctx.label(table.rel)} allows ${[...holes].join(', ')} without checking ${column ? `the tenant column ${column}` : 'the tenant'}: a tenant can write rows into another tenant`,
            fix,
          ),
        );
      }
    }
    return findings;
  },
});
