import { holdableName } from '../policy/validate-policy.js';
import type { CatalogColumn, CatalogModel, CatalogPolicy, CatalogTable } from '../catalog/catalog-model.js';
import { UsageError } from '../errors.js';
import { didYouMean } from '../policy/suggest.js';
import type { InitFacts } from './read-init-facts.js';
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
  /** The tenant column(s) to look for; with several, each table uses the first it has. */
  tenantColumn: string | string[];
  /** The tenant setting; inferred from existing policies when not given. */
  tenantSetting?: string;
  appRoles?: string[];
  /** Where the catalog came from, for the header (never holds a password). */
  source: string;
  /** Roles and extension tables (src/init/read-init-facts.ts); without them every BYPASSRLS login role is listed. */
  facts?: InitFacts;
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

/** Names that suggest credentials or personal data: such a table is never offered as `shared`. */
const SENSITIVE = /passw(or)?d|token|secret|api_?keys?|session|e_?mail/i;

export function draftPolicyFile(catalog: CatalogModel, options: DraftOptions): Draft {
  const notes: string[] = [];
  const keyOf = (t: { schema: string; name: string }) => `${t.schema}.${t.name}`;
  const byKey = new Map(catalog.tables.map((t) => [keyOf(t), t]));
  // Partitions whose parent is read too follow it; a partition whose parent is out of scope stands alone.
  const tables = catalog.tables.filter((t) => (t.relkind === 'r' || t.relkind === 'p') && !(t.partitionOf && byKey.has(keyOf(t.partitionOf))));
  const wanted = [...new Set(typeof options.tenantColumn === 'string' ? [options.tenantColumn] : options.tenantColumn)];
  if (wanted.length === 0) wanted.push('tenant_id');
  const typeOf = (c: CatalogColumn) => TYPES[c.type.replace(/\(.*\)$/, '')];
  const candidates = (t: CatalogTable) => wanted.flatMap((name) => t.columns.filter((c) => c.name === name));

  // A tenant column no table has is a typo more often than not.
  if (tables.length > 0) {
    const existing = [...new Set(tables.flatMap((t) => t.columns.map((c) => c.name)))].sort();
    for (const name of wanted) {
      if (tables.some((t) => t.columns.some((c) => c.name === name))) continue;
      const near = didYouMean(name, existing);
      throw new UsageError(`no table has a column ${shown(name)} (--tenant-column)`, {
        hint: near ? `did you mean ${shown(near)}?` : `name a column the tenant tables have; --tenant-column may be repeated when tables use different names`,
      });
    }
  }

  // The tenant type: the type most tenant columns have.
  const counts = new Map<string, number>();
  for (const t of tables) {
    for (const c of candidates(t)) if (typeOf(c)) counts.set(typeOf(c), (counts.get(typeOf(c)) ?? 0) + 1);
  }
  const type: TenantType = ([...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0] as TenantType | undefined) ?? 'uuid';
  if (counts.size === 0) notes.push(`no table has a column ${wanted.map(shown).join(' or ')}: the tenant type uuid is a guess`);

  // Template tables of an extension (pg_partman's template_<schema>_<table> in its own schema) hold no rows:
  // exempt, even with a tenant column.
  const extensionOfSchema = new Map((options.facts?.extensionSchemas ?? []).map((e) => [e.schema, e.extension]));
  const templateOf = (t: CatalogTable) => (/^template_/.test(t.name) ? extensionOfSchema.get(t.schema) : undefined);

  // Each tenant table's column: the first of the wanted names it has with the tenant type.
  const columnOf = new Map<string, string>();
  for (const t of tables) {
    if (templateOf(t) || !holdableName(t.name) || !holdableName(t.schema)) continue;
    const c = candidates(t).find((col) => typeOf(col) === type);
    if (c) columnOf.set(keyOf(t), c.name);
  }
  // Several names are several spellings of one tenant id (tenant_id, orgId). Names whose foreign keys reference
  // different tables hold different ids (organizationId, projectId): the setting cannot equal both.
  const referenced = new Map<string, Set<string>>();
  for (const fk of catalog.foreignKeys) {
    const name = columnOf.get(`${fk.schema}.${fk.table}`);
    if (fk.columns.length !== 1 || name !== fk.columns[0]) continue;
    if (!referenced.has(name)) referenced.set(name, new Set());
    referenced.get(name)?.add(`${shown(fk.refSchema)}.${shown(fk.refTable)}`);
  }
  const named = wanted.filter((n) => referenced.has(n));
  for (const [i, a] of named.entries()) {
    for (const b of named.slice(i + 1)) {
      const ra = [...(referenced.get(a) ?? [])];
      const rb = referenced.get(b) ?? new Set<string>();
      if (ra.some((k) => rb.has(k))) continue;
      throw new UsageError(
        `${shown(a)} references ${ra.join(', ')} but ${shown(b)} references ${[...rb].join(', ')}: --tenant-column names must hold the same tenant id`,
        {
          hint: `name only the column that holds the tenant id; tables with just ${shown(b)} can then be declared \`via\` the table it references`,
        },
      );
    }
  }
  // The tenant root: a table the tenant columns reference by a unique key of the tenant type (organizations.id).
  const uniqueKey = (t: CatalogTable | undefined, columns: string[]) =>
    !!t &&
    t.indexes.some(
      (i) =>
        i.unique &&
        i.valid &&
        i.predicate === undefined &&
        i.keys.length === columns.length &&
        i.keys.every((k) => k.kind === 'column' && columns.includes(k.name)),
    );
  const roots = new Map<string, string>();
  for (const fk of catalog.foreignKeys) {
    const child = byKey.get(`${fk.schema}.${fk.table}`);
    const parentKey = `${fk.refSchema}.${fk.refTable}`;
    const parent = byKey.get(parentKey);
    if (!child || !parent || !tables.includes(parent) || !holdableName(parent.name) || columnOf.has(parentKey) || fk.columns.length !== 1) continue;
    if (columnOf.get(keyOf(child)) !== fk.columns[0]) continue;
    const ref = parent.columns.find((c) => c.name === fk.refColumns[0]);
    if (ref && typeOf(ref) === type && uniqueKey(parent, fk.refColumns)) roots.set(parentKey, ref.name);
  }
  for (const [k, c] of roots) columnOf.set(k, c);

  // tenant.column: the name most tenant tables use (ties: the order given); the others name theirs.
  const uses = wanted.map((name) => [name, [...columnOf.entries()].filter(([k, c]) => c === name && !roots.has(k)).length] as const);
  const column = [...uses].sort((a, b) => b[1] - a[1])[0][0];
  const tenantTables = tables.filter((t) => columnOf.has(keyOf(t)));
  const tenantKeys = new Set(tenantTables.map(keyOf));

  // App roles: as given; else the roles that existing policies on tenant tables name; else a placeholder.
  let appRoles = options.appRoles ?? [];
  if (appRoles.length === 0) {
    // Roles of the policies that compare the tenant column: a hand-written
    // `USING (true)` for a support role does not make that role the app's.
    const mentions = (p: CatalogPolicy) => wanted.some((c) => `${p.using ?? ''} ${p.check ?? ''}`.includes(c));
    appRoles = [...new Set(tenantTables.flatMap((t) => t.policies.filter(mentions).flatMap((p) => p.roles)).filter((r) => r !== 'public'))].sort();
    if (appRoles.length > 0) notes.push(`app roles inferred from the existing policies: ${appRoles.map(shown).join(', ')}`);
  }
  const superusers = new Set(catalog.roles.filter((r) => r.superuser).map((r) => r.name));
  appRoles = appRoles.filter((r) => !superusers.has(r) && holdableName(r));
  let appPlaceholder = false;
  if (appRoles.length === 0) {
    appRoles = ['app_user'];
    appPlaceholder = true;
    notes.push('no app role given (--app-role) or found in existing policies: `app_user` is a placeholder to replace');
  }
  const bypassAll = (options.facts?.bypassRoles ?? catalog.roles.filter((r) => r.bypassRls && !r.superuser && r.canLogin).map((r) => r.name)).filter(
    (r) => !appRoles.includes(r),
  );
  const bypass = bypassAll.filter(holdableName);
  const unnamed = bypassAll.filter((r) => !holdableName(r));

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
    if (setting) notes.push(`tenant setting ${shown(setting)} inferred from the existing policies`);
    else setting = 'app.tenant_id';
  }
  // The claim model: existing policies that read a path of the JWT claims (PostgREST, Supabase's auth.jwt()).
  const claim = options.tenantSetting ? undefined : claimRead(tables.flatMap((t) => t.policies.flatMap((p) => [p.using ?? '', p.check ?? ''])));
  if (claim) {
    setting = 'request.jwt.claims';
    notes.push(`tenant claim ${shown(claim)} of request.jwt.claims inferred from the existing policies`);
  }

  const columnNames = wanted.map(shown).join(' or ');

  const lines: string[] = [
    '# yaml-language-server: $schema=../node_modules/rlsctl/schema/policy-file.schema.json',
    `# A starter policy file written by \`rlsctl init\` from ${commentText(options.source)}.`,
    '# Review it before `rlsctl apply`: every table under a schema below must be declared, and the',
    '# tables listed in comments as "to decide" are not yet, on purpose; `rlsctl plan` names them',
    '# until each is declared tenant (directly or via a parent), shared, or exempt with a reason.',
    'version: 1',
    '',
    'tenant:',
    `  setting: ${yamlScalar(setting)}`,
    ...(claim ? [`  claim: ${yamlScalar(claim)}`] : []),
    `  type: ${type}`,
    `  column: ${yamlScalar(column)}`,
    '',
    'roles:',
    `  app: [${appRoles.map(yamlScalar).join(', ')}]${appPlaceholder ? '   # TODO: the role(s) your application connects as' : ''}`,
    `  bypass: [${bypass.map(yamlScalar).join(', ')}]${bypass.length > 0 ? `   # login roles that have BYPASSRLS today${options.facts ? ' and own objects, hold privileges or may connect here' : ''}` : ''}`,
    ...(unnamed.length > 0
      ? [`  # also BYPASSRLS, left out because a policy file cannot name a role with control characters (rename them): ${unnamed.map(shown).join(', ')}`]
      : []),
    '',
    'schemas:',
  ];
  const undecided: string[] = [];
  const extensionTables = options.facts?.extensionTables ?? [];
  const schemas = [...new Set(tables.map((t) => t.schema))].filter(holdableName).sort();
  const unheld = [...new Set(tables.map((t) => t.schema))].filter((n) => !holdableName(n));
  if (unheld.length > 0) notes.push(`schemas left out, their names have control characters (rename them): ${unheld.map(shown).join(', ')}`);
  for (const schema of schemas) {
    const inSchema = tables.filter((t) => t.schema === schema);
    const templates = inSchema.filter((t) => templateOf(t));
    const declared = inSchema.filter((t) => tenantKeys.has(keyOf(t)) || templateOf(t));
    const open = inSchema.filter((t) => !declared.includes(t));
    lines.push(`  ${yamlKey(schema)}:`);
    // `tables:` (null) when entries to uncomment follow: after `tables: {}` an uncommented line would be invalid YAML.
    lines.push(declared.length > 0 || open.length > 0 ? '    tables:' : '    tables: {}');
    for (const t of declared) {
      lines.push(...existingComment(t, '      '));
      const own = columnOf.get(keyOf(t));
      const partitioned = t.relkind === 'p' ? '   # partitioned: its partitions follow it' : '';
      if (templates.includes(t)) {
        const reason = `template table of the extension ${templateOf(t)}: holds no rows, its partitions copy its properties`;
        lines.push(`      ${yamlKey(t.name)}: { mode: exempt, reason: ${yamlScalar(reason)} }`);
      } else if (roots.has(keyOf(t))) {
        lines.push(
          `      ${yamlKey(t.name)}: { column: ${yamlScalar(own ?? '')} }   # the tenant root: tenant columns reference it${partitioned ? '; partitioned' : ''}`,
        );
      } else if (own !== column) {
        lines.push(`      ${yamlKey(t.name)}: { column: ${yamlScalar(own ?? '')} }${partitioned}`);
      } else {
        lines.push(`      ${yamlKey(t.name)}: tenant${partitioned}`);
      }
    }
    if (open.length > 0) {
      lines.push(`      # To decide: these tables have no ${commentText(columnNames)} column of type ${type}. Declare each one as`);
      lines.push('      #   tenant via a parent (its tenant comes from a row it references),');
      lines.push('      #   shared (every tenant reads it, no app role writes), or');
      lines.push('      #   { mode: exempt, reason: ... } (no tenant data; audit lists it with the reason).');
      for (const t of open) {
        undecided.push(keyOf(t));
        const name = yamlKey(t.name);
        const other = candidates(t)[0];
        lines.push('      #');
        lines.push(...existingComment(t, '      # '));
        // A via parent: a tenant table this one references by a unique key of the parent (one parent row, one tenant).
        // NOT NULL keys first: a row whose key is NULL has no parent, so via would hide it from every tenant.
        const fits = catalog.foreignKeys.filter(
          (f) =>
            f.schema === t.schema &&
            f.table === t.name &&
            tenantKeys.has(`${f.refSchema}.${f.refTable}`) &&
            uniqueKey(byKey.get(`${f.refSchema}.${f.refTable}`), f.refColumns),
        );
        const fk = fits.find((f) => f.columns.every((n) => t.columns.some((c) => c.name === n && c.notNull))) ?? fits[0];
        const sensitive = [t.name, ...t.columns.map((c) => c.name)].find((n) => SENSITIVE.test(n));
        const why = [
          ...(holdableName(t.name) ? [] : ['its name has control characters, which a policy file cannot name: rename it']),
          other ? `its ${shown(other.name)} is ${commentText(other.type)}, not ${type}` : `no ${commentText(columnNames)} column`,
          fk ? 'it references a tenant table' : 'no foreign key to a unique key of a tenant table',
          ...(fk
            ? fk.columns
                .filter((n) => !t.columns.some((c) => c.name === n && c.notNull))
                .map((n) => `its ${shown(n)} admits NULL: via hides the rows where it is NULL`)
            : []),
          ...(sensitive ? [`${sensitive === t.name ? 'its name' : `its column ${shown(sensitive)}`} suggests credentials or personal data: never shared`] : []),
        ];
        lines.push(`      # ${name}: to decide: ${why.join('; ')}`);
        if (!holdableName(t.name)) continue;
        if (fk) {
          const parent = fk.refSchema === t.schema ? fk.refTable : `${fk.refSchema}.${fk.refTable}`;
          lines.push(
            `      # ${name}: { via: { parent: ${yamlScalar(parent)}, columns: [${fk.columns.map(yamlScalar).join(', ')}], references: [${fk.refColumns.map(yamlScalar).join(', ')}] } }`,
          );
        } else if (!sensitive) {
          lines.push(`      # ${name}: shared`);
        }
        lines.push(`      # ${name}: { mode: exempt, reason: "..." }`);
      }
    }
    const owned = extensionTables.filter((e) => e.schema === schema);
    if (owned.length > 0) {
      lines.push('      # Exempt, and left out of this file: tables that belong to an extension (rlsctl does not manage them):');
      for (const e of owned) {
        lines.push(`      #   ${yamlKey(e.name)}: ${e.config ? 'configuration table' : 'table'} of the extension ${commentText(e.extension)}`);
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

/**
 * The claim path the most policy texts read from the JWT claims, as
 * pg_get_expr prints `(current_setting('request.jwt.claims', true)::jsonb -> 'a') ->> 'b'`
 * or `(auth.jwt() -> 'a') ->> 'b'`; only paths a policy file can hold (CLAIM_PATH).
 */
function claimRead(texts: string[]): string | undefined {
  const source = String.raw`(?:current_setting\('request\.jwt\.claims'(?:::text)?(?:, true)?\)\)?::jsonb?|auth\.jwt\(\))\)?`;
  const step = String.raw`\s*->>?\s*'([^']*)'(?:::text)?\)?`;
  const read = new RegExp(`${source}((?:${step})+)`, 'g');
  const seen = new Map<string, number>();
  for (const text of texts) {
    for (const m of text.matchAll(read)) {
      const path = [...m[1].matchAll(new RegExp(step, 'g'))].map((s) => s[1]).join('.');
      if (CLAIM_PATH.test(path)) seen.set(path, (seen.get(path) ?? 0) + 1);
    }
  }
  return [...seen].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0];
}

const CLAIM_PATH = /^[A-Za-z0-9_-]{1,63}(\.[A-Za-z0-9_-]{1,63}){0,15}$/;

function existingComment(t: CatalogTable, indent: string): string[] {
  if (t.policies.length === 0 && !t.rls.enabled) return [];
  const out = [
    `${indent}${indent.includes('#') ? '' : '# '}existing on ${shown(t.name)}: RLS ${t.rls.enabled ? 'enabled' : 'disabled'}${t.rls.enabled ? (t.rls.forced ? ', forced' : ', not forced') : ''}; ${t.policies.length} polic${t.policies.length === 1 ? 'y' : 'ies'}`,
  ];
  for (const p of t.policies) out.push(`${indent}${indent.includes('#') ? '' : '# '}  ${describePolicy(p)}`);
  return out;
}

function describePolicy(p: CatalogPolicy): string {
  const flat = (s: string) => commentText(s).trim();
  const parts = [`${shown(p.name)}: ${p.permissive ? 'permissive' : 'restrictive'} for ${p.command} to ${p.roles.map(shown).join(', ')}`];
  if (p.name.startsWith(GENERATED_PREFIX)) return `${parts[0]} (made by rlsctl)`;
  if (p.using) parts.push(`USING ${flat(p.using)}`);
  if (p.check) parts.push(`WITH CHECK ${flat(p.check)}`);
  return parts.join(' ');
}

/**
 * Characters that must not reach the draft as they are: line breaks (a
 * newline in a catalog name would start a new YAML line and could change what
 * the file declares), other control characters, and the invisible ones that
 * change how a line reads (bidirectional overrides, byte order mark).
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ufffe\uffff]/g;
const ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** Text from the catalog for a comment (or a terminal line): every unsafe character escaped visibly. */
export function commentText(value: string): string {
  return value.replace(UNSAFE, (c) => ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A YAML plain scalar when it is safe as one, else a double-quoted string with every unsafe character escaped. */
export function yamlScalar(value: string): string {
  const plain = /^[A-Za-z_][A-Za-z0-9_ .$-]*$/.test(value) && !/ $/.test(value) && !/^(true|false|null|yes|no|on|off|y|n|~)$/i.test(value);
  return plain ? value : commentText(JSON.stringify(value));
}

/** A catalog name in a comment or message: as a YAML scalar, so a strange name shows quoted and escaped. */
export const shown = yamlScalar;

function yamlKey(value: string): string {
  return yamlScalar(value);
}
