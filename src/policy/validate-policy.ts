import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node, type Pair, type YAMLMap } from 'yaml';
import type { PolicyDiagnostic, SourceLocation } from '../errors.js';
import { identBytes } from '../compile/quote.js';
import { desiredTable } from '../compile/desired-state.js';
import {
  COMMANDS,
  ENGINES,
  type Engine,
  TENANT_TYPES,
  type Command,
  type ExtraPolicy,
  type IndexDecl,
  type PolicyCommand,
  type PolicyModel,
  type TableDecl,
  type TenantType,
  type Via,
} from './model.js';
import { checkExpression, hasSubLink } from './expression.js';
import { didYouMean } from './suggest.js';
import { checkMembershipTable, readMembership } from './validate-membership.js';

export interface PolicySource {
  file: string;
  text: string;
}

export interface ValidationResult {
  model?: PolicyModel;
  diagnostics: PolicyDiagnostic[];
}

const TOP_KEYS = ['version', 'tenant', 'roles', 'schemas', 'partitions', 'engine'] as const;
const PARTITIONS_KEYS = ['protect_new'] as const;
const TENANT_KEYS = ['setting', 'type', 'column', 'claim', 'membership'] as const;
/** A segment of `tenant.claim`: it becomes a quoted literal of a text[] path (src/compile/tenant-lookup.ts). */
const CLAIM_SEGMENT = /^[A-Za-z0-9_-]{1,63}$/;
const ROLE_KEYS = ['app', 'bypass'] as const;
const SCHEMA_KEYS = ['tables'] as const;
const TABLE_KEYS = ['mode', 'column', 'indexes', 'commands', 'via', 'reason', 'policies'] as const;
const INDEX_KEYS = ['columns', 'unique', 'name'] as const;
const VIA_KEYS = ['parent', 'columns', 'references'] as const;
const POLICY_KEYS = ['name', 'to', 'for', 'as', 'using', 'check'] as const;
const MODES = ['tenant', 'shared', 'exempt'] as const;
/** Aliases expanded per file at most (yaml's toJS uses the same bound). */
const MAX_ALIASES = 100;
/**
 * Values (scalars, mappings, lists) that the aliases of one file may add when
 * expanded, in all. Each alias copies its anchor as already expanded, so a few
 * aliases of aliases double the size per level: the alias count alone does
 * not bound it (docs/policy-file.md, "Limits on input").
 */
export const MAX_ALIAS_EXPANSION = 100_000;
/** Which table keys each mode admits, beside `mode` itself. */
const MODE_KEYS: Record<(typeof MODES)[number], readonly string[]> = {
  tenant: ['column', 'indexes', 'commands', 'via', 'policies'],
  shared: ['indexes', 'policies'],
  exempt: ['reason'],
};

/**
 * Validate the YAML of one or more policy files as one document, collecting
 * every problem with its file, line and column. The model is returned only
 * when there is no problem at all.
 */
export function validatePolicy(sources: PolicySource[]): ValidationResult {
  return new Validator().run(sources);
}

interface Declared {
  location: SourceLocation;
}

/**
 * Whether a policy file can name `name`: no control character (C0, DEL, C1: names that cannot be told apart
 * in a terminal or a log), no lone surrogate (not valid UTF-8, so PostgreSQL could not store it as
 * written), not blank. The validator refuses other names; init never declares them.
 */
export function holdableName(name: string): boolean {
  return !/[\u0000-\u001f\u007f-\u009f]|\p{Cs}/u.test(name) && name.trim() !== '';
}

class Validator {
  private diagnostics: PolicyDiagnostic[] = [];
  private file = '';
  private lines = new LineCounter();

  private tenant?: { value: PolicyModel['tenant'] } & Declared;
  private roles?: { value: PolicyModel['roles'] } & Declared;
  private partitions?: { value: NonNullable<PolicyModel['partitions']> } & Declared;
  private engine?: { value: Engine } & Declared;
  /** Hand-written expressions that hold a sub-query, refused under `engine: citus`. */
  private subqueries: SourceLocation[] = [];
  /** A `roles` key was found in some file, valid or not. */
  private rolesSeen = false;
  /** Some file could not be parsed as YAML, so what it declares is unknown. */
  private unreadableFile = false;
  private schemas = new Map<string, Declared>();
  private tables: TableDecl[] = [];
  private viaLocations = new Map<TableDecl, SourceLocation>();
  /** Where `tenant.membership` was declared. */
  private membershipAt?: SourceLocation;

  run(sources: PolicySource[]): ValidationResult {
    for (const source of sources) this.readFile(source);
    // `roles` is the one section without a default. Said only when every file
    // could be read: a file with a YAML syntax error may well hold it.
    if (!this.rolesSeen && !this.unreadableFile) {
      this.report(
        { file: sources[0]?.file ?? '<none>', line: 1, column: 1 },
        sources.length === 1
          ? 'the policy file has no `roles` section'
          : `none of the policy files (${sources.map((s) => s.file).join(', ')}) has a \`roles\` section`,
        'add `roles: { app: [your_app_role] }`: the roles application traffic runs as',
      );
    }
    this.checkCrossReferences();
    if (this.diagnostics.length === 0 && this.roles) this.checkRelationNames(this.assemble(sources));
    if (this.diagnostics.length > 0 || !this.roles) {
      this.diagnostics.sort(
        (a, b) => a.location.file.localeCompare(b.location.file) || a.location.line - b.location.line || a.location.column - b.location.column,
      );
      return { diagnostics: this.diagnostics };
    }
    return { diagnostics: [], model: this.assemble(sources) };
  }

