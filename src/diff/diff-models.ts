import { desiredTable, GENERATED_PREFIX, type DesiredTable } from '../compile/desired-state.js';
import { tableKey, type Command, type ExtraPolicy, type PolicyCommand, type PolicyModel, type TableDecl, type TenantTable } from '../policy/model.js';
import { allStatements, generatedPolicyStatements, noStatement, tableSqlDelta, type TableSqlDelta } from './change-sql.js';
import { judgePolicyChange } from '../rls/judge-policy-change.js';
import { comparePolicySets, type SetComparison } from '../rls/compare-policy-sets.js';
import type { PolicyShape } from '../rls/policy-semantics.js';
import { sortChanges, type ChangeClass, type ChangeKind, type ChangeObject, type PolicyChange } from './policy-change.js';

/**
 * Compare two policy models by meaning and class every change (docs/diff.md
 * has the full table). Pure: no I/O. Expressions are compared through the
 * PostgreSQL parser, which `loadPolicy` / `parsePolicy` have loaded; without
 * it every changed expression counts as a possible widening.
 *
 * The rule of thumb: widening when someone can read or write more than
 * before, narrowing when less, neutral when neither (indexes, renames that
 * keep the meaning, bookkeeping). When rlsctl cannot tell from the file alone
 * (an expression it cannot compare, a different tenant column or setting whose
 * values it cannot see), the change counts as widening: a reviewer must look.
 * A change that widens one thing and narrows another is widening.
 */
export function diffModels(base: PolicyModel, head: PolicyModel): PolicyChange[] {
  return sortChanges(new ModelDiff(base, head).run());
}

const isGenerated = (name: string) => name.startsWith(GENERATED_PREFIX);

/** Changes whose class is about who may read or write which rows of one table. */
const ACCESS_KINDS = new Set<ChangeKind>([
  'command',
  'policy-added',
  'policy-removed',
  'policy-renamed',
  'policy-as',
  'policy-for',
  'policy-to',
  'policy-using',
  'policy-check',
]);

const VERB: Record<Command, string> = { select: 'read', insert: 'insert', update: 'update', delete: 'delete' };

class ModelDiff {
  private readonly changes: PolicyChange[] = [];
  private readonly baseTables: Map<string, TableDecl>;
  private readonly headTables: Map<string, TableDecl>;

  constructor(
    private readonly base: PolicyModel,
    private readonly head: PolicyModel,
  ) {
    this.baseTables = new Map(base.tables.map((t) => [tableKey(t), t]));
    this.headTables = new Map(head.tables.map((t) => [tableKey(t), t]));
  }

  run(): PolicyChange[] {
    this.diffTenantSettings();
    this.diffSchemas();
    this.diffPartitions();
    this.diffRoles();
    for (const [key, baseTable] of this.baseTables) {
      const headTable = this.headTables.get(key);
      if (headTable) this.diffTable(baseTable, headTable);
      else this.tableRemoved(baseTable);
    }
    for (const [key, headTable] of this.headTables) {
      if (!this.baseTables.has(key)) this.tableAdded(headTable);
    }
    return this.changes;
  }

  private add(kind: ChangeKind, object: ChangeObject, change: string, klass: ChangeClass, message: string, sql: string[]): void {
    this.changes.push({ kind, object, change, class: klass, message, sql });
  }

  // ------------------------------------------------------------ file-wide

  /**
   * The SQL of a file-wide change alone: BASE's tables compiled with BASE's
   * settings, and again with only this one setting as in HEAD. Other changes
   * in the same diff do not leak into it.
   */
  private fileWideSql(changed: PolicyModel): string[] {
    const sql: string[] = [];
    for (const table of this.base.tables) {
      const delta = tableSqlDelta(desiredTable(this.base, table), desiredTable(changed, table));
      sql.push(...generatedPolicyStatements(delta, isGenerated));
    }
    return sql;
  }

