import { quoteIdent } from '../../compile/quote.js';
import type { Finding } from '../../report/finding.js';
import { clausesOf, effectiveExpression, findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { guardStatement, sqlFix } from '../fix.js';
import { policyObject, rolesToCheck } from './policy-rule-helpers.js';

export const rls030 = defineRule({
  code: 'RLS030',
  name: 'permissive-always-true',
  severity: 'error',
  title: 'Permissive policy that admits every row, with no restrictive tenant policy',
  description:
    "A permissive policy on a tenant table applies to an app role and its USING or WITH CHECK is always true (true, 1 = 1, true OR ...). Permissive policies are OR-ed together, so this one alone admits every tenant's rows, unless a restrictive policy that checks the tenant is AND-ed beside it, which this table lacks for that role and command.",
  remediation:
    'Drop the policy or give it a real predicate; and keep the tenant predicate as a RESTRICTIVE policy (rlsctl_tenant_guard), so that a permissive policy added later can only widen access within the tenant.',
  check(ctx) {
    const findings: Finding[] = [];
    for (const table of ctx.tenantTables()) {
      for (const policy of ctx.policiesOf(table.rel.oid)) {
        if (!policy.permissive) continue;
        // role → the commands it opens: reads through USING, writes through WITH CHECK.
        const holes = new Map<string, Set<string>>();
        for (const role of rolesToCheck(ctx, policy)) {
          for (const { command, clause } of clausesOf(policy)) {
            const expression = effectiveExpression(policy, clause);
            if (!ctx.analyze(expression)?.alwaysTrue) continue;
            if (ctx.restrictiveTenantGuard(table, role, command, clause)) continue;
            if (!holes.has(role)) holes.set(role, new Set());
            holes.get(role)!.add(command.toUpperCase());
          }
        }
        if (holes.size === 0) continue;
        const opened = [...holes].map(([role, commands]) => `${[...commands].join(', ')} for ${role}`).join('; ');
        // Fail-closed either way: the restrictive guard keeps what the policy admits within the tenant; dropping it admits less.
        const drop = `DROP POLICY ${quoteIdent(policy.name)} ON ${ctx.sql(table.rel)};`;
        const guard = guardStatement(ctx, table);
        findings.push(
          findingOf(
            rls030,
            policyObject(table.rel, policy),
            `policy ${policy.name} on ${ctx.label(table.rel)} is permissive and always true, with no restrictive tenant policy beside it: it admits every tenant's rows to ${opened}`,
            'sql' in guard
              ? sqlFix([guard.sql], { alternatives: [`drop the policy instead: ${drop}`] })
              : sqlFix([drop], { note: `the policy is dropped, not guarded: ${guard.reason}` }),
          ),
        );
      }
    }
    return findings;
  },
});