  private assemble(sources: PolicySource[]): PolicyModel {
    const tenant = this.tenant?.value ?? { setting: 'app.tenant_id', type: 'uuid' as TenantType, column: 'tenant_id' };
    return {
      version: 1,
      tenant,
      roles: this.roles!.value,
      schemas: [...this.schemas.keys()],
      tables: this.tables,
      ...(this.partitions ? { partitions: this.partitions.value } : {}),
      ...(this.engine ? { engine: this.engine.value } : {}),
      files: sources.map((s) => s.file),
    };
  }

  // ---------------------------------------------------------------- helpers

  at(node: Node | null | undefined): SourceLocation {
    const offset = node?.range ? node.range[0] : 0;
    const pos = this.lines.linePos(offset);
    return { file: this.file, line: pos.line, column: pos.col };
  }

  report(location: SourceLocation, message: string, hint?: string): void {
    this.diagnostics.push({ location, message, hint });
  }

  /** The pairs of a map, with unknown keys reported (and a "did you mean" for near misses). */
  entries(map: YAMLMap, allowed: readonly string[], where: string): Map<string, Pair> {
    const out = new Map<string, Pair>();
    for (const pair of map.items) {
      const keyNode = pair.key as Node | null;
      const key = isScalar(keyNode) ? String(keyNode.value) : undefined;
      if (key === undefined) {
        this.report(this.at(keyNode), `a key in ${where} is not a plain name`);
        continue;
      }
      if (!allowed.includes(key)) {
        const near = didYouMean(key, allowed);
        this.report(
          this.at(keyNode),
          `unknown key \`${key}\` in ${where}`,
          key === '<<'
            ? 'YAML merge keys are not part of YAML 1.2, which rlsctl reads: write the keys out (an alias of a whole value, `*name`, works)'
            : near
              ? `did you mean \`${near}\`?`
              : `allowed keys here: ${allowed.join(', ')}`,
        );
        continue;
      }
      out.set(key, pair);
    }
    return out;
  }

  keyLocation(pair: Pair): SourceLocation {
    return this.at(pair.key as Node);
  }

  valueLocation(pair: Pair): SourceLocation {
    return pair.value ? this.at(pair.value as Node) : this.keyLocation(pair);
  }

  string(pair: Pair, what: string): string | undefined {
    const node = pair.value as Node | null;
    if (isScalar(node) && typeof node.value === 'string' && node.value !== '') return node.value;
    this.report(this.valueLocation(pair), `${what} must be a non-empty string`, describe(node));
    return undefined;
  }

  private stringList(pair: Pair, what: string, allowEmpty = false): string[] | undefined {
    const node = pair.value as Node | null;
    if (!isSeq(node)) {
      this.report(this.valueLocation(pair), `${what} must be a list of names`, describe(node));
      return undefined;
    }
    const out: string[] = [];
    let ok = true;
    for (const item of node.items as Node[]) {
      if (isScalar(item) && typeof item.value === 'string' && item.value !== '') out.push(item.value);
      else {
        this.report(this.at(item), `every entry of ${what} must be a non-empty string`, describe(item));
        ok = false;
      }
    }
    if (ok && !allowEmpty && out.length === 0) {
      this.report(this.valueLocation(pair), `${what} must not be empty`);
      return undefined;
    }
    return ok ? out : undefined;
  }

  identifier(name: string, location: SourceLocation, what: string): boolean {
    // Every identifier is quoted in the SQL rlsctl writes, so any name PostgreSQL
    // can store is accepted; what it cannot store, or would silently truncate, is not.
    if (identBytes(name) > 63) {
      this.report(
        location,
        `${what} \`${name}\` is ${identBytes(name)} bytes long; PostgreSQL identifiers hold at most 63 bytes`,
        'PostgreSQL would truncate it silently, so the name in the database would differ from the file',
      );
      return false;
    }
    // Control characters (C0, DEL, C1) make names that cannot be told apart
    // in a terminal or a log; a lone surrogate is not valid UTF-8, so
    // PostgreSQL could not store it as written. A name of spaces only is
    // legal SQL but certainly a mistake.
    if (!holdableName(name)) {
      this.report(
        location,
        `${what} ${JSON.stringify(name)} is not a valid PostgreSQL identifier`,
        name.trim() === '' ? 'a name needs at least one visible character' : 'use a name without control characters',
      );
      return false;
    }
    return true;
  }

  private identifiers(names: string[] | undefined, pair: Pair, what: string): string[] | undefined {
    if (!names) return undefined;
    const node = pair.value as Node;
    const items = isSeq(node) ? (node.items as Node[]) : [];
    const ok = names.every((n, i) => this.identifier(n, items[i] ? this.at(items[i]) : this.valueLocation(pair), what));
    const seen = new Set<string>();
    for (const [i, n] of names.entries()) {
      if (seen.has(n)) {
        this.report(items[i] ? this.at(items[i]) : this.valueLocation(pair), `${what} \`${n}\` is listed twice`);
        return undefined;
      }
      seen.add(n);
    }
    return ok ? names : undefined;
  }

  // ------------------------------------------------------------------ files