  private diffTenantSettings(): void {
    const b = this.base.tenant;
    const h = this.head.tenant;
    this.diffMembership();
    if (b.setting !== h.setting) {
      this.add(
        'tenant-setting',
        { kind: 'policy_file', name: 'tenant.setting' },
        `tenant setting ${b.setting} -> ${h.setting}`,
        // Which rows an app role sees is now decided by whatever sets the new
        // setting (any role may SET a custom setting, and a role or database
        // default may already hold one): not visible from the file.
        'widening',
        `tenant tables now take the current tenant from ${h.setting} instead of ${b.setting}; whatever sets ${h.setting} now decides which rows each app role sees, which rlsctl cannot check, so this counts as widening`,
        this.fileWideSql({ ...this.base, tenant: { ...b, setting: h.setting } }),
      );
    }
    if (b.type !== h.type) {
      this.add(
        'tenant-type',
        { kind: 'policy_file', name: 'tenant.type' },
        `tenant type ${b.type} -> ${h.type}`,
        // uuid equality ignores letter case and accepts several spellings; text
        // compares bytes; integer and bigint differ past 2^31. Which rows match
        // depends on the stored values.
        'widening',
        `the current tenant is now compared as ${h.type} instead of ${b.type}; values may match differently than before, which rlsctl cannot tell from the file, so this counts as widening`,
        this.fileWideSql({ ...this.base, tenant: { ...b, type: h.type } }),
      );
    }
    const bClaim = b.claim?.join('.');
    const hClaim = h.claim?.join('.');
    if (bClaim !== hClaim) {
      this.add(
        'tenant-claim',
        { kind: 'policy_file', name: 'tenant.claim' },
        `tenant claim ${bClaim ?? '(none)'} -> ${hClaim ?? '(none)'}`,
        // Another claim is another value of the token: who can put what in it
        // (an identity provider's user-editable metadata, say) is not in the file.
        'widening',
        `tenant tables now take the current tenant from ${hClaim ? `the claim ${hClaim} of ${h.setting}` : h.setting} instead of ${bClaim ? `the claim ${bClaim}` : b.setting}; whoever can set that value now decides which rows each app role sees, which rlsctl cannot check, so this counts as widening`,
        this.fileWideSql({ ...this.base, tenant: { ...b, claim: h.claim } }),
      );
    }
    if ((this.base.engine ?? 'postgres') !== (this.head.engine ?? 'postgres')) {
      this.add(
        'engine',
        { kind: 'policy_file', name: 'engine' },
        `engine ${this.base.engine ?? 'postgres'} -> ${this.head.engine ?? 'postgres'}`,
        // The same lookup with or without the scalar sub-select: the same rows.
        'neutral',
        'the tenant lookup is written for the other engine (with or without a scalar sub-select); it reads the same tenant, so each tenant sees the same rows',
        this.fileWideSql({ ...this.base, engine: this.head.engine }),
      );
    }
    if (b.column !== h.column) {
      this.add(
        'tenant-column-default',
        { kind: 'policy_file', name: 'tenant.column' },
        `default tenant column ${b.column} -> ${h.column}`,
        // The default alone grants nothing; every tenant table whose effective
        // column moves is reported as its own (widening) change.
        'neutral',
        `tenant tables that name no column of their own now filter on ${h.column} instead of ${b.column}; each such table is listed as a change of its own`,
        [],
      );
    }
  }

  /**
   * tenant.membership added, removed or changed (table, columns, where the user comes from): which
   * tenants a user reads is now decided by another table or setting, which rlsctl cannot check.
   * Only an active tenant required where there was none (same membership otherwise) narrows.
   */
  private diffMembership(): void {
    const b = this.base.tenant.membership;
    const h = this.head.tenant.membership;
    if (JSON.stringify(b) === JSON.stringify(h)) return;
    const narrows = b && h && !b.activeTenant && h.activeTenant && JSON.stringify({ ...b, activeTenant: true }) === JSON.stringify(h);
    const describe = (m: typeof b) =>
      m
        ? `${m.schema}.${m.table} (${m.userColumn}, ${m.tenantColumn}), user from ${m.user.setting}${m.user.claim ? ` claim ${m.user.claim}` : ''}${m.activeTenant ? ', active tenant' : ''}`
        : 'none';
    this.add(
      'tenant-membership',
      { kind: 'policy_file', name: 'tenant.membership' },
      `tenant membership ${describe(b)} -> ${describe(h)}`,
      narrows ? 'narrowing' : 'widening',
      narrows
        ? 'a user now sees the rows of the one active tenant they act in, not of every tenant they are a member of'
        : 'which tenants a user reads is now decided by another membership table, column or user source, which rlsctl cannot check from the file, so this counts as widening',
      this.fileWideSql({ ...this.base, tenant: { ...this.base.tenant, membership: h } }),
    );
  }

