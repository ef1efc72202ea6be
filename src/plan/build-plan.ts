import type pg from 'pg';
import type { CatalogIndex, CatalogModel, CatalogTable } from '../catalog/catalog-model.js';
import { introspectCatalog } from '../catalog/introspect-catalog.js';
import { hashCatalog } from '../catalog/hash-catalog.js';
import { desiredTable, indexName, type DesiredTable } from '../compile/desired-state.js';
import { qualify, quoteIdent } from '../compile/quote.js';
import { loadParser } from '../policy/expression.js';
import { requireStandardStrings } from '../db/standard-strings.js';
import { tableKey, type PolicyModel, type TableDecl } from '../policy/model.js';
import { createCanonicalizer } from './canonicalize-expressions.js';
import { orderStatements, type PlannedStatement } from './order-statements.js';
import { planTableIndexes, type IndexWant } from './plan-indexes.js';
import { canonicalRequests, planRelationPolicies, type RelationPolicies } from './plan-policies.js';
import type { Plan, PlanDrift, ViaWithoutKey } from './plan.js';
import { partitionTriggerProblem, planPartitionTrigger, triggerGuardStatement } from '../compile/partition-trigger.js';
import { readPartitionTrigger } from '../catalog/read-catalog.js';
import { MEMBER_FUNCTION, membershipIndex, planMemberFunction, readMemberFunction } from '../compile/membership.js';

/**
 * diff(policy file, live catalog) → Plan: only what differs.
 *
 * Safe on production: it reads the catalog (ACCESS SHARE on catalog tables
 * only) and round-trips the compiled expressions through temporary tables in
 * a transaction that is rolled back (see canonicalize-expressions.ts). It
 * never locks a production table beyond ACCESS SHARE on a `via` parent for
 * the length of that round trip, under a lock_timeout.
 */
export interface BuildPlanOptions {
  /** Also drop policies on managed tables that the file does not declare. */
  prune?: boolean;
}

export async function buildPlan(client: pg.ClientBase | pg.Pool, model: PolicyModel, options: BuildPlanOptions = {}): Promise<Plan> {
  if (isPool(client)) {
    const pooled = await client.connect();
    try {
      return await planOnClient(pooled, model, { prune: options.prune ?? false, inTransaction: false });
    } finally {
      pooled.release();
    }
  }
  return planOnClient(client, model, { prune: options.prune ?? false, inTransaction: await inTransactionBlock(client) });
}

/**
 * A caller's client may be inside a transaction block: the round trips then
 * use a savepoint, so that their ROLLBACK cannot end the caller's
 * transaction. SAVEPOINT outside a block fails with 25P01 and changes nothing.
 */
async function inTransactionBlock(client: pg.ClientBase): Promise<boolean> {
  try {
    await client.query('SAVEPOINT rlsctl_probe');
  } catch (error) {
    if ((error as { code?: string }).code === '25P01') return false;
    throw error;
  }
  await client.query('RELEASE SAVEPOINT rlsctl_probe');
  return true;
}

export interface PlanOnClientOptions {
  prune: boolean;
  /** The client is inside a transaction already (apply plans again under its lock): savepoints instead of BEGIN. */
  inTransaction: boolean;
  /** A catalog read already, to save reading it twice. */
  catalog?: CatalogModel;
}

/** The schemas a policy file is about: the managed ones (every declared table lives in one). */
export function plannedSchemas(model: PolicyModel): string[] {
  const membership = model.tenant.membership ? [model.tenant.membership.schema] : [];
  return [...new Set([...model.schemas, ...model.tables.map((t) => t.schema), ...membership])].sort();
}

