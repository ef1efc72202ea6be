import type { CatalogModel, CatalogPolicy, CatalogTable } from '../catalog/catalog-model.js';
import type { TenantType } from '../policy/model.js';
import { GENERATED_PREFIX } from '../compile/desired-state.js';

/**
 * A live catalog → a starter policy file, for a human to finish.
 *
 * - Tables with the tenant column are declared `tenant`.
 * - Partitions are folded into their parent (they follow its declaration).
 * - Tables without the tenant column are NOT declared: each is listed in a
 *   comment with the choices (via a parent it references, shared, exempt),
 *   so that `rlsctl plan` refuses to run (undeclared table, exit 2) until a
 *   person has decided. Declaring them exempt here would silently leave them
 *   open.
 * - Existing RLS flags and policies are summarised in comments, since apply
 *   will replace or keep them.
 *
 * The file always passes `rlsctl validate`.
 */
export interface DraftOptions {
  tenantColumn: string;
  /** The tenant setting; inferred from existing policies when not given. */
  tenantSetting?: string;
  appRoles?: string[];
  /** Where the catalog came from, for the header (never holds a password). */
  source: string;
}

export interface Draft {
  text: string;
  tenantTables: string[];
  undecidedTables: string[];
  appRoles: string[];
  setting: string;
  type: TenantType;
  /** What was guessed rather than known, one line each. */
  notes: string[];
}

const TYPES: Record<string, TenantType> = {
  uuid: 'uuid',
  bigint: 'bigint',
  integer: 'integer',
  text: 'text',
  'character varying': 'text',
};

export function draftPolicyFile(catalog: CatalogModel, options: DraftOptions): Draft {
  const notes: string[] = [];
  const keyOf = (t: { schema: string; name: string }) => `${t.schema}.${t.name}`;
  const byKey = new Map(catalog.tables.map((t) => [keyOf(t), t]));
  // Partitions whose parent is read too follow it; a partition whose parent is out of scope stands alone.
  const tables = catalog.tables.filter((t) => (t.relkind === 'r' || t.relkind === 'p') && !(t.partitionOf && byKey.has(keyOf(t.partitionOf))));
  const column = options.tenantColumn;
  const tenantColumnType = (t: CatalogTable) => {
    const c = t.columns.find((col) => col.name === column);
    return c ? c.type.replace(/\(.*\)$/, '') : undefined;
  };

  // The tenant type: the type most tenant columns have.
  const counts = new Map<string, number>();
  for (const t of tables) {
    const type = tenantColumnType(t);
    if (type !== undefined && TYPES[type]) counts.set(TYPES[type], (counts.get(TYPES[type]) ?? 0) + 1);
  }
  const type: TenantType = ([...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0] as TenantType | undefined) ?? 'uuid';
  if (counts.size === 0) notes.push(`no table has a column ${column}: the tenant type uuid is a guess`);

  const isTenant = (t: CatalogTable) => {
    const ct = tenantColumnType(t);
    return ct !== undefined && TYPES[ct] === type;
  };
  const tenantTables = tables.filter(isTenant);
  const tenantKeys = new Set(tenantTables.map(keyOf));

  // App roles: as given; else the roles that existing policies on tenant tables name; else a placeholder.
  let appRoles = options.appRoles ?? [];
  if (appRoles.length === 0) {
    // Roles of the policies that compare the tenant column: a hand-written
    // `USING (true)` for a support role does not make that role the app's.
    const mentions = (p: CatalogPolicy) => `${p.using ?? ''} ${p.check ?? ''}`.includes(column);
    appRoles = [...new Set(tenantTables.flatMap((t) => t.policies.filter(mentions).flatMap((p) => p.roles)).filter((r) => r !== 'public'))].sort();
    if (appRoles.length > 0) notes.push(`app roles inferred from the existing policies: ${appRoles.join(', ')}`);
  }
  const superusers = new Set(catalog.roles.filter((r) => r.superuser).map((r) => r.name));
  appRoles = appRoles.filter((r) => !superusers.has(r));
  let appPlaceholder = false;
  if (appRoles.length === 0) {
    appRoles = ['app_user'];
    appPlaceholder = true;
    notes.push('no app role given (--app-role) or found in existing policies: `app_user` is a placeholder to replace');
  }
  const bypass = catalog.roles.filter((r) => r.bypassRls && !r.superuser && r.canLogin && !appRoles.includes(r.name)).map((r) => r.name);

  // The setting: as given; else the one existing policies read.
  let setting = options.tenantSetting;
  if (!setting) {
    const seen = new Map<string, number>();
    for (const t of tables) {
      for (const p of t.policies) {
        for (const m of `${p.using ?? ''} ${p.check ?? ''}`.matchAll(/current_setting\('([^']+)'/g)) {
          if (m[1].includes('.')) seen.set(m[1], (seen.get(m[1]) ?? 0) + 1);
        }
      }
    }
    setting = [...seen].sort((a, b) => b[1] - a[1])[0]?.[0];
    if (setting) notes.push(`tenant setting ${setting} inferred from the existing policies`);
    else setting = 'app.tenant_id';
  }

  const lines: string[] = [
    '# yaml-language-server: $schema=../node_modules/rlsctl/schema/policy-file.schema.json',
    `# A starter policy file written by \`rlsctl init\` from ${options.source}.`,
    '# Review it before `rlsctl apply`: every table under a schema below must be declared, and the',
    '# tables listed in comments as "to decide" are not yet, on purpose; `rlsctl plan` names them',
    '# until each is declared tenant (directly or via a parent), shared, or exempt with a reason.',
    'version: 1',
    '',
    'tenant:',
    `  setting: ${yamlScalar(setting)}`,
    `  type: ${type}`,
    `  column: ${yamlScalar(column)}`,
    '',
    'roles:',
    `  app: [${appRoles.map(yamlScalar).join(', ')}]${appPlaceholder ? '   # TODO: the role(s) your application connects as' : ''}`,
    `  bypass: [${bypass.map(yamlScalar).join(', ')}]${bypass.length > 0 ? '   # login roles that have BYPASSRLS today' : ''}`,
    '',
    'schemas:',
  ];
  const undecided: string[] = [];
  const schemas = [...new Set(tables.map((t) => t.schema))].sort();
  for (const schema of schemas) {
    const inSchema = tables.filter((t) => t.schema === schema);
    const declared = inSchema.filter((t) => tenantKeys.has(keyOf(t)));
    const open = inSchema.filter((t) => !tenantKeys.has(keyOf(t)));
    lines.push(`  ${yamlKey(schema)}:`);
    lines.push(declared.length > 0 ? '    tables:' : '    tables: {}');
    for (const t of declared) {
      lines.push(...existingComment(t, '      '));
      lines.push(`      ${yamlKey(t.name)}: tenant${t.relkind === 'p' ? '   # partitioned: its partitions follow it' : ''}`);
    }
    if (open.length > 0) {
      lines.push('      # To decide: these tables have no ' + `${column} column. Declare each one as`);
      lines.push('      #   tenant via a parent (its tenant comes from a row it references),');
      lines.push('      #   shared (every tenant reads it, no app role writes), or');
      lines.push('      #   { mode: exempt, reason: ... } (no tenant data; audit lists it with the reason).');
      for (const t of open) {
        undecided.push(keyOf(t));
        const other = t.columns.find((c) => c.name === column);
        lines.push('      #');
        if (other) lines.push(`      # ${t.name}: its ${column} is ${other.type}, not ${type}`);
        lines.push(...existingComment(t, '      # '));
        const fk = catalog.foreignKeys.find((f) => f.schema === t.schema && f.table === t.name && tenantKeys.has(`${f.refSchema}.${f.refTable}`));
        if (fk) {
          const parent = fk.refSchema === t.schema ? fk.refTable : `${fk.refSchema}.${fk.refTable}`;
          lines.push(
            `      # ${yamlKey(t.name)}: { via: { parent: ${yamlScalar(parent)}, columns: [${fk.columns.map(yamlScalar).join(', ')}], references: [${fk.refColumns.map(yamlScalar).join(', ')}] } }`,
          );
        } else {
          lines.push(`      # ${yamlKey(t.name)}: shared`);
        }
        lines.push(`      # ${yamlKey(t.name)}: { mode: exempt, reason: "..." }`);
      }
    }
    lines.push('');
  }
  if (schemas.length === 0) {
    lines.pop();
    lines[lines.length - 1] = 'schemas: {}   # no table found: name schemas to manage here';
  }
  return {
    text: lines.join('\n').replace(/\n*$/, '\n'),
    tenantTables: tenantTables.map(keyOf),
    undecidedTables: undecided,
    appRoles,
    setting,
    type,
    notes,
  };
}