  private diffSchemas(): void {
    for (const schema of this.head.schemas.filter((s) => !this.base.schemas.includes(s))) {
      this.add(
        'managed-schema',
        { kind: 'policy_file', name: `schemas.${schema}` },
        `managed schema ${schema} added`,
        'neutral',
        `audit now expects every table in schema ${schema} to be declared; access does not change by itself`,
        [],
      );
    }
    for (const schema of this.base.schemas.filter((s) => !this.head.schemas.includes(s))) {
      this.add(
        'managed-schema',
        { kind: 'policy_file', name: `schemas.${schema}` },
        `managed schema ${schema} removed`,
        'neutral',
        `audit no longer checks that every table in schema ${schema} is declared; its tables are listed as changes of their own`,
        [],
      );
    }
  }

  /** `partitions.protect_new`: the event trigger that protects partitions created later (src/compile/partition-trigger.ts). */
  private diffPartitions(): void {
    const before = this.base.partitions?.protectNew ?? false;
    const after = this.head.partitions?.protectNew ?? false;
    if (before === after) return;
    this.add(
      'partitions-protect-new',
      { kind: 'policy_file', name: 'partitions.protect_new' },
      `partitions.protect_new ${before} -> ${after}`,
      after ? 'narrowing' : 'widening',
      after
        ? "apply installs an event trigger that protects each partition created or attached later under a declared table at once: a query that names it sees only its tenant's rows"
        : 'apply drops the event trigger: a partition created or attached later is readable in full by a query that names it until the next apply',
      ['-- the event trigger statements depend on the live database: see rlsctl plan'],
    );
  }

  private diffRoles(): void {
    const { app: baseApp, bypass: baseBypass } = this.base.roles;
    const { app: headApp, bypass: headBypass } = this.head.roles;
    for (const role of headApp.filter((r) => !baseApp.includes(r))) {
      this.add(
        'app-role',
        { kind: 'role', name: role },
        'app role added',
        'widening',
        `${role} is now an app role: the generated policies admit it to its tenant's rows of every tenant table and to every row of every shared table`,
        this.fileWideSql({ ...this.base, roles: { ...this.base.roles, app: [...baseApp, role] } }),
      );
    }
    for (const role of baseApp.filter((r) => !headApp.includes(r))) {
      const app = baseApp.filter((r) => r !== role);
      // A model with no app role cannot be compiled meaningfully (TO needs a
      // role); the last app role going away only happens together with a new
      // one being added, whose SQL already shows the policies made again.
      const sql = app.length > 0 ? this.fileWideSql({ ...this.base, roles: { ...this.base.roles, app } }) : [];
      this.add(
        'app-role',
        { kind: 'role', name: role },
        'app role removed',
        'narrowing',
        `${role} is no longer an app role: the generated policies no longer admit it, so its queries on tenant and shared tables return no rows`,
        sql,
      );
    }
    // rlsctl grants no bypass; the list says which roles audit accepts as
    // bypassing RLS (superuser or BYPASSRLS) without a finding (RLS011).
    for (const role of headBypass.filter((r) => !baseBypass.includes(r))) {
      this.add(
        'bypass-role',
        { kind: 'role', name: role },
        'bypass role added',
        'widening',
        `${role} is now allowed to bypass row level security: it may read and write every tenant's rows without an audit finding`,
        [noStatement(`no statement: audit now accepts ${role} as superuser or BYPASSRLS`)],
      );
    }
    for (const role of baseBypass.filter((r) => !headBypass.includes(r))) {
      this.add(
        'bypass-role',
        { kind: 'role', name: role },
        'bypass role removed',
        'narrowing',
        `${role} is no longer allowed to bypass row level security: audit reports it (RLS011) if it still does`,
        [noStatement(`no statement: revoke it by hand if it still has it (ALTER ROLE ... NOBYPASSRLS)`)],
      );
    }
  }

  // --------------------------------------------------------------- tables