export async function planOnClient(client: pg.ClientBase, model: PolicyModel, options: PlanOnClientOptions): Promise<Plan> {
  await loadParser();
  // The round trips send the file's expressions to the server (canonicalize-expressions.ts).
  await requireStandardStrings(client);
  const catalog = options.catalog ?? (await introspectCatalog(client, { schemas: plannedSchemas(model) }));
  const tables = new Map<string, CatalogTable>();
  const children = new Map<string, CatalogTable[]>();
  for (const t of catalog.tables) {
    if (t.relkind !== 'r' && t.relkind !== 'p') continue;
    tables.set(tableKey(t), t);
    if (t.partitionOf) {
      const k = tableKey(t.partitionOf);
      children.set(k, [...(children.get(k) ?? []), t]);
    }
  }
  const declared = new Map<string, TableDecl>(model.tables.map((t) => [tableKey(t), t]));
  const childrenOf = (t: CatalogTable) => children.get(tableKey(t)) ?? [];

  // --- Input the database contradicts: reported, and those tables left alone.
  const membership = model.tenant.membership;
  const membershipTable = membership ? tables.get(tableKey({ schema: membership.schema, name: membership.table })) : undefined;
  const missingTables = model.tables.filter((t) => !tables.has(tableKey(t))).map(tableKey);
  if (membership && !membershipTable && !declared.has(`${membership.schema}.${membership.table}`))
    missingTables.push(`${membership.schema}.${membership.table}`);
  const undeclaredTables = catalog.tables
    .filter((t) => (t.relkind === 'r' || t.relkind === 'p') && model.schemas.includes(t.schema) && !declared.has(tableKey(t)))
    // A partition follows its parent: reported through the parent (its root), not on its own.
    .filter((t) => !(t.partitionOf && tables.has(tableKey(t.partitionOf))))
    .map(tableKey);
  const knownRoles = new Set(catalog.roles.map((r) => r.name));
  const desired = model.tables.filter((t) => tables.has(tableKey(t))).map((t) => desiredTable(model, t));
  const missingRoles = [...new Set(desired.flatMap((d) => d.policies.flatMap((p) => p.roles)).filter((r) => r !== 'public' && !knownRoles.has(r)))].sort();
  const missingColumns: string[] = [];
  const viaWithoutKey: ViaWithoutKey[] = [];
  const usable: DesiredTable[] = [];
  if (membership && membershipTable) {
    for (const c of [membership.userColumn, membership.tenantColumn]) {
      if (!membershipTable.columns.some((col) => col.name === c)) missingColumns.push(`${membership.schema}.${membership.table}.${c}`);
    }
  }
  for (const d of desired) {
    const missing = missingColumnsOf(model, d, tables);
    missingColumns.push(...missing);
    if (missing.length > 0) continue;
    const unkeyed = viaWithoutKeyOf(d, tables);
    if (unkeyed) viaWithoutKey.push(unkeyed);
    else usable.push(d);
  }

  // --- Policies and RLS flags, on each declared table and on each of its
  // partitions that is not declared in its own right.
  const relations: Array<{ group: string; item: RelationPolicies }> = [];
  for (const d of usable) {
    if (!d.rls) continue; // exempt: left as it is
    const root = tables.get(tableKey(d))!;
    for (const relation of [root, ...descendants(root, childrenOf, declared)]) {
      const wanted = d.policies.map((spec) => ({ spec, ...(relation === root ? { using: spec.using, check: spec.check } : spec.forRelation(relation.name)) }));
      relations.push({ group: tableKey(d), item: { relation, wanted } });
    }
  }
  const canon = createCanonicalizer();
  await canon.resolve(
    client,
    relations.flatMap((r) => canonicalRequests(r.item)),
    { inTransaction: options.inTransaction },
  );

  const planned: PlannedStatement[] = [];
  const drift: PlanDrift[] = [];
  let seq = 0;
  for (const { group, item } of relations) {
    const out = planRelationPolicies(item, canon, { prune: options.prune });
    for (const s of out.statements) planned.push({ ...s, group, relation: tableKey(item.relation), seq: seq++ });
    drift.push(...out.drift);
  }

  // --- Indexes: the declared ones, the tenant index, and the `via` parent's key.
  const wants = new Map<string, IndexWant[]>();
  const addWant = (key: string, want: IndexWant) => wants.set(key, [...(wants.get(key) ?? []), want]);
  for (const d of usable) {
    const decl = declared.get(tableKey(d))!;
    // desired-state puts the tenant index first when no declared index leads with the tenant column.
    const auto = d.indexes.length > decl.indexes.length;
    d.indexes.forEach((index, i) => {
      const isAuto = auto && i === 0;
      addWant(tableKey(d), {
        name: index.name,
        columns: index.columns,
        unique: index.unique,
        match: isAuto ? 'lead' : 'exact',
        userNamed: !isAuto && decl.indexes[auto ? i - 1 : i]?.name !== undefined,
        purpose: isAuto
          ? d.viaParent
            ? `the via predicate joins (${index.columns.join(', ')}) to the parent and needs an index that leads with it`
            : 'the tenant predicate needs an index that leads with the tenant column'
          : 'declared in the policy file',
      });
    });
    if (d.viaParent && usable.some((u) => u.schema === d.viaParent!.schema && u.name === d.viaParent!.name)) {
      addWant(`${d.viaParent.schema}.${d.viaParent.name}`, {
        name: indexName(d.viaParent.name, d.viaParent.columns),
        columns: d.viaParent.columns,
        unique: false,
        match: 'lead',
        userNamed: false,
        purpose: `the via predicate of ${d.schema}.${d.name} looks parent rows up by (${d.viaParent.columns.join(', ')})`,
      });
    }
  }
  if (membership && membershipTable) {
    const index = membershipIndex(membership);
    addWant(tableKey(membershipTable), {
      name: index.name,
      columns: index.columns,
      unique: false,
      match: 'lead',
      userNamed: false,
      purpose: `the membership lookup ${MEMBER_FUNCTION}() seeks the memberships of a user (${index.columns.join(', ')})`,
    });
  }
  const taken = new Map<string, Set<string>>();
  const context = {
    childrenOf,
    takenNames(schema: string) {
      let set = taken.get(schema);
      if (!set) {
        set = new Set(catalog.tables.filter((t) => t.schema === schema).flatMap((t) => [t.name, ...t.indexes.map((i) => i.name)]));
        taken.set(schema, set);
      }
      return set;
    },
  };
  for (const [key, list] of [...wants].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    for (const statement of planTableIndexes(tables.get(key)!, list, context)) {
      planned.push({ statement, step: 'index', group: key, relation: key, seq: seq++ });
    }
  }

  // The partition event trigger (partitions.protect_new) last in the transaction, after every table's
  // statements: a migration file run without apply's guard then never meets it half-made.
  const triggerState = await readPartitionTrigger(client);
  const trigger = planPartitionTrigger(model, triggerState);
  const ordered = orderStatements(planned);
  const tableStatements = ordered.filter((s) => s.phase === 'transaction').length;
  // An installed trigger would protect partitions in the middle of the transaction, before the plan's
  // own CREATE POLICY on them: it stands aside first (apply sets the same guard itself).
  if (triggerState.trigger && tableStatements > 0) ordered.unshift(triggerGuardStatement());
  ordered.splice(ordered.filter((s) => s.phase === 'transaction').length, 0, ...trigger);
  // The membership lookup before every policy that calls it.
  ordered.unshift(...planMemberFunction(model, await readMemberFunction(client, model)));

  return {
    statements: ordered,
    partitionTriggerProblem: partitionTriggerProblem(trigger, triggerState),
    drift,
    missingTables,
    undeclaredTables,
    missingColumns: [...new Set(missingColumns)].sort(),
    viaWithoutKey,
    missingRoles,
    catalogHash: hashCatalog(catalog),
    source: { model, prune: options.prune },
  };
}

