import { quoteIdent } from '../../compile/quote.js';
import type { Finding } from '../../report/finding.js';
import { type AuditContext, clausesOf, coversCommand, effectiveExpression, findingOf } from '../audit-context.js';
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
    findings.push(...untenanted(ctx));
    return findings;
  },
});

/**
 * Without a policy file, tables in scope that hold no tenant column (so not
 * tenant tables, and not declared shared either): an always-true read policy
 * there is most often a public read by design (a price list, a catalog), and
 * is reported as a warning to confirm; an always-true write policy lets any
 * app role insert, change or delete every row, and stays an error. With a
 * policy file such a table is declared (shared tables are public by
 * design) or reported as undeclared (RLS005).
 */
function untenanted(ctx: AuditContext): Finding[] {
  const findings: Finding[] = [];
  if (ctx.facts.source !== 'inferred') return findings;
  for (const rel of ctx.catalog.relations) {
    if (!ctx.isTable(rel) || rel.isPartition || !rel.rls || !ctx.scopeSchemas.has(rel.schema) || ctx.protectedTables.has(rel.oid) || ctx.exempt.has(rel.oid))
      continue;
    const policies = ctx.policiesOf(rel.oid);
    for (const policy of policies) {
      if (!policy.permissive) continue;
      const reads = new Set<string>();
      const writes = new Map<string, Set<string>>();
      for (const role of rolesToCheck(ctx, policy)) {
        for (const { command, clause } of clausesOf(policy)) {
          if (!ctx.analyze(effectiveExpression(policy, clause))?.alwaysTrue) continue;
          // A restrictive policy that is not always true narrows it.
          const narrowed = policies.some(
            (p) =>
              !p.permissive && coversCommand(p.command, command) && ctx.policyAppliesTo(p, role) && !ctx.analyze(effectiveExpression(p, clause))?.alwaysTrue,
          );
          if (narrowed) continue;
          if (command === 'select') reads.add(role);
          else {
            if (!writes.has(role)) writes.set(role, new Set());
            writes.get(role)!.add(command.toUpperCase());
          }
        }
      }
      if (writes.size > 0) {
        const opened = [...writes].map(([role, commands]) => `${[...commands].join(', ')} for ${role}`).join('; ');
        findings.push(
          findingOf(
            rls030,
            policyObject(rel, policy),
            `policy ${policy.name} on ${ctx.label(rel)} is permissive and always true for writes: any user can ${opened} every row of it`,
            `DROP POLICY ${quoteIdent(policy.name)} ON ${ctx.sql(rel)};\n-- and grant the writes to the role that maintains the table, or give the policy a predicate`,
          ),
        );
      } else if (reads.size > 0) {
        const f = findingOf(
          rls030,
          policyObject(rel, policy),
          `policy ${policy.name} on ${ctx.label(rel)} makes every row readable to ${[...reads].join(', ')} (a public read): ${ctx.label(rel)} has no tenant column ${ctx.facts.tenantColumn}; confirm that it is meant to be public`,
          `-- if ${ctx.label(rel)} is public by design, declare it shared in the policy file; otherwise give policy ${quoteIdent(policy.name)} a predicate`,
        );
        f.severity = 'warning';
        findings.push(f);
      }
    }
  }
  return findings;
}