  private tableAdded(table: TableDecl): void {
    const label = tableKey(table);
    const delta = tableSqlDelta(undefined, desiredTable(this.head, table));
    const object = tableObject(table);
    switch (table.mode) {
      case 'tenant':
        // Not declared before: rlsctl left it as the grants made it. Now every
        // app role is limited to its tenant's rows.
        this.add(
          'table-added',
          object,
          'table added (tenant)',
          'narrowing',
          `${label} is newly declared tenant: each tenant will see and change only its own rows (rlsctl did not manage it before)`,
          allStatements(delta),
        );
        return;
      case 'shared':
        this.add(
          'table-added',
          object,
          'table added (shared)',
          'narrowing',
          `${label} is newly declared shared: app roles will read every row and write none (rlsctl did not manage it before)`,
          allStatements(delta),
        );
        return;
      case 'exempt':
        this.add('table-added', object, 'table added (exempt)', 'neutral', `${label} is newly declared exempt (${table.reason}); apply leaves it as it is`, [
          noStatement(`no statement: apply leaves exempt tables as they are`),
        ]);
        return;
    }
  }

  private tableRemoved(table: TableDecl): void {
    const label = tableKey(table);
    const object = tableObject(table);
    const none = [noStatement(`no statement: rlsctl no longer manages ${label}; its row level security and policies stay as they are until removed by hand`)];
    if (table.mode === 'exempt') {
      this.add(
        'table-removed',
        object,
        'table removed (exempt)',
        'neutral',
        `${label} was exempt and is no longer declared; rlsctl did not manage it before either`,
        none,
      );
      return;
    }
    // Nothing in the file protects the table any more; if it still exists, a
    // later change by hand or a migration can open it without a review here.
    this.add(
      'table-removed',
      object,
      `table removed (${table.mode})`,
      'widening',
      `${label} is no longer declared: rlsctl stops keeping it isolated, and nothing in the file protects its rows any more (expected only if the table was dropped from the database too)`,
      none,
    );
  }

  private diffTable(b: TableDecl, h: TableDecl): void {
    const baseDesired = desiredTable(this.base, b);
    const headDesired = desiredTable(this.head, h);
    const delta = tableSqlDelta(baseDesired, headDesired);
    if (b.mode !== h.mode) this.modeChanged(b, h);
    if (b.mode === 'exempt' && h.mode === 'exempt' && b.reason !== h.reason) {
      this.add('exempt-reason', tableObject(h), 'exempt reason changed', 'neutral', `${tableKey(h)} stays exempt; the reason now reads: ${h.reason}`, []);
    }
    const accessFrom = this.changes.length;
    if (b.mode === 'tenant' && h.mode === 'tenant') {
      this.diffTenantSource(b, h);
      this.diffCommands(b, h);
    }
    // Exempt tables carry no policies or indexes that apply manages; a table
    // that becomes exempt is covered by its mode change.
    if (b.mode !== 'exempt' && h.mode !== 'exempt') {
      this.diffPolicies(b, h, delta);
      if (b.mode === h.mode) this.settleAccess(accessFrom, comparePolicySets(baseDesired.policies, headDesired.policies));
      this.diffIndexes(baseDesired, headDesired, delta);
    }
  }

  /**
   * Each change was judged alone; the table's policies compared as a whole
   * (src/rls/compare-policy-sets.ts, which plan asks too) may show that
   * together they widen nothing: a permissive policy added next to one that
   * already admits those rows, a FOR ALL policy split into per-command ones.
   * Then no change of the table counts as widening. A tenant-source change is
   * left as it is: its effect depends on the data, not on the policies' shape.
   */
  private settleAccess(from: number, whole: SetComparison): void {
    const own = this.changes.slice(from).filter((c) => ACCESS_KINDS.has(c.kind));
    if (whole.verdict === 'widening') {
      if (own.length > 0 && !own.some((c) => c.class === 'widening')) {
        for (const c of own) {
          c.class = 'widening';
          c.message += `; taken with the table's other policies: ${whole.reasons.join('; ')}`;
        }
      }
      return;
    }
    for (const c of own) {
      const klass: ChangeClass = c.class === 'neutral' ? 'neutral' : whole.verdict;
      if (klass === c.class) continue;
      c.message +=
        whole.verdict === 'neutral'
          ? `; taken with the table's other policies, nobody can read or write more or fewer rows`
          : `; taken with the table's other policies, access only narrows`;
      c.class = klass;
    }
  }