  private readFile(source: PolicySource): void {
    this.file = source.file;
    this.lines = new LineCounter();
    const doc = parseDocument(source.text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
    const fatal = doc.errors.filter((e) => e.code !== 'DUPLICATE_KEY');
    for (const error of fatal) {
      const pos = this.lines.linePos(error.pos[0]);
      this.report(
        { file: this.file, line: pos.line, column: pos.col },
        `invalid YAML: ${error.message.split('\n')[0]}`,
        'check the indentation and quoting around this place',
      );
    }
    if (fatal.length > 0) {
      this.unreadableFile = true;
      return;
    }
    // A duplicate key leaves the document readable: report it, keep the first
    // occurrence and go on, so that the other problems are reported too.
    if (doc.errors.length > 0) this.dropDuplicateKeys(doc);
    if (!this.resolveAliases(doc)) return;
    const root = doc.contents as Node | null;
    if (!isMap(root)) {
      this.report({ file: this.file, line: 1, column: 1 }, 'a policy file must be a YAML mapping with `version: 1` at the top', describe(root));
      return;
    }
    const top = this.entries(root, TOP_KEYS, 'the top-level mapping');
    const version = top.get('version');
    if (!version) {
      this.report(this.at(root), 'the policy file has no `version`', 'add `version: 1` as the first line');
    } else {
      const node = version.value as Node | null;
      if (!isScalar(node) || node.value !== 1) {
        this.report(
          this.valueLocation(version),
          `unsupported version ${isScalar(node) ? JSON.stringify(node.value) : describe(node)}`,
          'this rlsctl reads format version 1: write `version: 1`',
        );
      }
    }
    const tenant = top.get('tenant');
    if (tenant) this.readTenant(tenant);
    const roles = top.get('roles');
    if (roles) this.readRoles(roles);
    const schemas = top.get('schemas');
    if (schemas) this.readSchemas(schemas);
    const partitions = top.get('partitions');
    if (partitions) this.readPartitions(partitions);
    const engine = top.get('engine');
    if (engine && this.firstDeclaration(this.engine, engine, '`engine`')) {
      const e = this.string(engine, '`engine`');
      if (e !== undefined && (ENGINES as readonly string[]).includes(e)) this.engine = { value: e as Engine, location: this.keyLocation(engine) };
      else if (e !== undefined) {
        const near = didYouMean(e, ENGINES);
        this.report(this.valueLocation(engine), `unknown engine \`${e}\``, near ? `did you mean \`${near}\`?` : `use one of ${ENGINES.join(', ')}`);
      }
    }
  }

  private readPartitions(pair: Pair): void {
    const node = pair.value as Node | null;
    if (!isMap(node)) {
      this.report(this.valueLocation(pair), '`partitions` must be a mapping (protect_new)', describe(node));
      return;
    }
    if (!this.firstDeclaration(this.partitions, pair, '`partitions`')) return;
    const keys = this.entries(node, PARTITIONS_KEYS, '`partitions`');
    let protectNew = false;
    const protectPair = keys.get('protect_new');
    if (protectPair) {
      const v = protectPair.value as Node | null;
      if (isScalar(v) && typeof v.value === 'boolean') protectNew = v.value;
      else this.report(this.valueLocation(protectPair), '`partitions.protect_new` must be true or false', describe(v));
    }
    this.partitions = { value: { protectNew }, location: this.keyLocation(pair) };
  }

  /** Report every key that appears twice in one mapping, naming both places, and drop the later pairs. */
  private dropDuplicateKeys(doc: Document): void {
    visit(doc, {
      Map: (_, map) => {
        const first = new Map<unknown, Pair>();
        map.items = map.items.filter((pair) => {
          const key = isScalar(pair.key) ? pair.key.value : pair.key;
          const previous = first.get(key);
          if (!previous) {
            first.set(key, pair);
            return true;
          }
          this.report(
            this.keyLocation(pair),
            `the key \`${String(key)}\` appears twice in one mapping: here and at line ${this.keyLocation(previous).line}`,
            'YAML keeps only one of them: merge the two into one entry',
          );
          return false;
        });
      },
    });
  }

  /**
   * Anchors and aliases (`&roles` / `*roles`) are plain YAML, so they work
   * here: each alias is replaced by a copy of what it names, and a problem in
   * the copy is reported at the anchor. The count is capped, as yaml's own
   * toJS does, so a recursive or exponential alias cannot hang the validator.
   */
  private resolveAliases(doc: Document): boolean {
    const bomb = aliasExpansionProblem(doc);
    if (bomb) {
      this.unreadableFile = true;
      this.report(this.at(bomb.alias), bomb.message, bomb.hint);
      return false;
    }
    let count = 0;
    let failed: SourceLocation | undefined;
    visit(doc, {
      Alias: (_, alias) => {
        const target = alias.resolve(doc);
        if (++count > MAX_ALIASES || !target) {
          failed = this.at(alias);
          return visit.BREAK;
        }
        return target.clone() as Node;
      },
    });
    if (failed) {
      this.unreadableFile = true;
      this.report(
        failed,
        count > MAX_ALIASES ? `more than ${MAX_ALIASES} YAML aliases, or an alias inside the value it names` : 'this YAML alias names no anchor',
        'write the value out instead of the alias',
      );
      return false;
    }
    return true;
  }

  private firstDeclaration(previous: Declared | undefined, pair: Pair, what: string): boolean {
    if (!previous) return true;
    const here = this.keyLocation(pair);
    this.report(
      here,
      `${what} is declared twice: at ${formatLocation(previous.location)} and at ${formatLocation(here)}`,
      'declare it once; merge the two declarations',
    );
    return false;
  }

  private readTenant(pair: Pair): void {
    const node = pair.value as Node | null;
    if (!isMap(node)) {
      this.report(this.valueLocation(pair), '`tenant` must be a mapping (setting, type, column)', describe(node));
      return;
    }
    if (!this.firstDeclaration(this.tenant, pair, '`tenant`')) return;
    const keys = this.entries(node, TENANT_KEYS, '`tenant`');
    const value: PolicyModel['tenant'] = { setting: 'app.tenant_id', type: 'uuid', column: 'tenant_id' };
    const setting = keys.get('setting');
    const s = setting ? this.settingName(setting, '`tenant.setting`') : undefined;
    if (s !== undefined) value.setting = s;
    const type = keys.get('type');
    const t = type ? this.tenantType(type, '`tenant.type`') : undefined;
    if (t !== undefined) value.type = t;
    const column = keys.get('column');
    if (column) {
      const c = this.string(column, '`tenant.column`');
      if (c !== undefined && this.identifier(c, this.valueLocation(column), 'the tenant column')) value.column = c;
    }
    const claimPair = keys.get('claim');
    const claim = claimPair ? this.claimPath(claimPair) : undefined;
    // PostgREST's setting is the default home of claims.
    if (claim) Object.assign(value, { claim, setting: setting ? value.setting : 'request.jwt.claims' });
    const membership = keys.get('membership');
    if (membership) {
      const m = readMembership(this, membership, setting !== undefined || claim !== undefined);
      if (m) value.membership = m;
      this.membershipAt = this.keyLocation(membership);
    }
    this.tenant = { value, location: this.keyLocation(pair) };
  }

  /** `tenant.claim`: dot-separated segments of letters, digits, `_` and `-`; nothing else can reach the SQL. */
  private claimPath(pair: Pair): string[] | undefined {
    const text = this.string(pair, '`tenant.claim`');
    if (text === undefined) return undefined;
    const segments = text.split('.');
    if (segments.length > 16 || !segments.every((part) => CLAIM_SEGMENT.test(part))) {
      this.report(
        this.valueLocation(pair),
        `the claim path ${JSON.stringify(text)} is not a valid claim path`,
        'write claim names of letters, digits, `_` and `-` (at most 63 each) joined by dots, e.g. `app_metadata.org_id` (at most 16 names)',
      );
      return undefined;
    }
    return segments;
  }

  /** A custom setting name (`tenant.setting`, `membership.user.setting`): a prefix, a dot, identifier-like parts. */
  settingName(pair: Pair, what: string): string | undefined {
    const s = this.string(pair, what);
    if (s === undefined) return undefined;
    if (!s.includes('.')) {
      this.report(this.valueLocation(pair), `the setting \`${s}\` has no dot`, `PostgreSQL only accepts custom settings with a prefix: write \`app.${s}\``);
    } else if (!/^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)+$/.test(s)) {
      this.report(
        this.valueLocation(pair),
        `the setting \`${s}\` is not a valid custom setting name`,
        'use names of letters, digits and underscores joined by dots, e.g. `app.tenant_id`',
      );
    } else return s;
    return undefined;
  }

