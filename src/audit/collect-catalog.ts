import type pg from 'pg';
import { performance } from 'node:perf_hooks';
import type { TenantFacts } from '../facts/resolve-facts.js';
import { CatalogSnapshot } from '../catalog/read-catalog.js';
import type { RelationRow } from '../catalog/catalog-rows.js';
import type { AuditCatalog } from './catalog.js';

/**
 * The audit's view of the catalog: the facts of the catalog layer
 * (src/catalog/read-catalog.ts), each one set-based query for the whole
 * database, never one per table: the cost grows with the number of rows the
 * catalog holds, not with round trips. Relations that belong to an
 * extension are left out; their policies, columns and indexes are read as
 * the rules have always seen them.
 *
 * Everything here only reads; run-audit.ts runs it inside one READ ONLY
 * transaction. The role needs no privilege beyond what every role has
 * (docs/audit.md): pg_class, pg_policy, pg_index, pg_constraint, pg_roles,
 * pg_auth_members, pg_proc, pg_db_role_setting and pg_settings are readable
 * by PUBLIC, and pg_has_role / has_*_privilege answer for any role.
 */

export type Progress = (step: string) => void;

export async function collectCatalog(client: pg.ClientBase, facts: TenantFacts, progress: Progress = () => undefined): Promise<AuditCatalog> {
  const timings: Record<string, number> = {};
  const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await fn();
    } finally {
      timings[name] = Math.round(performance.now() - started);
    }
  };
  const catalog = new CatalogSnapshot(client);
  const userSchemas = { extensions: true };
  progress('reading the server version and roles');
  const server = await timed('server', () => catalog.server());
  const roles = await timed('roles', () => catalog.roles());
  const roleNames = new Set(roles.map((r) => r.name));
  const appRoles = facts.appRoles.filter((r) => roleNames.has(r));

  progress('reading relations');
  const relations = await timed('relations', () => catalog.relations({}));

  progress('reading tenant columns');
  const columnNames = new Set<string>([facts.tenantColumn]);
  for (const t of facts.tenantTables) {
    if (t.column) columnNames.add(t.column);
    for (const c of t.via?.columns ?? []) columnNames.add(c);
  }
  // The membership lookup's columns (RLS044).
  const membership = facts.model?.tenant.membership;
  if (membership) for (const c of [membership.userColumn, membership.tenantColumn]) columnNames.add(c);
  const columns = await timed('columns', () => catalog.columns(userSchemas, { names: [...columnNames].sort() }));

  progress('reading policies');
  const policies = await timed('policies', () => catalog.policies(userSchemas));
  progress('reading indexes and constraints');
  const indexes = await timed('indexes', () => catalog.indexes(userSchemas));
  const foreignKeys = await timed('foreignkeys', () => catalog.foreignKeys(userSchemas));

  progress('reading role memberships');
  const memberships = await timed('memberships', () => catalog.memberships(appRoles, server.versionNum));
  progress('reading views, functions, settings and grants');
  const viewDependencies = await timed('viewdependencies', () => catalog.viewDependencies());
  const functions = await timed('functions', () => catalog.functions(appRoles));
  const sqlFunctions = await timed('sqlfunctions', () => catalog.sqlFunctions());
  const settings = await timed('settings', () => catalog.settings());

  // Grants and reachability only for the relations that hold tenant rows, or
  // might: asked by oid, so the queries stay proportional to that set.
  const targets = grantTargets(relations, facts);
  const grants = await timed('grants', async () => (targets.grants.length === 0 ? [] : catalog.grants({ oids: targets.grants }, true)));
  const appReach = await timed('appreach', async () => {
    const reach = new Map<string, string[]>();
    if (targets.reach.length === 0 || appRoles.length === 0) return reach;
    for (const p of await catalog.privileges(targets.reach, appRoles)) {
      // A role reaches a relation with a privilege on it and USAGE on its schema.
      if (!p.schemaUsage || !(p.table.select || p.table.insert || p.table.update || p.table.delete)) continue;
      const list = reach.get(p.relOid);
      if (list) list.push(p.role);
      else reach.set(p.relOid, [p.role]);
    }
    return reach;
  });
  return {
    server,
    relations,
    columns,
    policies,
    indexes,
    foreignKeys,
    roles,
    memberships,
    viewDependencies,
    functions,
    sqlFunctions,
    settings,
    grants,
    appReach,
    timings,
  };
}

/**
 * The relations whose grants matter (tenant tables and their partitions) and
 * those whose reachability by the app roles a rule asks about: materialized
 * views and foreign tables (RLS051) and, with a policy file, tables without
 * RLS in a managed schema (RLS001).
 */
function grantTargets(relations: RelationRow[], facts: TenantFacts): { grants: string[]; reach: string[] } {
  const byKey = new Map(relations.map((r) => [`${r.schema}.${r.name}`, r]));
  const children = new Map<string, string[]>();
  for (const r of relations) {
    if (!r.parentOid) continue;
    const list = children.get(r.parentOid);
    if (list) list.push(r.oid);
    else children.set(r.parentOid, [r.oid]);
  }
  const grants = new Set<string>();
  const addTree = (oid: string) => {
    if (grants.has(oid)) return;
    grants.add(oid);
    for (const c of children.get(oid) ?? []) addTree(c);
  };
  for (const t of facts.tenantTables) {
    const rel = byKey.get(`${t.schema}.${t.name}`);
    if (rel) addTree(rel.oid);
  }
  const declared = new Set([...facts.tenantTables, ...facts.sharedTables, ...facts.exemptTables].map((t) => `${t.schema}.${t.name}`));
  // With a policy file, its managed schemas; without one, the schemas in scope (a table the app roles can read is a
  // finding whatever its columns).
  const managed = new Set(facts.schemas);
  const reach: string[] = [];
  for (const r of relations) {
    if (r.kind === 'm' || r.kind === 'f') reach.push(r.oid);
    else if ((r.kind === 'r' || r.kind === 'p') && !r.isPartition && !r.rls && managed.has(r.schema) && !declared.has(`${r.schema}.${r.name}`))
      reach.push(r.oid);
  }
  return { grants: [...grants].sort(), reach: reach.sort() };
}