  private modeChanged(b: TableDecl, h: TableDecl): void {
    const label = tableKey(h);
    const object = tableObject(h);
    const change = `mode ${b.mode} -> ${h.mode}`;
    // HEAD's declaration compiled with BASE's settings: the SQL of the mode
    // change, without that of file-wide changes in the same diff.
    const own = tableSqlDelta(desiredTable(this.base, b), desiredTable(this.base, h));
    const sql = [...generatedPolicyStatements(own, isGenerated), ...own.rls];
    const none = [
      noStatement(`no statement: apply leaves an exempt table as it is; the policies and row level security of ${label} stay until removed by hand`),
    ];
    if (h.mode === 'exempt') {
      const message =
        b.mode === 'tenant'
          ? `${label} is no longer isolated by tenant: every app role can read every tenant's rows`
          : `${label} is no longer managed as shared: nothing in the file keeps app roles from writing its rows any more`;
      this.add('mode', object, change, 'widening', message, none);
      return;
    }
    if (b.mode === 'exempt') {
      const message =
        h.mode === 'tenant'
          ? `${label} is now isolated by tenant: each tenant sees and changes only its own rows`
          : `${label} is now shared: app roles read every row and write none`;
      this.add('mode', object, change, 'narrowing', message, sql);
      return;
    }
    // tenant <-> shared. Reads: own rows <-> every row, the mode change.
    // Writes: a shared table admits none, so each write command of the tenant
    // side is a change of its own, in the other direction.
    if (h.mode === 'shared') {
      this.add('mode', object, change, 'widening', `${label} is now shared: every app role can read every tenant's rows`, sql);
      for (const command of (b as TenantTable).commands.filter((c) => c !== 'select')) {
        this.add(
          'command',
          object,
          `command ${command} no longer allowed`,
          'narrowing',
          `tenants may no longer ${VERB[command]} rows of ${label} (shared tables admit no writes)`,
          [],
        );
      }
    } else {
      this.add('mode', object, change, 'narrowing', `${label} is now isolated by tenant: each tenant sees only its own rows, not every row`, sql);
      for (const command of (h as TenantTable).commands.filter((c) => c !== 'select')) {
        this.add(
          'command',
          object,
          `command ${command} allowed`,
          'widening',
          `tenants may now ${VERB[command]} their own rows of ${label} (a shared table admitted no writes)`,
          [],
        );
      }
    }
  }

  /** Where the tenant of a row comes from: its own column, or the parent row (`via`). */
  private tenantSource(model: PolicyModel, t: TenantTable): string {
    if (t.via) {
      const pairs = t.via.columns.map((c, i) => `${c} = ${t.via!.parentSchema}.${t.via!.parentName}.${t.via!.references[i]}`);
      return `via ${t.via.parentSchema}.${t.via.parentName} (${pairs.join(', ')})`;
    }
    return `column ${t.column ?? model.tenant.column}`;
  }

  private diffTenantSource(b: TenantTable, h: TenantTable): void {
    const before = this.tenantSource(this.base, b);
    const after = this.tenantSource(this.head, h);
    if (before === after) return;
    const label = tableKey(h);
    // The SQL of this change alone: BASE's table with HEAD's tenant source.
    const moved: TenantTable = { ...b, column: h.via ? undefined : (h.column ?? this.head.tenant.column), via: h.via };
    const delta = tableSqlDelta(desiredTable(this.base, b), desiredTable(this.base, moved));
    this.add(
      'tenant-source',
      tableObject(h),
      `tenant ${before} -> ${after}`,
      // Different values decide now; whether they admit more rows depends on
      // the data, which the file does not show.
      'widening',
      `${label} now takes its tenant from ${after.replace(/^column /, 'the column ')} instead of ${before.replace(/^column /, 'the column ')}; whether that admits more rows depends on the data, which rlsctl cannot see, so this counts as widening`,
      generatedPolicyStatements(delta, isGenerated),
    );
  }

  private diffCommands(b: TenantTable, h: TenantTable): void {
    const label = tableKey(h);
    const moved: TenantTable = { ...b, commands: h.commands };
    const delta = tableSqlDelta(desiredTable(this.base, b), desiredTable(this.base, moved));
    const sql = generatedPolicyStatements(delta, isGenerated);
    for (const command of h.commands.filter((c) => !b.commands.includes(c))) {
      this.add('command', tableObject(h), `command ${command} allowed`, 'widening', `tenants may now ${VERB[command]} their own rows of ${label}`, sql);
    }
    for (const command of b.commands.filter((c) => !h.commands.includes(c))) {
      this.add('command', tableObject(h), `command ${command} no longer allowed`, 'narrowing', `tenants may no longer ${VERB[command]} rows of ${label}`, sql);
    }
  }

  // ------------------------------------------------- hand-written policies

