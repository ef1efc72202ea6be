import { appliesToCommand, clauseExpression, clausesOf } from '../rls/policy-semantics.js';
import {
  attributeBypass,
  isSecurityInvoker,
  policyNamesRole,
  rowSecurityFor,
  type RowSecurityVerdict,
  type SubjectRelation,
  type SubjectRole,
  type SubjectView,
} from '../rls/row-security-subjects.js';
import type { TenantFacts } from '../facts/resolve-facts.js';
import type { Plan } from '../plan/plan.js';
import { qualify } from '../compile/quote.js';
import type { Finding, FindingFix, FindingObject, RuleMeta } from '../report/finding.js';
import { fingerprintOf } from '../report/finding.js';
import type { ColumnRow, IndexRow, MembershipRow, PolicyRow, RelationRow, RoleRow, PolicyCommandCode } from '../catalog/catalog-rows.js';
import type { AuditCatalog } from './catalog.js';
import { ExpressionAnalyzer, type ExpressionFacts } from './analyze-expression.js';
import { analyzeHelpers, type Helpers } from './tenant-sources.js';

/**
 * The catalog, indexed for the rules: every lookup a rule makes per table is
 * a Map access, never a scan of another list, so the whole audit grows
 * linearly with the catalog (bench/audit.mjs measures it).
 */

export type ProtectedMode = 'tenant' | 'shared';

export interface ProtectedTable {
  rel: RelationRow;
  mode: ProtectedMode;
  /** The tenant column, for tenant tables that carry one. */
  column?: ColumnRow;
  /** The tenant column's name as the facts say it (even when the table lacks it). */
  columnName?: string;
  via?: { parentSchema: string; parentName: string; columns: string[]; references: string[] };
}

/** The slice of a plan (src/plan/build-plan.ts, the planner `apply` uses) that RLS005 and RLS006 read. */
export type PlanFacts = Pick<Plan, 'drift' | 'undeclaredTables' | 'statements'>;

export interface PolicyClause {
  clause: 'USING' | 'WITH CHECK';
  text: string;
  facts: ExpressionFacts;
}

export type WriteCommand = 'select' | 'insert' | 'update' | 'delete';
export const WRITE_COMMANDS: WriteCommand[] = ['select', 'insert', 'update', 'delete'];

export class AuditContext {
  readonly facts: TenantFacts;
  readonly catalog: AuditCatalog;
  readonly serverVersionNum: number;
  readonly plan?: PlanFacts;
  /** The SQL helpers of the database, read through their bodies: where policies take the tenant from. */
  readonly helpers: Helpers;
  readonly expressions: ExpressionAnalyzer;

  readonly relations = new Map<string, RelationRow>();
  readonly relationsByKey = new Map<string, RelationRow>();
  readonly children = new Map<string, RelationRow[]>();
  readonly columns = new Map<string, Map<string, ColumnRow>>();
  readonly policies = new Map<string, PolicyRow[]>();
  readonly indexes = new Map<string, IndexRow[]>();
  readonly roles = new Map<string, RoleRow>();
  /** member → role → how. */
  readonly memberships = new Map<string, Map<string, MembershipRow>>();
  /** Declared or inferred tenant and shared tables (never partitions), by oid. */
  readonly protectedTables = new Map<string, ProtectedTable>();
  /** Partitions (at any depth) of protected tables → the protected root. */
  readonly protectedPartitions = new Map<string, ProtectedTable>();
  readonly exempt = new Map<string, string>();
  readonly scopeSchemas: Set<string>;
  /** App roles that exist in the database. */
  readonly appRoles: string[];
  readonly appRoleSet: Set<string>;
  readonly bypassRoles: Set<string>;