  /** One of TENANT_TYPES (`tenant.type`, `membership.user.type`). */
  tenantType(pair: Pair, what: string): TenantType | undefined {
    const t = this.string(pair, what);
    if (t === undefined) return undefined;
    if ((TENANT_TYPES as readonly string[]).includes(t)) return t as TenantType;
    const near = didYouMean(t, TENANT_TYPES);
    this.report(this.valueLocation(pair), `unknown tenant type \`${t}\``, near ? `did you mean \`${near}\`?` : `use one of ${TENANT_TYPES.join(', ')}`);
    return undefined;
  }

  private readRoles(pair: Pair): void {
    this.rolesSeen = true;
    const node = pair.value as Node | null;
    if (!isMap(node)) {
      this.report(this.valueLocation(pair), '`roles` must be a mapping with `app` (and optionally `bypass`)', describe(node));
      return;
    }
    if (!this.firstDeclaration(this.roles, pair, '`roles`')) return;
    const keys = this.entries(node, ROLE_KEYS, '`roles`');
    const appPair = keys.get('app');
    let app: string[] | undefined;
    if (!appPair) {
      this.report(this.at(node), '`roles` has no `app` list', 'name the roles your application connects as: `app: [app_user]`');
    } else {
      const node = appPair.value as Node | null;
      if (isSeq(node) && node.items.length === 0) {
        this.report(this.valueLocation(appPair), '`roles.app` is empty', 'policies are made TO the app roles: name at least one');
      } else app = this.identifiers(this.stringList(appPair, '`roles.app`'), appPair, 'the app role');
    }
    const bypassPair = keys.get('bypass');
    const bypass = bypassPair ? this.identifiers(this.stringList(bypassPair, '`roles.bypass`', true), bypassPair, 'the bypass role') : [];
    if (app && bypass && bypassPair) {
      const items = (bypassPair.value as { items: Node[] }).items;
      for (const [i, role] of bypass.entries()) {
        if (app.includes(role)) {
          this.report(
            this.at(items[i]),
            `the role \`${role}\` is both an app role and a bypass role`,
            'an app role must never bypass row level security: remove it from one of the lists',
          );
        }
      }
    }
    this.roles = { value: { app: app ?? [], bypass: bypass ?? [] }, location: this.keyLocation(pair) };
  }