  private diffPolicies(b: TableDecl, h: TableDecl, delta: TableSqlDelta): void {
    const baseByName = new Map(b.policies.map((p) => [p.name, p]));
    const headByName = new Map(h.policies.map((p) => [p.name, p]));
    const removed = b.policies.filter((p) => !headByName.has(p.name));
    const added = h.policies.filter((p) => !baseByName.has(p.name));
    const sqlOf = (...names: string[]) => names.flatMap((n) => delta.policies.get(n) ?? []);
    // A policy removed and another added with the same meaning is a rename.
    for (const old of [...removed]) {
      const twin = added.find((p) => samePolicyMeaning(old, p));
      if (!twin) continue;
      removed.splice(removed.indexOf(old), 1);
      added.splice(added.indexOf(twin), 1);
      this.add(
        'policy-renamed',
        policyObject(h, twin),
        `policy renamed ${old.name} -> ${twin.name}`,
        'neutral',
        `the policy ${old.name} on ${tableKey(h)} is now named ${twin.name}; what it admits is unchanged`,
        sqlOf(old.name, twin.name),
      );
    }
    for (const p of added) {
      const klass: ChangeClass = p.permissive ? 'widening' : 'narrowing';
      const what = p.permissive
        ? `now lets ${roleList(p.to)} ${commandWords(p.command)} rows of ${tableKey(h)} that it admits${this.guardNote(h, p.to)}`
        : `now limits ${roleList(p.to)} to the rows of ${tableKey(h)} that it admits, for ${commandWords(p.command)}`;
      this.add('policy-added', policyObject(h, p), `${asWord(p)} policy added`, klass, `the new ${asWord(p)} policy ${p.name} ${what}`, sqlOf(p.name));
    }
    for (const p of removed) {
      const klass: ChangeClass = p.permissive ? 'narrowing' : 'widening';
      const what = p.permissive
        ? `no longer lets ${roleList(p.to)} ${commandWords(p.command)} rows of ${tableKey(h)}`
        : `no longer limits what ${roleList(p.to)} can ${commandWords(p.command)} on ${tableKey(h)}`;
      this.add(
        'policy-removed',
        policyObject(h, p),
        `${asWord(p)} policy removed`,
        klass,
        `the ${asWord(p)} policy ${p.name} is gone: it ${what}`,
        sqlOf(p.name),
      );
    }
    for (const [name, old] of baseByName) {
      const now = headByName.get(name);
      if (now) this.diffPolicy(h, old, now, sqlOf(name));
    }
  }

  /** App roles stay inside their tenant on a tenant table whatever a permissive policy says: the restrictive guard. */
  private guardNote(table: TableDecl, roles: string[]): string {
    if (table.mode !== 'tenant' || roles.some((r) => !this.head.roles.app.includes(r))) return '';
    return ' (within their tenant: the restrictive tenant guard still applies)';
  }

  private diffPolicy(table: TableDecl, old: ExtraPolicy, now: ExtraPolicy, sql: string[]): void {
    const object = policyObject(table, now);
    const label = `the policy ${now.name} on ${tableKey(table)}`;
    // The class of every aspect comes from the row-security model (src/rls/), which plan asks too.
    for (const a of judgePolicyChange(shapeOf(old), shapeOf(now)).aspects) {
      switch (a.aspect) {
        case 'as':
          this.add(
            'policy-as',
            object,
            `as ${asWord(old)} -> ${asWord(now)}`,
            a.verdict,
            now.permissive
              ? `${label} no longer limits ${roleList(old.to)}; it now grants ${roleList(now.to)} the rows it admits`
              : `${label} no longer grants ${roleList(old.to)} any rows; it now limits ${roleList(now.to)} to the rows it admits`,
            sql,
          );
          break;
        case 'for':
          this.add(
            'policy-for',
            object,
            `for ${old.command} -> ${now.command}`,
            a.verdict,
            `${label} now applies to ${commandWords(now.command)} instead of ${commandWords(old.command)}${a.mixed ? ' (some commands gained, others lost: counted as widening)' : ''}`,
            sql,
          );
          break;
        case 'to':
          this.add(
            'policy-to',
            object,
            `to ${old.to.join(', ')} -> ${now.to.join(', ')}`,
            a.verdict,
            `${label} now applies to ${roleList(now.to)} instead of ${roleList(old.to)}${a.mixed ? ' (some roles gained, others lost: counted as widening)' : ''}`,
            sql,
          );
          break;
        case 'using':
        case 'check': {
          const e = a.expression!;
          this.add(
            a.aspect === 'using' ? 'policy-using' : 'policy-check',
            object,
            `${a.aspect} ${short(e.before)} -> ${short(e.after)}`,
            a.verdict,
            `the ${e.clause} of ${label.replace(/^the /, '')} changed${e.checkFollows ? ' (and WITH CHECK, which follows USING)' : ''}: ${e.effect}`,
            sql,
          );
          break;
        }
        case 'added':
        case 'removed':
          // Not produced for a policy present on both sides.
          break;
      }
    }
  }

