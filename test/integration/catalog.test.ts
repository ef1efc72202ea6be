import { readFileSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { beforeAll, expect, it } from 'vitest';
import { introspectCatalog } from '../../src/catalog/introspect-catalog.js';
import { leadingColumns, type CatalogModel } from '../../src/catalog/catalog-model.js';
import { buildPlan } from '../../src/plan/build-plan.js';
import { applyPlan } from '../../src/apply/apply-plan.js';
import { openDatabase } from '../../src/db/connection.js';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { ROOT } from '../helpers/cli.js';

/** introspectCatalog on real PostgreSQL: what it reads, in which shapes, and that it reads it set-based. */

function fixture(name: string, roles: Record<string, string>): string {
  return readFileSync(path.join(ROOT, 'fixtures/live', name), 'utf8').replace(/\{\{(\w+)\}\}/g, (_, k: string) => roles[k]);
}

/** A client that counts the queries sent through it. */
function counting(client: pg.Client): { client: pg.Client; count: () => number } {
  let n = 0;
  const proxy = new Proxy(client, {
    get(target, prop, receiver) {
      if (prop === 'query') {
        return (...args: unknown[]) => {
          n++;
          return (target.query as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { client: proxy, count: () => n };
}

describeEachServer('catalog', (ctx) => {
  const roles = { app: uniqueName('app'), owner: uniqueName('owner'), other: uniqueName('other') };
  const member = uniqueName('member');
  const bypass = uniqueName('bypass');
  let catalog: CatalogModel;
  const get = (schema: string, name: string) => {
    const t = catalog.tables.find((x) => x.schema === schema && x.name === name);
    if (!t) throw new Error(`no ${schema}.${name} in the catalog`);
    return t;
  };

  beforeAll(async () => {
    await ctx.db.runScript(fixture('schema.sql', roles));
    await ctx.db.runScript(`
      CREATE ROLE ${bypass} LOGIN BYPASSRLS;
      CREATE ROLE ${member} NOLOGIN NOINHERIT IN ROLE ${roles.app}, ${roles.other};
      ALTER TABLE shop.accounts ENABLE ROW LEVEL SECURITY;
      CREATE POLICY p_all ON shop.accounts AS RESTRICTIVE FOR ALL TO ${roles.other}, ${roles.app} USING (tenant_id IS NOT NULL) WITH CHECK (name <> '');
      CREATE POLICY p_sel ON shop.accounts FOR SELECT TO PUBLIC USING (true);
      CREATE POLICY p_ins ON shop.accounts FOR INSERT TO ${roles.app} WITH CHECK (id > 0);
      CREATE POLICY p_upd ON shop.accounts FOR UPDATE TO ${roles.app} USING (id > 0);
      CREATE POLICY p_del ON shop.accounts FOR DELETE TO ${roles.app} USING (id > 0);
      CREATE INDEX accounts_lower_name ON shop.accounts (lower(name), id) INCLUDE (tenant_id);
      CREATE INDEX accounts_partial ON shop.accounts (tenant_id) WHERE id > 10;
      CREATE INDEX accounts_hash ON shop.accounts USING hash (name);
      CREATE INDEX events_tenant ON shop.events (tenant_id);
      CREATE VIEW shop.account_names AS SELECT name FROM shop.accounts;
      GRANT SELECT ON shop.currencies TO PUBLIC;
      CREATE TABLE shop.ext_owned (id int);
      ALTER EXTENSION plpgsql ADD TABLE shop.ext_owned;
      INSERT INTO shop.orders VALUES ('00000000-0000-4000-8000-00000000000a', 99, 1, now());`);
    await ctx.db.query('CREATE UNIQUE INDEX CONCURRENTLY orders_broken ON shop.orders (tenant_id, number)').catch(() => undefined);
    catalog = await introspectCatalog(ctx.db.pool, { schemas: ['shop'] });
  });

  it('reads tables, partitions (at any depth, in any schema), owners and RLS flags', () => {
    expect(get('shop', 'accounts')).toMatchObject({ relkind: 'r', owner: roles.owner, rls: { enabled: true, forced: false } });
    expect(get('shop', 'accounts').partitionOf).toBeUndefined();
    expect(get('shop', 'events')).toMatchObject({ relkind: 'p' });
    expect(get('shop', 'events_b')).toMatchObject({ relkind: 'p', partitionOf: { schema: 'shop', name: 'events' } });
    expect(get('shop', 'events_b_x')).toMatchObject({ relkind: 'r', partitionOf: { schema: 'shop', name: 'events_b' } });
    // a partition of a table in scope is read even though its schema is not
    expect(get('archive', 'events_old')).toMatchObject({ partitionOf: { schema: 'shop', name: 'events' } });
    expect(get('shop', 'account_names').relkind).toBe('v');
    // sorted by schema then name, byte order
    const keys = catalog.tables.map((t) => `${t.schema}.${t.name}`);
    expect(keys).toEqual([...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
  });

  it('skips extension-owned tables and reads only the schemas asked for', async () => {
    expect(catalog.tables.some((t) => t.name === 'ext_owned')).toBe(false);
    expect(catalog.tables.filter((t) => t.schema === 'archive').map((t) => t.name)).toEqual(['events_old']);
    const all = await introspectCatalog(ctx.db.pool);
    expect(all.tables.some((t) => t.schema === 'pg_catalog' || t.schema === 'information_schema')).toBe(false);
    expect(all.tables.some((t) => t.schema === 'shop' && t.name === 'accounts')).toBe(true);
  });

  it('reads columns with their types and NOT NULL', () => {
    expect(get('shop', 'accounts').columns).toEqual([
      { name: 'tenant_id', type: 'uuid', notNull: true },
      { name: 'id', type: 'bigint', notNull: true },
      { name: 'name', type: 'text', notNull: false },
    ]);
    expect(get('shop', 'Odd Table').columns.map((c) => c.name)).toEqual(['Org Id', 'v']);
  });

  it('reads policies: command, permissive, roles (as a sorted set, PUBLIC as public) and pg_get_expr text', () => {
    const policies = get('shop', 'accounts').policies;
    expect(policies.map((p) => [p.name, p.command, p.permissive])).toEqual([
      ['p_all', 'all', false],
      ['p_del', 'delete', true],
      ['p_ins', 'insert', true],
      ['p_sel', 'select', true],
      ['p_upd', 'update', true],
    ]);
    expect(policies[0]).toEqual({
      name: 'p_all',
      permissive: false,
      command: 'all',
      roles: [roles.app, roles.other].sort(),
      using: '(tenant_id IS NOT NULL)',
      check: "(name <> ''::text)",
    });
    expect(policies.find((p) => p.name === 'p_sel')).toEqual({ name: 'p_sel', permissive: true, command: 'select', roles: ['public'], using: 'true' });
    expect(policies.find((p) => p.name === 'p_ins')).toEqual({ name: 'p_ins', permissive: true, command: 'insert', roles: [roles.app], check: '(id > 0)' });
  });

  it('reads indexes: keys and expressions, INCLUDE, unique, primary, method, predicate, validity, attachment', () => {
    const accounts = get('shop', 'accounts').indexes;
    expect(accounts.find((i) => i.name === 'accounts_pkey')).toMatchObject({
      keys: [{ kind: 'column', name: 'id' }],
      unique: true,
      primary: true,
      valid: true,
      method: 'btree',
    });
    const lower = accounts.find((i) => i.name === 'accounts_lower_name')!;
    expect(lower.keys).toEqual([
      { kind: 'expression', sql: 'lower(name)' },
      { kind: 'column', name: 'id' },
    ]);
    expect(lower.include).toEqual(['tenant_id']);
    expect(leadingColumns(lower)).toEqual([]);
    expect(accounts.find((i) => i.name === 'accounts_partial')).toMatchObject({ predicate: '(id > 10)', keys: [{ kind: 'column', name: 'tenant_id' }] });
    expect(accounts.find((i) => i.name === 'accounts_hash')?.method).toBe('hash');
    expect(get('shop', 'orders').indexes.find((i) => i.name === 'orders_broken')).toMatchObject({ valid: false, unique: true });
    expect(leadingColumns(get('shop', 'orders').indexes.find((i) => i.name === 'orders_pkey')!)).toEqual(['tenant_id', 'id']);
    expect(get('shop', 'events').indexes).toMatchObject([{ name: 'events_tenant', valid: true }]);
    expect(get('archive', 'events_old').indexes).toMatchObject([{ valid: true, attachedTo: { schema: 'shop', name: 'events_tenant' } }]);
    expect(get('shop', 'events_b_x').indexes[0].attachedTo?.schema).toBe('shop');
    expect(get('shop', 'events_b_x').indexes[0].definition).toMatch(/^CREATE INDEX \S+ ON shop\.events_b_x USING btree \(tenant_id\)$/);
  });

  it('reads roles with their attributes and memberships, grants and foreign keys', () => {
    expect(catalog.roles.find((r) => r.name === bypass)).toEqual({
      name: bypass,
      superuser: false,
      bypassRls: true,
      canLogin: true,
      inherit: true,
      memberOf: [],
    });
    expect(catalog.roles.find((r) => r.name === member)).toEqual({
      name: member,
      superuser: false,
      bypassRls: false,
      canLogin: false,
      inherit: false,
      memberOf: [roles.app, roles.other].sort(),
    });
    expect(catalog.roles.some((r) => r.superuser)).toBe(true);
    expect(catalog.grants.filter((g) => g.table === 'currencies' && g.grantee !== roles.owner)).toEqual([
      { schema: 'shop', table: 'currencies', grantee: 'PUBLIC', privilege: 'SELECT', grantable: false },
      ...['DELETE', 'INSERT', 'SELECT', 'UPDATE'].map((privilege) => ({
        schema: 'shop',
        table: 'currencies',
        grantee: roles.app,
        privilege,
        grantable: false,
      })),
    ]);
    expect(catalog.foreignKeys).toEqual([
      {
        name: 'order_lines_order_tenant_order_id_fkey',
        schema: 'shop',
        table: 'order_lines',
        columns: ['order_tenant', 'order_id'],
        refSchema: 'shop',
        refTable: 'orders',
        refColumns: ['tenant_id', 'id'],
      },
    ]);
  });

  it('gives the same model twice, whatever the session search_path, and restores that path', async () => {
    const client = await ctx.db.client();
    try {
      await client.query('SET search_path = shop, public');
      // Roles are cluster-wide: other test files create and drop theirs meanwhile, so the
      // roles compared are those both reads saw; everything else must be equal as a whole.
      const again = await introspectCatalog(client, { schemas: ['shop'] });
      const common = (model: CatalogModel, other: CatalogModel) => model.roles.filter((r) => other.roles.some((o) => o.name === r.name));
      expect({ ...again, roles: common(again, catalog) }).toEqual({ ...catalog, roles: common(catalog, again) });
      expect(common(again, catalog).map((r) => r.name)).toEqual(expect.arrayContaining(Object.values(roles)));
      expect((await client.query('SHOW search_path')).rows[0].search_path).toBe('shop, public');
    } finally {
      await client.end();
    }
  });

  it('is set-based: the number of queries does not grow with the number of tables (introspect and plan)', async () => {
    const app = roles.app;
    const make = (schema: string, n: number) =>
      `CREATE SCHEMA ${schema}; DO $$ BEGIN FOR i IN 1..${n} LOOP EXECUTE format('CREATE TABLE ${schema}.t%s (tenant_id uuid NOT NULL, id int)', i); END LOOP; END $$;`;
    await ctx.db.runScript(make('few', 2) + make('many', 60));
    const yaml = (schema: string, n: number) =>
      `version: 1\nroles: { app: [${app}] }\nschemas:\n  ${schema}:\n    tables:\n${Array.from({ length: n }, (_, i) => `      t${i + 1}: tenant`).join('\n')}\n`;
    const few = await parsePolicy([{ file: 'few.yaml', text: yaml('few', 2) }]);
    const many = await parsePolicy([{ file: 'many.yaml', text: yaml('many', 60) }]);
    const db = await openDatabase({ db: ctx.db.url });
    const client = await ctx.db.client();
    try {
      for (const model of [few, many]) await applyPlan(db, await buildPlan(ctx.db.pool, model));
      const counts: Record<string, number[]> = {};
      for (const [name, model] of [
        ['few', few],
        ['many', many],
      ] as const) {
        const a = counting(client);
        await introspectCatalog(a.client, { schemas: [name] });
        const b = counting(client);
        const plan = await buildPlan(b.client, model);
        expect(plan.statements).toEqual([]);
        counts[name] = [a.count(), b.count()];
      }
      expect(counts.many).toEqual(counts.few);
    } finally {
      await client.end();
      await db.close();
    }
  });
});
