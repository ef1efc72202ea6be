import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { sqlFix } from '../fix.js';

export const rls004 = defineRule({
  code: 'RLS004',
  name: 'policy-without-rls',
  severity: 'error',
  title: 'Policies exist but row level security is disabled',
  description:
    'A table has policies, but row level security is not enabled on it, so PostgreSQL ignores them all: the policies read as protection in every review while every role with a grant sees every row.',
  remediation: 'ALTER TABLE ... ENABLE ROW LEVEL SECURITY (and FORCE ROW LEVEL SECURITY), or drop the policies if the table is meant to be open.',
  check(ctx) {
    const findings: Finding[] = [];
    for (const rel of ctx.catalog.relations) {
      if (!ctx.isTable(rel) || rel.isPartition || rel.rls || !ctx.scopeSchemas.has(rel.schema) || ctx.exempt.has(rel.oid)) continue;
      const policies = ctx.policiesOf(rel.oid);
      if (policies.length === 0) continue;
      const sql = ctx.sql(rel);
      findings.push(
        findingOf(
          rls004,
          ctx.objectOf(rel),
          `${ctx.label(rel)} has ${policies.length} polic${policies.length === 1 ? 'y' : 'ies'} (${policies.map((p) => p.name).join(', ')}) but row level security is disabled, so PostgreSQL ignores them`,
          sqlFix([`ALTER TABLE ${sql} ENABLE ROW LEVEL SECURITY;`, `ALTER TABLE ${sql} FORCE ROW LEVEL SECURITY;`]),
        ),
      );
    }
    return findings;
  },
});
