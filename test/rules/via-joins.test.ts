import { beforeAll, describe, expect, it } from 'vitest';
import { viaJoins } from '../../src/audit/via-joins.js';
import { loadParser } from '../../src/policy/expression.js';

/**
 * The join RLS033 judges, read from policy texts as pg_get_expr prints them
 * (every column qualified inside the sub-query) and as people write them.
 * Pure: no server.
 */
beforeAll(async () => {
  await loadParser();
});

const self = { schema: 'app', name: 'lines' };
const parentColumns = new Set(['id', 'tenant_id', 'open']);
const has = (_: unknown, column: string) => parentColumns.has(column);

describe('viaJoins', () => {
  it('the generated predicate: the parent by its alias, the join column', () => {
    expect(viaJoins('(EXISTS ( SELECT 1\n   FROM app.invoices rls_parent\n  WHERE (rls_parent.id = lines.invoice_id)))', self, has)).toEqual([
      { parent: { schema: 'app', name: 'invoices' }, parentColumns: ['id'] },
    ]);
  });

  it('every column of an AND, either side of =, unaliased and unqualified parents too', () => {
    expect(viaJoins('EXISTS (SELECT 1 FROM invoices WHERE lines.invoice_id = invoices.id AND tenant_id = lines.t AND invoices.open)', self, has)).toEqual([
      { parent: { name: 'invoices' }, parentColumns: ['id', 'tenant_id'] },
    ]);
    expect(viaJoins('EXISTS (SELECT 1 FROM app.invoices WHERE app.invoices.id = app.lines.invoice_id)', self, has)).toEqual([
      { parent: { schema: 'app', name: 'invoices' }, parentColumns: ['id'] },
    ]);
  });

  it('IN and = ANY over a sub-select of the parent: the selected parent columns, one per tested column of the row', () => {
    expect(viaJoins('(lines.invoice_id IN ( SELECT invoices.id\n   FROM app.invoices))', self, has)).toEqual([
      { parent: { schema: 'app', name: 'invoices' }, parentColumns: ['id'] },
    ]);
    expect(viaJoins('((lines.t, lines.invoice_id) IN (SELECT p.tenant_id, p.id FROM app.invoices p))', self, has)).toEqual([
      { parent: { schema: 'app', name: 'invoices' }, parentColumns: ['tenant_id', 'id'] },
    ]);
    expect(viaJoins('(invoice_id = ANY (SELECT p.id FROM app.invoices p WHERE p.open))', self, has)).toEqual([
      { parent: { schema: 'app', name: 'invoices' }, parentColumns: ['id'] },
    ]);
    // Not a join: another operator, or a constant tested.
    expect(viaJoins('(invoice_id < ANY (SELECT p.id FROM app.invoices p))', self, has)).toEqual([]);
    expect(viaJoins('(1 IN (SELECT p.id FROM app.invoices p))', self, has)).toEqual([]);
  });

  it('a relation named like the alias: the alias is the parent, the qualified name of the relation is the row', () => {
    expect(
      viaJoins(
        'EXISTS (SELECT 1 FROM app.invoices rls_parent_row WHERE rls_parent_row.id = rls_parent.invoice_id)',
        { schema: 'app', name: 'rls_parent' },
        has,
      ),
    ).toEqual([{ parent: { schema: 'app', name: 'invoices' }, parentColumns: ['id'] }]);
  });

  it('no join to the row, a join under OR, two tables, a nested sub-query, a constant: no via join', () => {
    expect(
      viaJoins("EXISTS (SELECT 1 FROM app.periods p WHERE p.open AND p.tenant_id = (SELECT current_setting('app.tenant_id', true))::uuid)", self, has),
    ).toEqual([]);
    expect(viaJoins('EXISTS (SELECT 1 FROM app.invoices p WHERE p.id = lines.invoice_id OR p.open)', self, has)).toEqual([]);
    expect(viaJoins('EXISTS (SELECT 1 FROM app.invoices p, app.orders o WHERE p.id = lines.invoice_id)', self, has)).toEqual([]);
    expect(viaJoins('(SELECT EXISTS (SELECT 1 FROM app.invoices p WHERE p.id = 1))', self, has)).toEqual([]);
    expect(viaJoins('EXISTS (SELECT 1 FROM app.invoices p WHERE p.id = 1)', self, has)).toEqual([]);
  });

  it('finds the EXISTS under OR at the top and in a scalar sub-select without FROM, and survives text the parser rejects', () => {
    expect(viaJoins('(SELECT EXISTS (SELECT 1 FROM app.invoices p WHERE p.id = lines.invoice_id))', self, has)).toHaveLength(1);
    expect(viaJoins('(tenant_id IS NULL) OR EXISTS (SELECT 1 FROM app.invoices p WHERE p.id = lines.invoice_id)', self, has)).toHaveLength(1);
    expect(viaJoins('EXISTS (SELECT 1 FROM', self, has)).toEqual([]);
  });
});