  private readSchemas(pair: Pair): void {
    const node = pair.value as Node | null;
    if (!isMap(node)) {
      this.report(this.valueLocation(pair), '`schemas` must be a mapping of schema names', describe(node));
      return;
    }
    for (const schemaPair of node.items) {
      const keyNode = schemaPair.key as Node | null;
      if (!isScalar(keyNode) || typeof keyNode.value !== 'string') {
        this.report(this.at(keyNode), 'a schema name must be a string');
        continue;
      }
      const schema = keyNode.value;
      if (!this.identifier(schema, this.at(keyNode), 'the schema name')) continue;
      if (!this.firstDeclaration(this.schemas.get(schema), schemaPair, `the schema \`${schema}\``)) continue;
      this.schemas.set(schema, { location: this.keyLocation(schemaPair) });
      const body = schemaPair.value as Node | null;
      // An empty entry, like `tables:` left empty, is a managed schema with no tables yet.
      if (body === null || (isScalar(body) && body.value === null)) continue;
      if (!isMap(body)) {
        this.report(this.valueLocation(schemaPair), `the schema \`${schema}\` must be a mapping with \`tables\``, describe(body));
        continue;
      }
      const keys = this.entries(body, SCHEMA_KEYS, `the schema \`${schema}\``);
      const tables = keys.get('tables');
      if (!tables) continue;
      const tablesNode = tables.value as Node | null;
      if (tablesNode === null || (isScalar(tablesNode) && tablesNode.value === null)) continue;
      if (!isMap(tablesNode)) {
        this.report(this.valueLocation(tables), `\`tables\` of the schema \`${schema}\` must be a mapping of table names`, describe(tablesNode));
        continue;
      }
      for (const tablePair of tablesNode.items) this.readTable(schema, tablePair);
    }
  }

  private readTable(schema: string, pair: Pair): void {
    const keyNode = pair.key as Node | null;
    if (!isScalar(keyNode) || typeof keyNode.value !== 'string') {
      this.report(this.at(keyNode), 'a table name must be a string');
      return;
    }
    const name = keyNode.value;
    const location = this.keyLocation(pair);
    if (!this.identifier(name, location, 'the table name')) return;
    const where = `the table \`${schema}.${name}\``;
    const node = pair.value as Node | null;
    // `customers: tenant` is shorthand for `{ mode: tenant }`; an empty entry is the default mode.
    if (node === null || (isScalar(node) && node.value === null)) {
      this.tables.push(tenantTable(schema, name, location));
      return;
    }
    if (isScalar(node)) {
      const mode = String(node.value);
      if (mode === 'tenant') this.tables.push(tenantTable(schema, name, location));
      else if (mode === 'shared') this.tables.push({ mode: 'shared', schema, name, location, policies: [], indexes: [] });
      else if (mode === 'exempt')
        this.report(this.at(node), `${where} is exempt without a reason`, 'write `{ mode: exempt, reason: "why this table holds no tenant data" }`');
      else {
        const near = didYouMean(mode, MODES);
        this.report(this.at(node), `unknown mode \`${mode}\` for ${where}`, near ? `did you mean \`${near}\`?` : `use one of ${MODES.join(', ')}`);
      }
      return;
    }
    if (!isMap(node)) {
      this.report(this.at(node), `${where} must be a mode (tenant, shared, exempt) or a mapping`, describe(node));
      return;
    }
    const keys = this.entries(node, TABLE_KEYS, where);
    let mode = 'tenant' as (typeof MODES)[number];
    const modePair = keys.get('mode');
    if (modePair) {
      const m = this.string(modePair, '`mode`');
      if (m === undefined) return;
      if (!(MODES as readonly string[]).includes(m)) {
        const near = didYouMean(m, MODES);
        this.report(this.valueLocation(modePair), `unknown mode \`${m}\` for ${where}`, near ? `did you mean \`${near}\`?` : `use one of ${MODES.join(', ')}`);
        return;
      }
      mode = m as typeof mode;
    }
    for (const [key, keyPair] of keys) {
      if (key !== 'mode' && !MODE_KEYS[mode].includes(key)) {
        this.report(
          this.keyLocation(keyPair),
          `\`${key}\` does not apply to a ${mode} table (${where})`,
          `keys of a ${mode} table: mode, ${MODE_KEYS[mode].join(', ')}`,
        );
      }
    }
    const policiesPair = keys.get('policies');
    const policies = policiesPair && MODE_KEYS[mode].includes('policies') ? this.readPolicies(policiesPair, where) : [];
    const indexesPair = keys.get('indexes');
    const indexes = indexesPair && MODE_KEYS[mode].includes('indexes') ? this.readIndexes(indexesPair, where) : [];

    if (mode === 'exempt') {
      const reasonPair = keys.get('reason');
      if (!reasonPair) {
        this.report(location, `${where} is exempt without a reason`, 'add `reason: ...`: why this table holds no tenant data; audit lists it');
        return;
      }
      const reason = this.string(reasonPair, '`reason`');
      if (reason !== undefined) this.tables.push({ mode: 'exempt', schema, name, location, reason, policies: [], indexes: [] });
      return;
    }
    if (mode === 'shared') {
      this.tables.push({ mode: 'shared', schema, name, location, policies, indexes });
      return;
    }
    const table = tenantTable(schema, name, location);
    table.policies = policies;
    table.indexes = indexes;
    const columnPair = keys.get('column');
    if (columnPair) {
      const column = this.string(columnPair, '`column`');
      if (column !== undefined && this.identifier(column, this.valueLocation(columnPair), 'the tenant column')) table.column = column;
    }
    const commandsPair = keys.get('commands');
    if (commandsPair) {
      const list = this.stringList(commandsPair, '`commands`');
      if (list) {
        const items = (commandsPair.value as { items: Node[] }).items;
        const commands: Command[] = [];
        list.forEach((c, i) => {
          if (!(COMMANDS as readonly string[]).includes(c)) {
            const near = didYouMean(c, COMMANDS);
            this.report(this.at(items[i]), `unknown command \`${c}\``, near ? `did you mean \`${near}\`?` : `use some of ${COMMANDS.join(', ')}`);
          } else if (commands.includes(c as Command)) this.report(this.at(items[i]), `the command \`${c}\` is listed twice`);
          else commands.push(c as Command);
        });
        table.commands = COMMANDS.filter((c) => commands.includes(c));
      }
    }
    const viaPair = keys.get('via');
    if (viaPair) {
      if (columnPair)
        this.report(
          this.keyLocation(columnPair),
          `${where} takes its tenant from its parent (\`via\`), so it has no tenant \`column\``,
          'remove `column` or `via`',
        );
      const via = this.readVia(viaPair, schema, where);
      if (via) {
        table.via = via;
        table.column = undefined;
        this.viaLocations.set(table, this.keyLocation(viaPair));
      }
    }
    this.tables.push(table);
  }

