import { existsSync } from 'node:fs';
import type pg from 'pg';
import { loadPolicy, DEFAULT_POLICY_PATH } from '../policy/load-policy.js';
import type { Engine, PolicyModel, TenantType } from '../policy/model.js';
import { tenantColumnOf } from '../compile/desired-state.js';
import type { TenantLookup } from '../compile/tenant-lookup.js';
import { parseSync } from 'libpg-query';
import { loadParser } from '../policy/expression.js';
import { CatalogSnapshot } from '../catalog/read-catalog.js';

/**
 * What audit, explain and verify need to know about a database: which tables
 * hold tenant rows, which roles the application runs as, which setting
 * carries the tenant. From the policy file when there is one; otherwise from
 * the flags, and what they leave unsaid is inferred from the catalog (cli.md,
 * "Audit rules").
 */

export interface FactsTable {
  schema: string;
  name: string;
  /** The tenant column; undefined for a table whose tenant comes `via` a parent. */
  column?: string;
  via?: { parentSchema: string; parentName: string; columns: string[]; references: string[] };
}

export interface TenantFacts {
  source: 'policy-file' | 'inferred';
  model?: PolicyModel;
  /** Schemas in scope. */
  schemas: string[];
  tenantTables: FactsTable[];
  /** Shared and exempt tables of the policy file (empty when inferred). */
  sharedTables: Array<{ schema: string; name: string }>;
  exemptTables: Array<{ schema: string; name: string; reason: string }>;
  appRoles: string[];
  bypassRoles: string[];
  setting?: string;
  tenantType: TenantType;
  /** The claim path inside the setting's JSON (`tenant.claim`), for the claim model. */
  claim?: string[];
  engine?: Engine;
  tenantColumn: string;
  /** What was inferred rather than said, one line each, for the text report. */
  inferred: string[];
}

export interface FactOptions {
  policies?: string;
  schema?: string[];
  tenantColumn?: string;
  tenantSetting?: string;
  appRole?: string[];
  bypassRole?: string[];
}

/** True when the facts come from a policy file: one was named, or the default folder exists. */
export function hasPolicyFile(options: FactOptions): boolean {
  const path = options.policies ?? DEFAULT_POLICY_PATH;
  return path !== DEFAULT_POLICY_PATH || existsSync(path);
}

export function factsFromModel(model: PolicyModel): TenantFacts {
  return {
    source: 'policy-file',
    model,
    schemas: model.schemas,
    tenantTables: model.tables.flatMap((t) =>
      t.mode === 'tenant' ? [{ schema: t.schema, name: t.name, column: t.via ? undefined : tenantColumnOf(model, t), via: t.via }] : [],
    ),
    sharedTables: model.tables.filter((t) => t.mode === 'shared').map((t) => ({ schema: t.schema, name: t.name })),
    exemptTables: model.tables.flatMap((t) => (t.mode === 'exempt' ? [{ schema: t.schema, name: t.name, reason: t.reason }] : [])),
    appRoles: model.roles.app,
    bypassRoles: model.roles.bypass,
    setting: model.tenant.setting,
    tenantType: model.tenant.type,
    ...(model.tenant.claim ? { claim: model.tenant.claim } : {}),
    ...(model.engine ? { engine: model.engine } : {}),
    tenantColumn: model.tenant.column,
    inferred: [],
  };
}

/** The tenant model of the facts, as compile reads it (src/compile/tenant-lookup.ts). */
export function tenantLookupOfFacts(facts: TenantFacts): TenantLookup {
  return { setting: facts.setting ?? 'app.tenant_id', type: facts.tenantType, claim: facts.claim, engine: facts.engine };
}

/** The constant names of the custom settings an expression reads with current_setting(). */
export function settingsRead(text: string): string[] {
  let tree: unknown;
  try {
    tree = parseSync(`SELECT (\n${text}\n)`);
  } catch {
    return [];
  }
  const out: string[] = [];
  const walk = (node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      for (const n of node) walk(n);
      return;
    }
    const call = (node as { FuncCall?: { funcname?: Array<{ String?: { sval?: string } }>; args?: unknown[] } }).FuncCall;
    if (call && call.funcname?.[call.funcname.length - 1]?.String?.sval === 'current_setting') {
      let arg = call.args?.[0] as { TypeCast?: { arg: unknown }; A_Const?: { sval?: { sval?: string } } } | undefined;
      while (arg?.TypeCast) arg = arg.TypeCast.arg as typeof arg;
      const name = arg?.A_Const?.sval?.sval;
      if (name && name.includes('.')) out.push(name);
    }
    for (const value of Object.values(node)) walk(value);
  };
  walk(tree);
  return out;
}