  constructor(facts: TenantFacts, catalog: AuditCatalog, options: { serverVersionNum?: number; plan?: PlanFacts } = {}) {
    this.facts = facts;
    this.catalog = catalog;
    this.serverVersionNum = options.serverVersionNum ?? catalog.server.versionNum;
    this.plan = options.plan;
    this.scopeSchemas = new Set(facts.schemas);
    this.helpers = analyzeHelpers(catalog.sqlFunctions ?? []);
    this.expressions = new ExpressionAnalyzer(this.helpers);
    for (const r of catalog.relations) {
      this.relations.set(r.oid, r);
      this.relationsByKey.set(`${r.schema}.${r.name}`, r);
      if (r.parentOid) push(this.children, r.parentOid, r);
    }
    for (const c of catalog.columns) {
      let m = this.columns.get(c.relOid);
      if (!m) this.columns.set(c.relOid, (m = new Map()));
      m.set(c.name, c);
    }
    for (const p of catalog.policies) push(this.policies, p.relOid, p);
    for (const i of catalog.indexes) push(this.indexes, i.relOid, i);
    for (const r of catalog.roles) this.roles.set(r.name, r);
    for (const m of catalog.memberships) {
      let inner = this.memberships.get(m.member);
      if (!inner) this.memberships.set(m.member, (inner = new Map()));
      inner.set(m.role, m);
    }
    this.appRoles = facts.appRoles.filter((r) => this.roles.has(r));
    this.appRoleSet = new Set(this.appRoles);
    this.bypassRoles = new Set(facts.bypassRoles);

    for (const t of facts.tenantTables) {
      const rel = this.relationsByKey.get(`${t.schema}.${t.name}`);
      if (!rel || rel.isPartition) continue;
      this.protectedTables.set(rel.oid, {
        rel,
        mode: 'tenant',
        column: t.column ? this.column(rel.oid, t.column) : undefined,
        columnName: t.column,
        via: t.via,
      });
    }
    for (const t of facts.sharedTables) {
      const rel = this.relationsByKey.get(`${t.schema}.${t.name}`);
      if (rel && !rel.isPartition) this.protectedTables.set(rel.oid, { rel, mode: 'shared' });
    }
    for (const t of facts.exemptTables) {
      const rel = this.relationsByKey.get(`${t.schema}.${t.name}`);
      if (rel) this.exempt.set(rel.oid, t.reason);
    }
    const mark = (oid: string, root: ProtectedTable) => {
      for (const child of this.children.get(oid) ?? []) {
        if (this.protectedPartitions.has(child.oid)) continue;
        this.protectedPartitions.set(child.oid, root);
        mark(child.oid, root);
      }
    };
    for (const t of this.protectedTables.values()) mark(t.rel.oid, t);
  }

  column(relOid: string, name: string): ColumnRow | undefined {
    return this.columns.get(relOid)?.get(name);
  }

  policiesOf(relOid: string): PolicyRow[] {
    return this.policies.get(relOid) ?? [];
  }

  indexesOf(relOid: string): IndexRow[] {
    return this.indexes.get(relOid) ?? [];
  }

  /** using text → check text → clauses: the copies of a policy on many partitions share one array. */
  private readonly clauseCache = new Map<string | undefined, Map<string | undefined, PolicyClause[]>>();

  /**
   * Both clauses of a policy, analysed; computed once per distinct pair of
   * texts (several rules ask, and the partitions' copies of a policy share
   * their texts). The array is shared: callers read it, never change it.
   */
  policyClauses(policy: PolicyRow): PolicyClause[] {
    let byCheck = this.clauseCache.get(policy.using);
    if (!byCheck) this.clauseCache.set(policy.using, (byCheck = new Map()));
    let out = byCheck.get(policy.check);
    if (!out) {
      out = [];
      if (policy.using !== undefined) out.push({ clause: 'USING', text: policy.using, facts: this.expressions.analyze(policy.using) });
      if (policy.check !== undefined) out.push({ clause: 'WITH CHECK', text: policy.check, facts: this.expressions.analyze(policy.check) });
      byCheck.set(policy.check, out);
    }
    return out;
  }

  analyze(text: string | undefined): ExpressionFacts | undefined {
    return text === undefined ? undefined : this.expressions.analyze(text);
  }

  /** Tenant tables (with a column or `via`), in catalog order. */
  tenantTables(): ProtectedTable[] {
    return [...this.protectedTables.values()].filter((t) => t.mode === 'tenant');
  }

  /** The server's major version (14, 18), from serverVersionNum. */
  get serverMajor(): number {
    return Math.floor(this.serverVersionNum / 10000);
  }

  isTable(rel: RelationRow): boolean {
    return rel.kind === 'r' || rel.kind === 'p';
  }

  /** A role's own attributes make it bypass RLS: superuser or BYPASSRLS (src/rls/row-security-subjects.ts). */
  bypassesByAttribute(role: string): 'superuser' | 'BYPASSRLS' | undefined {
    return attributeBypass(this.roles.get(role));
  }

  private readonly subjects = new Map<string, SubjectRole>();

  /** A role as the row-security model reads it; a role the catalog lacks has no attribute and only its own privileges. */
  subjectRole(name: string): SubjectRole {
    let role = this.subjects.get(name);
    if (!role) {
      const r = this.roles.get(name);
      role = { name, superuser: r?.superuser ?? false, bypassRls: r?.bypassRls ?? false, hasPrivilegesOf: (other) => this.hasPrivsOf(name, other) };
      this.subjects.set(name, role);
    }
    return role;
  }

  subjectRelation(rel: RelationRow): SubjectRelation {
    return { kind: rel.kind, owner: rel.owner, rowSecurity: rel.rls, forceRowSecurity: rel.force, isPartition: rel.isPartition, label: this.label(rel) };
  }

  subjectView(view: RelationRow): SubjectView {
    return { owner: this.subjectRole(view.owner), securityInvoker: isSecurityInvoker(view.options), label: this.label(view) };
  }

