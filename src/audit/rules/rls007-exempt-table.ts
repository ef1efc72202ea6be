import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';

/**
 * Not in the spec's table: the policy-file spec says "`audit` lists every
 * exempt table with its reason", and a listing is a finding at info level.
 */
export const rls007 = defineRule({
  code: 'RLS007',
  name: 'exempt-table',
  severity: 'info',
  title: 'Table exempt from tenant isolation',
  description:
    'The policy file declares the table `mode: exempt`: rlsctl leaves its row level security as it is and the other table rules skip it. The audit lists every exempt table with the reason the file gives, so that the exemptions stay visible in every report.',
  remediation: 'Nothing, as long as the reason still holds. If the table now holds tenant rows, declare it `tenant` and run `rlsctl apply`.',
  needsPolicyFile: true,
  check(ctx) {
    const findings: Finding[] = [];
    for (const t of ctx.facts.exemptTables) {
      const rel = ctx.relationsByKey.get(`${t.schema}.${t.name}`);
      const object = rel ? ctx.objectOf(rel) : { kind: 'table' as const, schema: t.schema, name: t.name };
      findings.push(findingOf(rls007, object, `${t.schema}.${t.name} is exempt from tenant isolation: ${t.reason}`));
    }
    return findings;
  },
});