function existingComment(t: CatalogTable, indent: string): string[] {
  if (t.policies.length === 0 && !t.rls.enabled) return [];
  const out = [`${indent}${indent.includes('#') ? '' : '# '}existing on ${t.name}: RLS ${t.rls.enabled ? 'enabled' : 'disabled'}${t.rls.enabled ? (t.rls.forced ? ', forced' : ', not forced') : ''}; ${t.policies.length} polic${t.policies.length === 1 ? 'y' : 'ies'}`];
  for (const p of t.policies) out.push(`${indent}${indent.includes('#') ? '' : '# '}  ${describePolicy(p)}`);
  return out;
}

function describePolicy(p: CatalogPolicy): string {
  const flat = (s: string) => s.replace(/\s+/g, ' ').trim();
  const parts = [`${p.name}: ${p.permissive ? 'permissive' : 'restrictive'} for ${p.command} to ${p.roles.join(', ')}`];
  if (p.name.startsWith(GENERATED_PREFIX)) return `${parts[0]} (made by rlsctl)`;
  if (p.using) parts.push(`USING ${flat(p.using)}`);
  if (p.check) parts.push(`WITH CHECK ${flat(p.check)}`);
  return parts.join(' ');
}

/** A YAML plain scalar when it is safe as one, else a double-quoted (JSON-compatible) string. */
export function yamlScalar(value: string): string {
  const plain = /^[A-Za-z_][A-Za-z0-9_ .$-]*$/.test(value) && !/ $/.test(value) && !/^(true|false|null|yes|no|on|off|y|n|~)$/i.test(value);
  return plain ? value : JSON.stringify(value);
}

function yamlKey(value: string): string {
  return yamlScalar(value);
}
