import { quoteIdent } from '../../compile/quote.js';
import type { Finding } from '../../report/finding.js';
import { findingOf, type AuditContext, type ProtectedTable } from '../audit-context.js';
import type { IndexRow } from '../../catalog/catalog-rows.js';
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
      // One row per tenant (the tenant root, `organizations: { column: id }`, or a table keyed by the tenant alone):
      // a key unique across its rows is unique across tenants by design, and a per-tenant key would be no key.
      if (ctx.indexesOf(table.rel.oid).some((i) => i.unique && i.valid && !i.partial && i.keys.length === 1 && i.keys[0] === column.num)) continue;
      for (const index of ctx.indexesOf(table.rel.oid)) {
        // An expression key (0) might hold the tenant column: not judged.
        if (!index.unique || index.keys.includes(0) || index.keys.includes(column.num)) continue;
        if (cannotCollide(ctx, table, index) || isLookupToken(table, index)) continue;
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

/**
 * Defaults that generate a value unique across the whole table whatever the
 * tenant: a sequence (serial, bigserial) or a random or time-ordered UUID
 * (gen_random_uuid, uuid_generate_v1/v1mc/v4/v7, uuidv4, uuidv7), as
 * pg_get_expr prints them, schema-qualified or not.
 */
const GENERATED_UNIQUE =
  /^\(*(?:"?[A-Za-z_][\w$]*"?\.)?(?:nextval|gen_random_uuid|uuid_generate_v1|uuid_generate_v1mc|uuid_generate_v4|uuid_generate_v7|uuidv4|uuidv7)\(/;

/**
 * Keys whose values cannot collide across tenants: one key column is an
 * identity or has a generated unique default (two tenants never get the same
 * value, unless a client supplies it, which rlsctl does not judge); or the
 * key holds every column of a foreign key to a tenant table (a parent id: the
 * parent's rows belong to one tenant, so only that tenant's rows share it).
 */
function cannotCollide(ctx: AuditContext, table: ProtectedTable, index: IndexRow): boolean {
  if (index.keyDefaults?.some((d) => d === 'identity' || GENERATED_UNIQUE.test(d))) return true;
  const keys = new Set(index.keys);
  const tenant = table.column?.num;
  return ctx.catalog.foreignKeys.some((fk) => {
    if (fk.relOid !== table.rel.oid) return false;
    if (ctx.protectedTables.get(fk.refOid)?.mode !== 'tenant' && ctx.protectedPartitions.get(fk.refOid)?.mode !== 'tenant') return false;
    if (fk.columns.every((c) => keys.has(c))) return true;
    // A foreign key paired with the tenant column ((tenant_id, parent_id) -> parent (tenant_id, id), as RLS060's fix
    // writes it): the key holds its other columns, and these alone are unique in the parent, so they name one
    // parent row, and so one tenant.
    const others = fk.columns.flatMap((c, i) => (c === tenant ? [] : [{ c, ref: fk.refColumns[i] }]));
    if (others.length === 0 || others.length === fk.columns.length || !others.every((o) => keys.has(o.c))) return false;
    const refs = new Set(others.map((o) => o.ref));
    return ctx.indexesOf(fk.refOid).some((i) => i.unique && i.valid && !i.partial && !i.keys.includes(0) && i.keys.every((k) => refs.has(k)));
  });
}

/**
 * A single-column key named as a token that identifies its tenant (an API
 * key, a token or its hash, a slug or subdomain used to find the tenant):
 * it must stay unique across tenants, since the lookup by token is how the
 * tenant is found; a key per tenant would let two tenants hold the same one.
 */
const TOKEN = /(?:^|_)(?:token|api_?key|apikey|(?:hmac|signing|access|secret|private)_?key|key_hash|secret|slug|subdomain|hostname|domain|hash|digest)(?:$|_)/i;

/** A table of such tokens (`api_keys`, `access_tokens`), whose value column may be named just `value` or `key`. */
const TOKEN_TABLE = /(?:^|_)(?:api_?keys?|tokens?|(?:hmac|signing|access|secret)_?keys?|secrets?|credentials?)$/i;
const TOKEN_TABLE_COLUMN = /^(?:value|key|token|digest|hash)$/i;

function isLookupToken(table: ProtectedTable, index: IndexRow): boolean {
  const name = index.keyNames?.[0] ?? '';
  return index.keys.length === 1 && (TOKEN.test(name) || (TOKEN_TABLE.test(table.rel.name) && TOKEN_TABLE_COLUMN.test(name)));
}
