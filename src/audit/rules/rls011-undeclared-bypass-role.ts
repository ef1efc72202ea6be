import { quoteIdent } from '../../compile/quote.js';
import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { manualFix, sqlFix } from '../fix.js';

/**
 * A login role that can become a *declared* bypass role is not reported: the
 * declaration says that bypassing through that role is intended, and who may
 * use it is the declaration's business (decision recorded in docs/rules/RLS011.md).
 */
export const rls011 = defineRule({
  code: 'RLS011',
  name: 'undeclared-bypass-role',
  severity: 'warning',
  title: 'A login role bypasses row level security and is not declared',
  description:
    "A role that can log in bypasses row level security (it is a superuser, has BYPASSRLS, or can SET ROLE to such a role) and is not one of the declared bypass roles. Whoever holds its credentials reads every tenant's rows.",
  remediation:
    'Remove the attribute (ALTER ROLE ... NOBYPASSRLS / NOSUPERUSER) or the membership, or declare the role under `roles.bypass` in the policy file (`--bypass-role` without one) if bypassing is its job.',
  check(ctx) {
    const findings: Finding[] = [];
    for (const role of ctx.catalog.roles) {
      if (!role.login || ctx.bypassRoles.has(role.name) || ctx.appRoleSet.has(role.name)) continue;
      const object = { kind: 'role' as const, name: role.name };
      const own = ctx.bypassesByAttribute(role.name);
      if (own) {
        findings.push(
          findingOf(
            rls011,
            object,
            `login role ${role.name} is ${own === 'superuser' ? 'a superuser' : 'BYPASSRLS'} and not a declared bypass role`,
            own === 'superuser'
              ? manualFix(
                  `declare ${role.name} as a bypass role (roles.bypass, --bypass-role), or, if it should not be a superuser: ALTER ROLE ${quoteIdent(role.name)} NOSUPERUSER;`,
                )
              : sqlFix([`ALTER ROLE ${quoteIdent(role.name)} NOBYPASSRLS;`], {
                  alternatives: [`declare ${role.name} as a bypass role (roles.bypass, --bypass-role) if bypassing is its job`],
                }),
            own,
          ),
        );
        continue;
      }
      for (const m of ctx.settableRoles(role.name)) {
        if (ctx.bypassRoles.has(m.role)) continue;
        const attr = ctx.bypassesByAttribute(m.role);
        if (!attr) continue;
        findings.push(
          findingOf(
            rls011,
            object,
            `login role ${role.name} can SET ROLE to ${m.role}, which is ${attr === 'superuser' ? 'a superuser' : 'BYPASSRLS'}, and neither is a declared bypass role`,
            sqlFix([`REVOKE ${quoteIdent(m.role)} FROM ${quoteIdent(role.name)};`], {
              alternatives: [`declare ${m.role} as a bypass role (roles.bypass, --bypass-role)`],
            }),
            m.role,
          ),
        );
      }
    }
    return findings;
  },
});