  private readVia(pair: Pair, schema: string, where: string): Via | undefined {
    const node = pair.value as Node | null;
    if (!isMap(node)) {
      this.report(this.valueLocation(pair), `\`via\` of ${where} must be a mapping { parent, columns, references }`, describe(node));
      return undefined;
    }
    const keys = this.entries(node, VIA_KEYS, `\`via\` of ${where}`);
    for (const required of VIA_KEYS) {
      if (!keys.has(required))
        this.report(this.at(node), `\`via\` of ${where} has no \`${required}\``, 'write `via: { parent: invoices, columns: [invoice_id], references: [id] }`');
    }
    const parentPair = keys.get('parent');
    const columnsPair = keys.get('columns');
    const referencesPair = keys.get('references');
    if (!parentPair || !columnsPair || !referencesPair) return undefined;
    const parent = this.string(parentPair, '`via.parent`');
    const columns = this.identifiers(this.stringList(columnsPair, '`via.columns`'), columnsPair, 'the column');
    const references = this.identifiers(this.stringList(referencesPair, '`via.references`'), referencesPair, 'the column');
    if (parent === undefined || !columns || !references) return undefined;
    if (columns.length !== references.length) {
      this.report(
        this.valueLocation(referencesPair),
        `\`via.references\` has ${references.length} columns and \`via.columns\` ${columns.length}`,
        'each column of this table references one column of the parent, in order',
      );
      return undefined;
    }
    // `parent: invoices` names a table of the same schema; `parent: billing.invoices` another schema's.
    const dot = parent.indexOf('.');
    const parentSchema = dot >= 0 ? parent.slice(0, dot) : schema;
    const parentName = dot >= 0 ? parent.slice(dot + 1) : parent;
    if (
      !this.identifier(parentSchema, this.valueLocation(parentPair), 'the parent schema') ||
      !this.identifier(parentName, this.valueLocation(parentPair), 'the parent table')
    )
      return undefined;
    return { parentSchema, parentName, columns, references };
  }

  private readIndexes(pair: Pair, where: string): IndexDecl[] {
    const node = pair.value as Node | null;
    if (!isSeq(node)) {
      this.report(this.valueLocation(pair), `\`indexes\` of ${where} must be a list`, describe(node));
      return [];
    }
    const out: IndexDecl[] = [];
    for (const item of node.items as Node[]) {
      const location = this.at(item);
      if (isSeq(item)) {
        const columns = this.columnList(item, location, where);
        if (columns) out.push({ columns, unique: false, location });
        continue;
      }
      if (!isMap(item)) {
        this.report(location, `an index of ${where} must be a list of columns or { columns, unique, name }`, describe(item));
        continue;
      }
      const keys = this.entries(item, INDEX_KEYS, `an index of ${where}`);
      const columnsPair = keys.get('columns');
      if (!columnsPair) {
        this.report(location, `an index of ${where} has no \`columns\``, 'write `{ columns: [created_at] }`');
        continue;
      }
      const columnsNode = columnsPair.value as Node | null;
      if (!isSeq(columnsNode)) {
        this.report(this.valueLocation(columnsPair), '`columns` must be a list of column names', describe(columnsNode));
        continue;
      }
      const columns = this.columnList(columnsNode, this.valueLocation(columnsPair), where);
      let unique = false;
      const uniquePair = keys.get('unique');
      if (uniquePair) {
        const u = uniquePair.value as Node | null;
        if (isScalar(u) && typeof u.value === 'boolean') unique = u.value;
        else this.report(this.valueLocation(uniquePair), '`unique` must be true or false', describe(u));
      }
      let name: string | undefined;
      const namePair = keys.get('name');
      if (namePair) {
        name = this.string(namePair, '`name`');
        if (name !== undefined && !this.identifier(name, this.valueLocation(namePair), 'the index name')) name = undefined;
      }
      if (columns) out.push({ columns, unique, name, location });
    }
    return out;
  }

  private columnList(node: Node, location: SourceLocation, where: string): string[] | undefined {
    if (!isSeq(node) || node.items.length === 0) {
      this.report(location, `an index of ${where} needs at least one column`);
      return undefined;
    }
    const out: string[] = [];
    for (const item of node.items as Node[]) {
      if (!isScalar(item) || typeof item.value !== 'string' || item.value === '') {
        this.report(this.at(item), 'an index column must be a column name', describe(item));
        return undefined;
      }
      if (!this.identifier(item.value, this.at(item), 'the index column')) return undefined;
      out.push(item.value);
    }
    return out;
  }

