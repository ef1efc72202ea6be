import { quoteIdent } from '../../compile/quote.js';
import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';

export const rls061 = defineRule({
  code: 'RLS061',
  name: 'global-unique-constraint',
  severity: 'warning',
  title: 'Unique constraint on a tenant table that leaves out the tenant column',
  description:
    "A unique constraint or unique index on a tenant table does not include the tenant column, so uniqueness is checked across all tenants: one tenant's value blocks another tenant from using it, and a failed insert tells a tenant that the value exists in some other tenant. Uniqueness checks do not apply row level security.",
  remediation:
    'Include the tenant column in the key: UNIQUE (tenant_id, number) instead of UNIQUE (number). For a surrogate primary key, make it (tenant_id, id) or keep it generated and never accept it from a client.',
  check(ctx) {
    const findings: Finding[] = [];
    for (const table of ctx.tenantTables()) {
      const column = table.column;
      if (!column) continue;
      for (const index of ctx.indexesOf(table.rel.oid)) {
        // An expression key (0) might hold the tenant column: not judged.
        if (!index.unique || index.keys.includes(0) || index.keys.includes(column.num)) continue;
        const kind = index.primary ? 'primary key' : index.constraint ? 'unique constraint' : 'unique index';
        const name = index.constraint ?? index.name;
        findings.push(
          findingOf(
            rls061,
            { kind: 'index', schema: table.rel.schema, table: table.rel.name, name: index.name },
            `${kind} ${name} on ${ctx.label(table.rel)} does not include ${column.name}: uniqueness is enforced across tenants, and a conflict tells one tenant about another's rows`,
            index.constraint
              ? `-- replace it with a key that leads with the tenant column, e.g.\nALTER TABLE ${ctx.sql(table.rel)} ADD CONSTRAINT ${quoteIdent(`${name}_per_tenant`)} UNIQUE (${quoteIdent(column.name)}, ...);\nALTER TABLE ${ctx.sql(table.rel)} DROP CONSTRAINT ${quoteIdent(name)};`
              : `CREATE UNIQUE INDEX CONCURRENTLY ${quoteIdent(`${index.name}_per_tenant`)} ON ${ctx.sql(table.rel)} (${quoteIdent(column.name)}, ...);\nDROP INDEX CONCURRENTLY ${quoteIdent(table.rel.schema)}.${quoteIdent(index.name)};`,
          ),
        );
      }
    }
    return findings;
  },
});