  // -------------------------------------------------------------- indexes

  private diffIndexes(b: DesiredTable, h: DesiredTable, delta: TableSqlDelta): void {
    const label = `${h.schema}.${h.name}`;
    const baseByName = new Map(b.indexes.map((i) => [i.name, i]));
    const headByName = new Map(h.indexes.map((i) => [i.name, i]));
    const removed = b.indexes.filter((i) => !headByName.has(i.name));
    const added = h.indexes.filter((i) => !baseByName.has(i.name));
    const sqlOf = (...names: string[]) => names.flatMap((n) => delta.indexes.get(n) ?? []);
    const shape = (i: { columns: string[]; unique: boolean }) => `${i.unique ? 'unique ' : ''}(${i.columns.join(', ')})`;
    const object = (name: string): ChangeObject => ({ kind: 'index', schema: h.schema, table: h.name, name });
    for (const old of [...removed]) {
      const twin = added.find((i) => shape(i) === shape(old));
      if (!twin) continue;
      removed.splice(removed.indexOf(old), 1);
      added.splice(added.indexOf(twin), 1);
      this.add(
        'index-renamed',
        object(twin.name),
        `index renamed ${old.name} -> ${twin.name}`,
        'neutral',
        `the index ${shape(twin)} on ${label} is now named ${twin.name}`,
        sqlOf(old.name, twin.name),
      );
    }
    for (const i of added)
      this.add(
        'index-added',
        object(i.name),
        `index added ${shape(i)}`,
        'neutral',
        `${i.unique ? 'a unique index' : 'an index'} on ${label} (${i.columns.join(', ')}) is now declared`,
        sqlOf(i.name),
      );
    for (const i of removed)
      this.add(
        'index-removed',
        object(i.name),
        `index removed ${shape(i)}`,
        'neutral',
        `the ${i.unique ? 'unique ' : ''}index on ${label} (${i.columns.join(', ')}) is no longer declared`,
        sqlOf(i.name),
      );
    for (const [name, old] of baseByName) {
      const now = headByName.get(name);
      if (now && shape(now) !== shape(old)) {
        this.add(
          'index-changed',
          object(name),
          `index ${shape(old)} -> ${shape(now)}`,
          'neutral',
          `the index ${name} on ${label} is now ${shape(now)}`,
          sqlOf(name),
        );
      }
    }
  }
}

// ------------------------------------------------------------------ helpers

function tableObject(t: { schema: string; name: string }): ChangeObject {
  return { kind: 'table', schema: t.schema, name: t.name };
}

function policyObject(t: { schema: string; name: string }, p: ExtraPolicy): ChangeObject {
  return { kind: 'policy', schema: t.schema, table: t.name, name: p.name };
}

function asWord(p: ExtraPolicy): string {
  return p.permissive ? 'permissive' : 'restrictive';
}

function commandWords(command: PolicyCommand): string {
  return command === 'all' ? 'every command' : command;
}

function roleList(roles: string[]): string {
  return roles.join(', ');
}

/** A hand-written policy as the row-security model sees it. */
function shapeOf(p: ExtraPolicy): PolicyShape {
  return { permissive: p.permissive, command: p.command, roles: p.to, using: p.using, check: p.check };
}

function samePolicyMeaning(a: ExtraPolicy, b: ExtraPolicy): boolean {
  return judgePolicyChange(shapeOf(a), shapeOf(b)).aspects.length === 0;
}

/** An expression on one line, cut at 60 characters for the `change` field (the message and SQL carry it whole). */
function short(expression: string): string {
  const line = expression.replace(/\s+/g, ' ').trim();
  return line.length <= 60 ? line : `${line.slice(0, 59)}…`;
}