  private readPolicies(pair: Pair, where: string): ExtraPolicy[] {
    const node = pair.value as Node | null;
    if (!isSeq(node)) {
      this.report(this.valueLocation(pair), `\`policies\` of ${where} must be a list`, describe(node));
      return [];
    }
    const out: ExtraPolicy[] = [];
    const names = new Set<string>();
    for (const item of node.items as Node[]) {
      const location = this.at(item);
      if (!isMap(item)) {
        this.report(location, `a policy of ${where} must be a mapping { name, to, for, as, using, check }`, describe(item));
        continue;
      }
      const keys = this.entries(item, POLICY_KEYS, `a policy of ${where}`);
      const namePair = keys.get('name');
      const toPair = keys.get('to');
      if (!namePair) this.report(location, `a policy of ${where} has no \`name\``);
      if (!toPair) this.report(location, `a policy of ${where} has no \`to\``, 'name the roles it applies to: `to: [support_agent]`');
      const name = namePair ? this.string(namePair, 'the policy `name`') : undefined;
      if (name !== undefined && namePair) {
        if (!this.identifier(name, this.valueLocation(namePair), 'the policy name')) continue;
        if (name.startsWith('rlsctl_')) {
          this.report(
            this.valueLocation(namePair),
            `the policy name \`${name}\` starts with \`rlsctl_\`, which rlsctl keeps for the policies it generates`,
            'choose another name',
          );
          continue;
        }
        if (names.has(name)) {
          this.report(this.valueLocation(namePair), `${where} has two policies named \`${name}\``);
          continue;
        }
        names.add(name);
      }
      const to = toPair ? this.identifiers(this.stringList(toPair, 'the policy `to`'), toPair, 'the role') : undefined;
      let command: PolicyCommand = 'all';
      const forPair = keys.get('for');
      if (forPair) {
        const f = this.string(forPair, '`for`');
        const allowed = [...COMMANDS, 'all'];
        if (f !== undefined && allowed.includes(f)) command = f as PolicyCommand;
        else if (f !== undefined) {
          const near = didYouMean(f, allowed);
          this.report(this.valueLocation(forPair), `unknown command \`${f}\``, near ? `did you mean \`${near}\`?` : `use one of ${allowed.join(', ')}`);
        }
      }
      let permissive = true;
      const asPair = keys.get('as');
      if (asPair) {
        const a = this.string(asPair, '`as`');
        if (a === 'restrictive') permissive = false;
        else if (a !== undefined && a !== 'permissive') {
          const near = didYouMean(a, ['permissive', 'restrictive']);
          this.report(this.valueLocation(asPair), `\`as\` must be permissive or restrictive, not \`${a}\``, near ? `did you mean \`${near}\`?` : undefined);
        }
      }
      const using = this.expression(keys.get('using'));
      const check = this.expression(keys.get('check'));
      const usingPair = keys.get('using');
      const checkPair = keys.get('check');
      if (!usingPair && !checkPair)
        this.report(location, `the policy ${name ?? ''} of ${where} has neither \`using\` nor \`check\``, 'a policy needs at least one expression');
      // PostgreSQL's own rules for CREATE POLICY: INSERT takes only WITH CHECK, SELECT and DELETE only USING.
      if (usingPair && command === 'insert')
        this.report(
          this.keyLocation(usingPair),
          'a policy `for: insert` takes only `check`',
          'PostgreSQL rejects USING on an INSERT policy: move the expression to `check`',
        );
      if (checkPair && (command === 'select' || command === 'delete'))
        this.report(
          this.keyLocation(checkPair),
          `a policy \`for: ${command}\` takes only \`using\``,
          `PostgreSQL rejects WITH CHECK on a ${command.toUpperCase()} policy: move the expression to \`using\``,
        );
      if (name !== undefined && to) out.push({ name, to, command, permissive, using, check, location });
    }
    return out;
  }

  private expression(pair: Pair | undefined): string | undefined {
    if (!pair) return undefined;
    const node = pair.value as Node | null;
    let text: string | undefined;
    if (isScalar(node) && (typeof node.value === 'string' || typeof node.value === 'boolean')) text = String(node.value);
    if (text === undefined) {
      this.report(this.valueLocation(pair), 'a policy expression must be a string of SQL', describe(node));
      return undefined;
    }
    const checked = checkExpression(text);
    if (!checked.ok) {
      this.report(
        this.valueLocation(pair),
        `the expression ${JSON.stringify(text)} is not valid: ${checked.message}`,
        'write one SQL boolean expression, e.g. `owner_id = (SELECT current_user_id())`',
      );
      return undefined;
    }
    if (hasSubLink(checked.tree)) this.subqueries.push(this.valueLocation(pair));
    return text;
  }

  // ------------------------------------------------------- across the files

