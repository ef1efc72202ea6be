import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';

export const rls001 = defineRule({
  code: 'RLS001',
  name: 'rls-disabled',
  severity: 'error',
  title: 'Tenant table without row level security',
  description:
    "A table that holds tenant rows (or, with a policy file, a table in a managed schema that the app roles can reach) does not have row level security enabled: every app query sees and changes every tenant's rows, whatever policies exist.",
  remediation: 'Create the tenant policies, then ENABLE and FORCE ROW LEVEL SECURITY on the table (`rlsctl apply` does both, in that order).',
  check(ctx) {
    const findings: Finding[] = [];
    for (const t of ctx.protectedTables.values()) {
      if (t.rel.rls) continue;
      const what = t.mode === 'shared' ? 'a shared table' : 'a tenant table';
      findingsPush(findings, t.rel, `${ctx.label(t.rel)} is ${what} without row level security: every app query sees every tenant's rows`);
    }
    // With a policy file: tables in a managed schema that the file does not
    // declare and that the app roles can reach (RLS005 says "declare it").
    for (const [oid, roles] of ctx.catalog.appReach) {
      const rel = ctx.relations.get(oid);
      if (!rel || !ctx.isTable(rel) || rel.rls || rel.isPartition || ctx.protectedTables.has(oid) || ctx.exempt.has(oid)) continue;
      findingsPush(findings, rel, `${ctx.label(rel)} is in a managed schema, undeclared, without row level security, and ${roles.join(', ')} can reach it`);
    }
    return findings;

    function findingsPush(out: Finding[], rel: Parameters<typeof ctx.sql>[0], message: string) {
      const sql = ctx.sql(rel);
      out.push(
        findingOf(
          rls001,
          ctx.objectOf(rel),
          message,
          `-- after creating its policies:\nALTER TABLE ${sql} ENABLE ROW LEVEL SECURITY;\nALTER TABLE ${sql} FORCE ROW LEVEL SECURITY;`,
        ),
      );
    }
  },
});
