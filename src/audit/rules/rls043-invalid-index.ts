import { quoteIdent } from '../../compile/quote.js';
import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { manualFix, sqlFix } from '../fix.js';

export const rls043 = defineRule({
  code: 'RLS043',
  name: 'invalid-index',
  severity: 'warning',
  title: 'Invalid index on a tenant table',
  description:
    'An index on a tenant table (or one of its partitions) is marked invalid, the remains of a CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY that failed. PostgreSQL keeps updating it on every write but never uses it for a query, and an invalid unique index enforces nothing.',
  remediation: 'REINDEX INDEX CONCURRENTLY the index, or DROP INDEX CONCURRENTLY it and build it again.',
  check(ctx) {
    const findings: Finding[] = [];
    const check = (relOid: string) => {
      const rel = ctx.relations.get(relOid)!;
      for (const index of ctx.indexesOf(relOid)) {
        if (index.valid) continue;
        // REINDEX CONCURRENTLY cannot run on a partitioned index; drop and build again there.
        const fix =
          rel.kind === 'p'
            ? manualFix(
                `DROP INDEX ${quoteIdent(rel.schema)}.${quoteIdent(index.name)}; then create it again with its definition (REINDEX CONCURRENTLY cannot rebuild a partitioned index)`,
              )
            : sqlFix([`REINDEX INDEX CONCURRENTLY ${quoteIdent(rel.schema)}.${quoteIdent(index.name)};`]);
        findings.push(
          findingOf(
            rls043,
            { kind: 'index', schema: rel.schema, table: rel.name, name: index.name },
            `index ${index.name} on ${ctx.label(rel)} is invalid (a failed concurrent build): it is maintained on every write and used by no query`,
            fix,
          ),
        );
      }
    };
    for (const table of ctx.tenantTables()) check(table.rel.oid);
    for (const [oid, root] of ctx.protectedPartitions) if (root.mode === 'tenant') check(oid);
    return findings;
  },
});