  private checkCrossReferences(): void {
    if (this.engine?.value === 'citus') {
      const where = `\`engine: citus\` (${formatLocation(this.engine.location)})`;
      for (const location of this.viaLocations.values())
        this.report(
          location,
          `\`via\` is not available with ${where}: Citus refuses sub-queries in the policies of distributed tables`,
          'add the tenant column to this table (every distributed table carries it as its distribution column) and declare it `column: ...` instead of `via`',
        );
      for (const location of this.subqueries)
        this.report(
          location,
          `this expression holds a sub-query, which Citus refuses in the policies of distributed tables (${where})`,
          'write it without SELECT, EXISTS or IN (SELECT ...)',
        );
      if (this.membershipAt)
        this.report(
          this.membershipAt,
          `\`tenant.membership\` is not available with ${where}: its policies read the tenants of the user with a sub-select, which Citus refuses in the policies of distributed tables`,
          'drop `engine: citus`, or drop `tenant.membership` and put the active tenant in `tenant.setting` or `tenant.claim` (checking membership in the application)',
        );
    }
    const byKey = new Map<string, TableDecl>();
    for (const table of this.tables) byKey.set(`${table.schema}.${table.name}`, table);
    if (this.tenant && this.membershipAt) checkMembershipTable(this, this.tenant.value, byKey, this.membershipAt);
    for (const [table, location] of this.viaLocations) {
      if (table.mode !== 'tenant' || !table.via) continue;
      const parentKey = `${table.via.parentSchema}.${table.via.parentName}`;
      const parent = byKey.get(parentKey);
      if (!parent) {
        this.report(location, `the \`via\` parent ${parentKey} of ${table.schema}.${table.name} is not declared`, `declare ${parentKey} as a tenant table`);
      } else if (parent.mode !== 'tenant') {
        this.report(
          location,
          `the \`via\` parent ${parentKey} of ${table.schema}.${table.name} is declared ${parent.mode}, not tenant`,
          'a row can only inherit its tenant from a tenant-protected parent',
        );
      } else {
        // Follow the chain of parents; coming back to this table is a cycle.
        const seen = new Set<string>([`${table.schema}.${table.name}`]);
        let current: TableDecl | undefined = parent;
        while (current && current.mode === 'tenant' && current.via) {
          const key = `${current.schema}.${current.name}`;
          if (seen.has(key)) {
            this.report(location, `\`via\` makes a cycle: ${[...seen, key].join(' -> ')}`, 'one table in the chain must carry the tenant column itself');
            break;
          }
          seen.add(key);
          current = byKey.get(`${current.via.parentSchema}.${current.via.parentName}`);
        }
      }
    }
  }

  /**
   * Tables and indexes share one namespace per schema in PostgreSQL, and the
   * compiled script creates indexes with IF NOT EXISTS: a second index of the
   * same name, or an index named like a table, would be skipped with a mere
   * notice and the table left without it. So every index name, chosen or
   * derived by compile (the names are computed by the compiler itself, here
   * only checked), must be unique in its schema and differ from every
   * declared table's name.
   */
  private checkRelationNames(model: PolicyModel): void {
    const taken = new Map<string, { what: string; location: SourceLocation }>();
    for (const table of model.tables) taken.set(`${table.schema}.${table.name}`, { what: `the table ${table.schema}.${table.name}`, location: table.location });
    for (const table of model.tables) {
      const desired = desiredTable(model, table);
      // desiredTable keeps the declared indexes in order and may put the
      // tenant index it adds itself in front of them.
      const added = desired.indexes.length - table.indexes.length;
      desired.indexes.forEach((index, i) => {
        const declared = i >= added ? table.indexes[i - added] : undefined;
        const location = declared?.location ?? table.location;
        const key = `${index.schema}.${index.name}`;
        const previous = taken.get(key);
        if (previous) {
          this.report(
            location,
            `the index \`${index.name}\` of ${table.schema}.${table.name} (${index.columns.join(', ')}) has the name of ${previous.what} (${formatLocation(previous.location)})`,
            declared?.name !== undefined
              ? 'PostgreSQL keeps one relation per name in a schema: choose another `name`'
              : 'PostgreSQL keeps one relation per name in a schema: give this index a `name` of its own, or remove the duplicate',
          );
        } else taken.set(key, { what: `the index ${index.name} of ${table.schema}.${table.name}`, location });
      });
    }
  }
}

function tenantTable(schema: string, name: string, location: SourceLocation): TableDecl & { mode: 'tenant' } {
  return { mode: 'tenant', schema, name, location, commands: [...COMMANDS], indexes: [], policies: [] };
}

function describe(node: Node | null | undefined): string {
  if (node === null || node === undefined) return 'found nothing';
  if (isScalar(node)) return node.value === null ? 'found null' : `found ${typeof node.value} ${JSON.stringify(node.value)}`;
  if (isSeq(node)) return 'found a list';
  if (isMap(node)) return 'found a mapping';
  return 'found something else';
}

export function formatLocation(location: SourceLocation): string {
  return `${location.file}:${location.line}:${location.column}`;
}

/**
 * Measure what expanding every alias would add, without expanding anything:
 * the size of each mapping and list is computed once, an alias adds the size
 * of the value it names. The first alias that takes the total past
 * MAX_ALIAS_EXPANSION is the problem, as is an alias inside the value it
 * names (it would expand forever).
 */
function aliasExpansionProblem(doc: Document): { alias: Node; message: string; hint: string } | undefined {
  const sizes = new Map<unknown, number>();
  const open = new Set<unknown>();
  let added = 0;
  let problem: { alias: Node; message: string; hint: string } | undefined;
  const size = (node: unknown): number => {
    if (problem || node === null || node === undefined) return 0;
    if (isAlias(node)) {
      const target = node.resolve(doc);
      if (!target) return 0; // reported by resolveAliases
      if (open.has(target)) {
        problem = { alias: node, message: 'a YAML alias inside the value it names', hint: 'write the value out instead of the alias' };
        return 0;
      }
      const n = size(target);
      added += n;
      if (!problem && added > MAX_ALIAS_EXPANSION) {
        problem = {
          alias: node,
          message: `the YAML aliases of this file expand to more than ${MAX_ALIAS_EXPANSION} values`,
          hint: 'each alias copies the whole value it names, and aliases of aliases multiply: write the values out, or use fewer levels of aliases',
        };
      }
      return n;
    }
    if (isPair(node)) return size(node.key) + size(node.value);
    if (!isMap(node) && !isSeq(node)) return 1;
    const known = sizes.get(node);
    if (known !== undefined) return known;
    open.add(node);
    let n = 1;
    for (const item of node.items as unknown[]) n += size(item);
    open.delete(node);
    sizes.set(node, n);
    return n;
  };
  size(doc.contents);
  return problem;
}