/** By catalog type name: a Map, so that a type named `constructor` is just an unknown type. */
const TYPE_OF = new Map<string, TenantType>([
  ['uuid', 'uuid'],
  ['int8', 'bigint'],
  ['int4', 'integer'],
  ['text', 'text'],
  ['varchar', 'text'],
]);

export async function resolveFacts(options: FactOptions, client: pg.ClientBase | pg.Pool): Promise<TenantFacts> {
  if (hasPolicyFile(options)) return factsFromModel(await loadPolicy(options.policies ?? DEFAULT_POLICY_PATH));
  return inferFacts(options, client);
}

/**
 * The facts from the flags, and from the catalog what they leave unsaid;
 * never from a policy file (`policies` is ignored). A few set-based
 * queries of the catalog layer, read-only: safe inside the audit's READ ONLY
 * transaction.
 */
export async function inferFacts(options: FactOptions, client: pg.ClientBase | pg.Pool): Promise<TenantFacts> {
  await loadParser();
  const inferred: string[] = [];
  const column = options.tenantColumn ?? 'tenant_id';
  if (!options.tenantColumn) inferred.push(`tenant column: ${column} (the default; say another with --tenant-column)`);

  // The catalog layer (src/catalog/read-catalog.ts), a few set-based queries for the whole database:
  // every table (not partition) in scope that has the tenant column, and its type.
  const catalog = new CatalogSnapshot(client);
  const scope = { schemas: options.schema, withColumn: column };
  const tables = await catalog.relations({ ...scope, rootTables: true });
  const typeOf = new Map((await catalog.columns({ oids: tables.map((t) => t.oid) }, { names: [column] })).map((c) => [c.relOid, c.type]));
  const schemas = await catalog.schemas(options.schema);
  if (!options.schema) inferred.push('schemas: every non-system schema');
  inferred.push(`tenant tables: the ${tables.length} table${tables.length === 1 ? '' : 's'} with the column ${column}`);

  // The policies on those tables say which roles and which setting the application uses;
  // read only when the flags leave one of them unsaid (deparsing every policy of a
  // database of partitions takes seconds).
  const needPolicies = !options.appRole?.length || !options.tenantSetting;
  const policies = needPolicies ? await catalog.policies({ ...scope, extensions: true }) : [];
  let appRoles = options.appRole ?? [];
  if (appRoles.length === 0) {
    appRoles = [...new Set(policies.flatMap((p) => p.roles.filter((r) => r !== 'public' && !r.startsWith('(role '))))].sort();
    inferred.push(
      appRoles.length > 0
        ? `app roles: ${appRoles.join(', ')} (named by the policies on tenant tables)`
        : 'app roles: none found (no policy on a tenant table names a role; say them with --app-role)',
    );
  }
  let setting = options.tenantSetting;
  if (!setting) {
    // Read with the parser, not a regular expression: a string literal or a
    // comment that mentions current_setting is not a call of it. Each distinct
    // text once (generated policies share their text across tables).
    const counts = new Map<string, number>();
    const perText = new Map<string, string[]>();
    for (const p of policies) {
      for (const text of [p.using, p.check]) {
        if (!text) continue;
        let names = perText.get(text);
        if (!names) perText.set(text, (names = settingsRead(text)));
        for (const name of names) counts.set(name, (counts.get(name) ?? 0) + 1);
      }
    }
    setting = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0];
    inferred.push(setting ? `tenant setting: ${setting} (read by the policies on tenant tables)` : 'tenant setting: none found (say it with --tenant-setting)');
  }
  const typeCounts = new Map<TenantType, number>();
  for (const t of tables) {
    const type = TYPE_OF.get(typeOf.get(t.oid) ?? '') ?? 'text';
    typeCounts.set(type, (typeCounts.get(type) ?? 0) + 1);
  }
  const tenantType = [...typeCounts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'uuid';
  return {
    source: 'inferred',
    schemas,
    tenantTables: tables.map((t) => ({ schema: t.schema, name: t.name, column })),
    sharedTables: [],
    exemptTables: [],
    appRoles,
    bypassRoles: options.bypassRole ?? [],
    setting,
    tenantType,
    tenantColumn: column,
    inferred,
  };
}
