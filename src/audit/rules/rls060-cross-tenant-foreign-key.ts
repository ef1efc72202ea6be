import { quoteIdent } from '../../compile/quote.js';
import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';

export const rls060 = defineRule({
  code: 'RLS060',
  name: 'cross-tenant-foreign-key',
  severity: 'error',
  title: 'Foreign key between tenant tables that leaves out the tenant column',
  description:
    "A foreign key from one tenant table to another does not pair the tenant columns. Referential checks run without row level security, so a tenant can point its row at another tenant's row (and learn, by the error or its absence, whether a key exists in another tenant). Pairing the tenant columns makes a cross-tenant reference impossible in the schema itself.",
  remediation:
    'Make the referenced key include the tenant column (UNIQUE (tenant_id, id)) and the foreign key pair it: FOREIGN KEY (tenant_id, parent_id) REFERENCES parent (tenant_id, id).',
  check(ctx) {
    const findings: Finding[] = [];
    for (const fk of ctx.catalog.foreignKeys) {
      const from = ctx.protectedTables.get(fk.relOid);
      const to = ctx.protectedTables.get(fk.refOid);
      if (!from || !to || from.mode !== 'tenant' || to.mode !== 'tenant' || !from.column || !to.column) continue;
      const paired = fk.columns.some((c, i) => c === from.column!.num && fk.refColumns[i] === to.column!.num);
      if (paired) continue;
      const rel = from.rel;
      const cols = [from.column.name, ...fk.columnNames.filter((c) => c !== from.column!.name)];
      const refs = [to.column.name, ...fk.refColumnNames.filter((c) => c !== to.column!.name)];
      findings.push(
        findingOf(
          rls060,
          ctx.objectOf(rel),
          `foreign key ${fk.name} of ${ctx.label(rel)} (${fk.columnNames.join(', ')}) references ${ctx.label(to.rel)} (${fk.refColumnNames.join(', ')}) without pairing ${from.column.name} with ${to.column.name}: a row can reference another tenant's row`,
          `-- needs a unique key on ${ctx.sql(to.rel)} (${refs.map(quoteIdent).join(', ')})\nALTER TABLE ${ctx.sql(rel)} DROP CONSTRAINT ${quoteIdent(fk.name)},\n  ADD CONSTRAINT ${quoteIdent(fk.name)} FOREIGN KEY (${cols.map(quoteIdent).join(', ')}) REFERENCES ${ctx.sql(to.rel)} (${refs.map(quoteIdent).join(', ')});`,
          fk.name,
        ),
      );
    }
    return findings;
  },
});