  /** What row security does to `role` reading `rel` (by name, or through `views`, outermost first): src/rls/row-security-subjects.ts. */
  rowSecurity(role: string, rel: RelationRow, views: RelationRow[] = []): RowSecurityVerdict {
    return rowSecurityFor({
      relation: this.subjectRelation(rel),
      role: this.subjectRole(role),
      via: views.length > 0 ? { views: views.map((v) => this.subjectView(v)), serverMajor: this.serverMajor } : undefined,
    });
  }

  /** Roles that `member` may SET ROLE to (not itself). */
  settableRoles(member: string): MembershipRow[] {
    return [...(this.memberships.get(member)?.values() ?? [])].filter((m) => m.canSet);
  }

  /** `member` is `role`, or has its privileges (the owner test of RLS, has_privs_of_role). */
  hasPrivsOf(member: string, role: string): boolean {
    if (member === role) return true;
    if (this.roles.get(member)?.superuser) return true;
    return this.memberships.get(member)?.get(role)?.inherits ?? false;
  }

  /**
   * Does `policy` apply to `role`? Policies apply to the roles they name, to
   * every role for PUBLIC, and to the members that have the privileges of a
   * named role.
   */
  policyAppliesTo(policy: PolicyRow, role: string): boolean {
    return policyNamesRole(policy, this.subjectRole(role));
  }

  /** The table-like object of a relation, for findings. */
  objectOf(rel: RelationRow): FindingObject {
    const kind =
      rel.kind === 'v' ? 'view' : rel.kind === 'm' ? 'materialized_view' : rel.kind === 'f' ? 'foreign_table' : rel.isPartition ? 'partition' : 'table';
    return { kind, schema: rel.schema, name: rel.name };
  }

  sql(rel: RelationRow): string {
    return qualify(rel.schema, rel.name);
  }

  label(rel: RelationRow): string {
    return `${rel.schema}.${rel.name}`;
  }

  /** Does the (restrictive) policy hold the tenant check for this table? */
  checksTenant(table: ProtectedTable, expression: string | undefined): boolean {
    const facts = this.analyze(expression);
    if (!facts || facts.unparsable || facts.alwaysTrue) return false;
    if (table.via) return facts.hasSubquery || table.via.columns.some((c) => facts.columns.has(c));
    // The column of the row, outside a sub-query or inside one (a correlated `m.org_id = items.org_id`).
    const name = table.columnName;
    return name !== undefined && (facts.columns.has(name) || (facts.outerColumns.get(table.rel.name)?.has(name) ?? false));
  }

  /** A restrictive policy that checks the tenant covers this role and command (reads: USING; writes: WITH CHECK). */
  restrictiveTenantGuard(table: ProtectedTable, role: string, command: WriteCommand, clause: 'using' | 'check'): PolicyRow | undefined {
    return this.policiesOf(table.rel.oid).find(
      (p) => !p.permissive && coversCommand(p.command, command) && this.policyAppliesTo(p, role) && this.checksTenant(table, effectiveExpression(p, clause)),
    );
  }
}

/** Whether a policy for `policyCommand` applies to `command` (src/rls/policy-semantics.ts). */
export const coversCommand: (policyCommand: PolicyCommandCode, command: WriteCommand) => boolean = appliesToCommand;

/** The expression PostgreSQL applies for a clause of a policy (src/rls/policy-semantics.ts). */
export function effectiveExpression(policy: PolicyRow, clause: 'using' | 'check'): string | undefined {
  return clauseExpression(policy, clause);
}

export { clausesOf };

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/**
 * Build a finding of `rule` about `object`; the fingerprint is `RULE:schema.object[:detail]`.
 * `fix` is the fix as data (src/audit/fix.ts builds it); `help`, the human text,
 * is its SQL (or its note). A plain string is help text rlsctl has not proven
 * as SQL: the finding's fix is then not runnable, with that text as its note.
 */
export function findingOf(rule: RuleMeta, object: FindingObject, message: string, fix?: string | FindingFix, detail?: string): Finding {
  const f: Finding = { rule: rule.code, name: rule.name, severity: rule.severity, message, object, fingerprint: fingerprintOf(rule.code, object, detail) };
  if (typeof fix === 'string') {
    f.help = fix;
    f.fix = { sql: null, runnable: false, note: fix };
  } else if (fix) {
    const help = fix.sql !== null ? (fix.note ? `${fix.sql}\n${commentLines(fix.note)}` : fix.sql) : fix.note;
    if (help !== undefined) f.help = help;
    f.fix = fix;
  } else {
    f.fix = { sql: null, runnable: false, note: rule.remediation };
  }
  return f;
}

/** Text as `--` comment lines: every line of it, so that a line break in a name cannot end the comment. */
export function commentLines(text: string): string {
  return text
    .split(/\r\n|\r|\n/)
    .map((l) => `-- ${l}`)
    .join('\n');
}
