import { quoteIdent } from '../../compile/quote.js';
import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { manualFix, sqlFix } from '../fix.js';

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
        // The same key with the tenant column first (its columns from the catalog, never a placeholder).
        const perTenantKeyFix = () => {
          const keys = [column.name, ...(index.keyNames ?? [])];
          const list = keys.map(quoteIdent).join(', ');
          const referenced = ctx.catalog.foreignKeys.some((fk) => fk.refOid === table.rel.oid);
          if (!index.keyNames || index.keyNames.length !== index.keys.length || index.partial)
            return manualFix(`replace ${kind} ${name} with one that leads with ${column.name}`);
          if (referenced)
            return manualFix(
              `foreign keys reference ${ctx.label(table.rel)}: add a key (${list}) first, point the foreign keys at it (tenant columns paired), then drop ${kind} ${name}`,
            );
          const deferrable = index.deferrable ? ' DEFERRABLE' : '';
          if (index.constraint)
            return sqlFix([
              `ALTER TABLE ${ctx.sql(table.rel)} DROP CONSTRAINT ${quoteIdent(name)},\n  ADD CONSTRAINT ${quoteIdent(name)} ${index.primary ? 'PRIMARY KEY' : 'UNIQUE'} (${list})${deferrable};`,
            ]);
          return sqlFix([
            `CREATE UNIQUE INDEX CONCURRENTLY ${quoteIdent(`${index.name}_per_tenant`)} ON ${ctx.sql(table.rel)} (${list});`,
            `DROP INDEX CONCURRENTLY ${quoteIdent(table.rel.schema)}.${quoteIdent(index.name)};`,
          ]);
        };
        findings.push(
          findingOf(
            rls061,
            { kind: 'index', schema: table.rel.schema, table: table.rel.name, name: index.name },
            `${kind} ${name} on ${ctx.label(table.rel)} does not include ${column.name}: uniqueness is enforced across tenants, and a conflict tells one tenant about another's rows`,
            perTenantKeyFix(),
          ),
        );
      }
    }
    return findings;
  },
});