/** Every partition below a table, depth first, except the subtrees of partitions the file declares themselves. */
function descendants(table: CatalogTable, childrenOf: (t: CatalogTable) => CatalogTable[], declared: Map<string, TableDecl>): CatalogTable[] {
  const out: CatalogTable[] = [];
  for (const child of childrenOf(table)) {
    if (declared.has(tableKey(child))) continue;
    out.push(child, ...descendants(child, childrenOf, declared));
  }
  return out;
}

/** Columns the compiled policies and indexes name that the table (or the via parent) lacks. */
function missingColumnsOf(model: PolicyModel, d: DesiredTable, tables: Map<string, CatalogTable>): string[] {
  const table = tables.get(tableKey(d))!;
  const has = (t: CatalogTable, c: string) => t.columns.some((col) => col.name === c);
  const out: string[] = [];
  const need = new Set<string>([...(d.tenantColumn ? [d.tenantColumn] : []), ...d.indexes.flatMap((i) => i.columns)]);
  const decl = model.tables.find((t) => t.schema === d.schema && t.name === d.name);
  if (decl?.mode === 'tenant' && decl.via) for (const c of decl.via.columns) need.add(c);
  for (const c of need) if (!has(table, c)) out.push(`${d.schema}.${d.name}.${c}`);
  if (d.viaParent) {
    const parent = tables.get(`${d.viaParent.schema}.${d.viaParent.name}`);
    if (parent) for (const c of d.viaParent.columns) if (!has(parent, c)) out.push(`${d.viaParent.schema}.${d.viaParent.name}.${c}`);
  }
  return out;
}

/**
 * The `via` predicate joins `parent.references = child.columns`. Unless the
 * references cover a unique key of the parent, one child row can match parent
 * rows of several tenants (parent key (tenant_id, id), join on id alone), and
 * every one of them sees it. A key counts when its index is unique, valid, not
 * partial, on plain columns only, checked at once (a DEFERRABLE key admits a
 * duplicate parent row until commit, long enough to read the other tenant's
 * children), and compares as `=` on the columns does (not under a collation of
 * its own when a column's is nondeterministic). NULLS [NOT] DISTINCT does not
 * matter: `=` never matches a NULL.
 */
function viaWithoutKeyOf(d: DesiredTable, tables: Map<string, CatalogTable>): ViaWithoutKey | undefined {
  if (!d.viaParent) return undefined;
  const parent = tables.get(`${d.viaParent.schema}.${d.viaParent.name}`);
  // An undeclared or missing parent is reported as such (validate, missingTables).
  if (!parent) return undefined;
  const references = d.viaParent.columns;
  const keys = parent.indexes.filter(
    (i) => i.unique && i.valid && !i.predicate && !i.deferrable && !i.looseCollation && i.keys.length > 0 && i.keys.every((k) => k.kind === 'column'),
  );
  const names = (i: CatalogIndex) => i.keys.map((k) => (k.kind === 'column' ? k.name : ''));
  if (keys.some((i) => names(i).every((c) => references.includes(c)))) return undefined;
  const sql = `ALTER TABLE ${qualify(parent.schema, parent.name)} ADD UNIQUE (${references.map(quoteIdent).join(', ')})`;
  const existing = keys.find((i) => i.primary) ?? keys[0];
  return {
    table: `${d.schema}.${d.name}`,
    parent: `${parent.schema}.${parent.name}`,
    references,
    fix: existing
      ? `${sql}, or make via.references the key (${names(existing).join(', ')}) of ${parent.schema}.${parent.name} (with the matching via.columns)`
      : sql,
  };
}

function isPool(client: pg.ClientBase | pg.Pool): client is pg.Pool {
  return typeof (client as pg.Pool).totalCount === 'number';
}
