import { indexName } from '../../compile/desired-state.js';
import { quoteIdent } from '../../compile/quote.js';
import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { sqlFix } from '../fix.js';

export const rls040 = defineRule({
  code: 'RLS040',
  name: 'missing-tenant-index',
  severity: 'warning',
  title: 'No valid index leads with the tenant column',
  description:
    'Every query of a tenant table carries the tenant predicate. Without a valid, non-partial index whose first column is the tenant column (for a `via` table: the parent key columns), PostgreSQL reads the whole table and filters it for every query of every tenant.',
  remediation:
    'CREATE INDEX CONCURRENTLY ... ON table (tenant_column, ...): put the tenant column first in the indexes that serve the application queries (`rlsctl apply` builds one when none does).',
  check(ctx) {
    const findings: Finding[] = [];
    for (const table of ctx.tenantTables()) {
      const lead = table.via ? table.via.columns : table.columnName ? [table.columnName] : [];
      if (lead.length === 0) continue;
      const nums = lead.map((c) => ctx.column(table.rel.oid, c)?.num);
      if (nums.some((n) => n === undefined)) continue; // the column is missing: another problem, not an index one
      const want = new Set(nums as number[]);
      const served = ctx
        .indexesOf(table.rel.oid)
        .some((i) => i.valid && !i.partial && i.keys.length >= want.size && i.keys.slice(0, want.size).every((k) => want.has(k)));
      if (served) continue;
      // A partitioned table cannot build an index concurrently (PostgreSQL builds it on each partition).
      const concurrently = table.rel.kind === 'p' ? '' : 'CONCURRENTLY ';
      findings.push(
        findingOf(
          rls040,
          ctx.objectOf(table.rel),
          `${ctx.label(table.rel)} has no valid index that leads with ${lead.join(', ')}: every query reads the whole table to find one tenant's rows`,
          sqlFix([`CREATE INDEX ${concurrently}${quoteIdent(indexName(table.rel.name, lead))} ON ${ctx.sql(table.rel)} (${lead.map(quoteIdent).join(', ')});`]),
        ),
      );
    }
    return findings;
  },
});
