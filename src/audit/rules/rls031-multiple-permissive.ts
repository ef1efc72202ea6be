import type { Finding } from '../../report/finding.js';
import { WRITE_COMMANDS, coversCommand, findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { manualFix } from '../fix.js';

export const rls031 = defineRule({
  code: 'RLS031',
  name: 'multiple-permissive',
  severity: 'warning',
  title: 'More than one permissive policy for the same role and command',
  description:
    'Several permissive policies apply to the same role for the same command on a table. PostgreSQL evaluates every one of them for every row and ORs the results, which costs time on each query and makes the effective rule harder to read: the widest policy wins.',
  remediation:
    'Merge the permissive policies for that role and command into one (their predicates OR-ed), or make the ones that should narrow access RESTRICTIVE.',
  check(ctx) {
    const findings: Finding[] = [];
    for (const rel of ctx.catalog.relations) {
      if (!ctx.isTable(rel) || rel.isPartition || !ctx.scopeSchemas.has(rel.schema) || ctx.exempt.has(rel.oid)) continue;
      const permissive = ctx.policiesOf(rel.oid).filter((p) => p.permissive);
      if (permissive.length < 2) continue;
      const roles = ctx.appRoles.length > 0 ? ctx.appRoles : [...new Set(permissive.flatMap((p) => p.roles))].sort();
      for (const role of roles) {
        // command → names; commands with the same set are reported together.
        const byNames = new Map<string, string[]>();
        for (const command of WRITE_COMMANDS) {
          const names = permissive
            .filter((p) => coversCommand(p.command, command) && (role === 'public' ? p.roles.includes('public') : ctx.policyAppliesTo(p, role)))
            .map((p) => p.name);
          if (names.length < 2) continue;
          const key = names.join(', ');
          byNames.set(key, [...(byNames.get(key) ?? []), command]);
        }
        for (const [names, commands] of byNames) {
          findings.push(
            findingOf(
              rls031,
              ctx.objectOf(rel),
              `${ctx.label(rel)} has ${names.split(', ').length} permissive policies for ${role} on ${commands.map((c) => c.toUpperCase()).join(', ')}: ${names}; each is evaluated for every row`,
              manualFix(
                `merge ${names} into one permissive policy per command for ${role} (predicates OR-ed), or make the narrowing ones AS RESTRICTIVE: which one is meant is a decision about what ${role} may see`,
              ),
              `${role}:${commands.join('+')}`,
            ),
          );
        }
      }
    }
    return findings;
  },
});
