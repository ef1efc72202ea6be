import type { Finding } from '../../report/finding.js';
import type { PolicyRow } from '../../catalog/catalog-rows.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { copyPolicySql, manualFix, sqlFix } from '../fix.js';
import { quoteIdent } from '../../compile/quote.js';
import { EVENT_TRIGGER } from '../../compile/partition-trigger.js';

/**
 * The partition's policy is the parent's: same name, command, kind and roles
 * (not the text, which names the partition's columns). Compared field by
 * field, no string built: this runs for every policy of every partition.
 * Equal role lists are usually one array (src/catalog/read-catalog.ts, readPolicies, names each
 * distinct polroles once).
 */
function samePolicy(a: PolicyRow, b: PolicyRow): boolean {
  return a.name === b.name && a.command === b.command && a.permissive === b.permissive && (a.roles === b.roles || a.roles.join(',') === b.roles.join(','));
}

export const rls053 = defineRule({
  code: 'RLS053',
  name: 'partition-without-rls',
  severity: 'error',
  title: "A partition does not carry its protected parent's RLS flags or policies",
  description:
    "PostgreSQL applies the policies of the table a query names. A query through a partitioned table gets the parent's policies, but a query that names a partition directly gets the partition's own, and a partition created or attached later has none: without RLS on the partition, an app role with a grant on it reads every tenant's rows there.",
  remediation:
    "Enable and force row level security on the partition and give it the same policies as its parent (`rlsctl apply` protects every existing partition; run it after creating partitions, or set `partitions.protect_new` in the policy file and apply as a superuser to protect partitions at creation), or revoke the app roles' privileges on partitions.",
  check(ctx) {
    const findings: Finding[] = [];
    for (const [oid] of ctx.protectedPartitions) {
      const part = ctx.relations.get(oid)!;
      const parent = part.parentOid ? ctx.relations.get(part.parentOid) : undefined;
      if (!parent || !parent.rls) continue;
      const problems: string[] = [];
      if (!part.rls) problems.push('row level security is disabled');
      else {
        if (parent.force && !part.force) problems.push('row level security is not forced');
        // Read directly, the partition's own owner counts (src/rls/row-security-subjects.ts): an app role that
        // owns it, or has its owner's privileges, bypasses it unless forced, while the parent's policies hold it.
        for (const app of ctx.appRoles) {
          const direct = ctx.rowSecurity(app, part);
          if (direct.bypass && ctx.rowSecurity(app, parent).applies) problems.push(`app role ${app} bypasses it: ${direct.reason.message}`);
        }
      }
      const mine = ctx.policiesOf(oid);
      const missingPolicies = ctx.policiesOf(parent.oid).filter((p) => !mine.some((m) => samePolicy(m, p)));
      const missing = missingPolicies.map((p) => p.name);
      if (missing.length > 0) problems.push(`it lacks the parent's polic${missing.length === 1 ? 'y' : 'ies'} ${missing.join(', ')}`);
      if (problems.length === 0) continue;
      const sql = ctx.sql(part);
      // The parent's policies, copied: unless one names the parent itself (a `via` join on its columns), whose copy would not apply to the partition.
      const namesParent = (text: string | undefined) => text !== undefined && text.includes(`${quoteIdent(parent.name)}.`);
      const statements = [
        ...missingPolicies.map((p) => copyPolicySql(part, p)),
        ...(part.rls ? [] : [`ALTER TABLE ${sql} ENABLE ROW LEVEL SECURITY;`]),
        ...(parent.force && !part.force ? [`ALTER TABLE ${sql} FORCE ROW LEVEL SECURITY;`] : []),
      ];
      const fix = missingPolicies.some((p) => namesParent(p.using) || namesParent(p.check))
        ? manualFix(
            `create the parent's policies on ${ctx.label(part)} with its own name in their expressions, then ${statements.filter((s) => s.startsWith('ALTER')).join(' ')} (rlsctl apply does both)`,
          )
        : sqlFix(statements);
      const trigger = ctx.catalog.server.partitionTrigger;
      findings.push(
        findingOf(
          rls053,
          ctx.objectOf(part),
          `partition ${ctx.label(part)} of ${ctx.label(parent)}: ${problems.join('; ')}, so a query that names the partition is not isolated like its parent` +
            (trigger === 'enabled'
              ? ` (the ${EVENT_TRIGGER} event trigger is installed: the partition predates it, or was changed since)`
              : trigger === 'disabled'
                ? ` (the ${EVENT_TRIGGER} event trigger is installed but disabled)`
                : ''),
          fix,
        ),
      );
    }
    return findings;
  },
});
