import type { Command } from '../policy/model.js';
import { appliesToCommand, isPublicRole, type PolicyShape } from './policy-semantics.js';

/**
 * Who PostgreSQL's row security applies to: the one place rlsctl writes this
 * down (docs/architecture.md, "The row-security model"). audit, explain and
 * verify ask it; test/integration/row-security-subjects.test.ts holds every
 * verdict against what a real server does. The rules, in the order the server
 * checks them (check_enable_rls in src/backend/utils/misc/rls.c):
 *
 * - Only tables and partitioned tables have row security (relkind r and p):
 *   a materialized view or a foreign table cannot have it, and a view has
 *   none of its own: its tables are checked as the role the view runs as.
 * - A relation without ROW LEVEL SECURITY enabled: no policy applies to anyone.
 * - Superusers and BYPASSRLS roles bypass it. Both are attributes of the role
 *   itself: membership in such a role passes on neither (only SET ROLE does).
 * - The table owner bypasses it unless the table FORCEs row level security.
 *   "Owner" is PostgreSQL's ownership test, has_privs_of_role: the owning
 *   role, and every role that inherits its privileges through membership (a
 *   NOINHERIT member, or a grant WITH INHERIT FALSE, does not).
 * - Everyone else is subject to the policies; with `row_security = off` the
 *   query fails instead ("query would be affected by row-level security
 *   policy"), it never reads unfiltered rows.
 * - A subject role that no permissive policy admits for the command sees no
 *   row: with row level security enabled and no policy, that is everyone
 *   (default deny).
 * - A view without `security_invoker` (and every view before PostgreSQL 15)
 *   reads its tables as its owner: the owner's attributes, ownership and
 *   policies decide, not the caller's. With `security_invoker` the current
 *   user decides, also when the view is read through another view that runs
 *   as its owner: only the view that reads the table counts.
 * - A partition (or inheritance child) read directly is checked with its own
 *   flags, owner and policies; read through its parent, only the parent's
 *   count. The relation the query names is the one checked.
 *
 * Pure functions over small structural types, so any catalog row fits.
 */

/** The relation a query names (or a view reads): pg_class's flags. */
export interface SubjectRelation {
  /** pg_class.relkind: `r` and `p` have row security; `v`, `m`, `f` and the rest do not. */
  kind: string;
  /** The owning role's name. */
  owner: string;
  /** relrowsecurity: ENABLE ROW LEVEL SECURITY. */
  rowSecurity: boolean;
  /** relforcerowsecurity: FORCE ROW LEVEL SECURITY. */
  forceRowSecurity: boolean;
  /** A partition (relispartition); read directly, its own flags and policies count. */
  isPartition?: boolean;
  /** `schema.name`, for messages. */
  label?: string;
}

/** A role as far as row security asks about it. */
export interface SubjectRole {
  name: string;
  superuser: boolean;
  bypassRls: boolean;
  /**
   * Whether the role has the privileges of `other` (PostgreSQL's
   * has_privs_of_role: itself, or a role it inherits from through
   * membership). Without it, only the role itself.
   */
  hasPrivilegesOf?: (other: string) => boolean;
}

/** A view on the way from the query to the relation, outermost first. */
export interface SubjectView {
  /** The view's owner: its rights and policies apply unless the view is security_invoker. */
  owner: SubjectRole;
  /** reloptions security_invoker (see isSecurityInvoker); PostgreSQL before 15 ignores it. */
  securityInvoker: boolean;
  label?: string;
}

export interface RowSecurityInput {
  relation: SubjectRelation;
  /** The role that runs the query (current_user: the login role, or the one SET ROLE chose). */
  role: SubjectRole;
  /** The session's row_security; default on. */
  setting?: { rowSecurity: 'on' | 'off' | boolean | string };
  /** The views the query reads the relation through, outermost first. */
  via?: { views: readonly SubjectView[]; serverMajor: number };
  /** The relation's own policies and a command: says whether the role is admitted at all (default deny). */
  policies?: { list: readonly Pick<PolicyShape, 'permissive' | 'command' | 'roles'>[]; command: Command };
}

export type SubjectCode =
  /** The relation cannot have row security (a view's tables are checked instead): every row. */
  | 'no-row-security'
  /** Row level security is not enabled: every row. */
  | 'rls-disabled'
  | 'superuser'
  | 'bypassrls'
  /** The owning role, table not forced. */
  | 'owner'
  /** A role that inherits the owner's privileges, table not forced. */
  | 'owner-privileges'
  /** Policies apply (an owner counts here when the table forces RLS). */
  | 'subject'
  /** Subject, and no permissive policy admits the role for the command: no row. */
  | 'default-deny'
  /** Subject with row_security = off: the query fails. */
  | 'row-security-off';

export interface RowSecurityVerdict {
  /** Row security stands between the role and the rows (filtered, no row, or an error). */
  applies: boolean;
  /** The role is exempt from row security that the relation has (superuser, BYPASSRLS, owner). */
  bypass: boolean;
  /** What a read of the relation gets. */
  outcome: 'all-rows' | 'policies' | 'no-rows' | 'error';
  /** The role whose rights and policies count: the caller, or the owner of a view on the way. */
  role: SubjectRole;
  reason: { code: SubjectCode; message: string };
}

const TRUE_OPTION = /^security_invoker=(true|on|yes|1|t|y|tr|tru|ye)$/i;
const OFF_VALUES = new Set(['off', 'false', 'no', '0', 'f', 'n', 'of', 'fa', 'fal', 'fals']);

/** Whether reloptions (`name=value` strings) make a view security_invoker. */
export function isSecurityInvoker(options: readonly string[] | null | undefined): boolean {
  return (options ?? []).some((o) => TRUE_OPTION.test(o));
}

/** Whether a row_security value (a setting, ALTER ROLE ... SET) means off; PostgreSQL's boolean spellings. */
export function rowSecurityIsOff(value: string | boolean | undefined): boolean {
  if (value === undefined) return false;
  if (typeof value === 'boolean') return !value;
  return OFF_VALUES.has(value.trim().toLowerCase());
}

/** The relation kinds that can have row security: tables and partitioned tables. */
export function canHaveRowSecurity(kind: string): boolean {
  return kind === 'r' || kind === 'p';
}

/** A role's own attribute that bypasses row security everywhere, if any. */
export function attributeBypass(role: Pick<SubjectRole, 'superuser' | 'bypassRls'> | undefined): 'superuser' | 'BYPASSRLS' | undefined {
  if (!role) return undefined;
  if (role.superuser) return 'superuser';
  if (role.bypassRls) return 'BYPASSRLS';
  return undefined;
}

/** PostgreSQL's ownership test: the owning role, or one that inherits its privileges (superusers pass every such test). */
export function actsAsOwner(role: SubjectRole, owner: string): boolean {
  if (role.name === owner || role.superuser) return true;
  return role.hasPrivilegesOf?.(owner) ?? false;
}

/**
 * The role whose rights a relation read through `views` (outermost first) is
 * checked with: the view that reads it decides. A view that runs as its owner
 * gives its owner; a security_invoker view (PostgreSQL 15+) gives the current
 * user, also when it sits inside a view that runs as its owner (the CREATE
 * VIEW page of the PostgreSQL manual says so, and the server does it).
 */
export function effectiveRole(caller: SubjectRole, via?: RowSecurityInput['via']): SubjectRole {
  const reader = readingView(via);
  return reader ? reader.owner : caller;
}

/** The view whose owner reads the relation, if one does: the innermost view, unless it is security_invoker. */
function readingView(via: RowSecurityInput['via']): SubjectView | undefined {
  const views = via?.views ?? [];
  const inner = views[views.length - 1];
  if (!inner || (inner.securityInvoker && via!.serverMajor >= 15)) return undefined;
  return inner;
}

/** Whether a policy names `role` (PUBLIC, the role, or a role whose privileges it has). */
export function policyNamesRole(policy: Pick<PolicyShape, 'roles'>, role: SubjectRole): boolean {
  return policy.roles.some((r) => isPublicRole(r) || r === role.name || (role.hasPrivilegesOf?.(r) ?? false));
}

/**
 * What row security does to `role` reading `relation` (through `via`'s views,
 * with `setting`), and why.
 */
export function rowSecurityFor(input: RowSecurityInput): RowSecurityVerdict {
  const { relation } = input;
  const role = effectiveRole(input.role, input.via);
  const rel = relation.label ?? 'the relation';
  const reader = readingView(input.via);
  const who = reader ? `${role.name} (the owner of the view ${reader.label ?? 'it is read through'}, which reads it as its owner)` : role.name;
  const verdict = (outcome: RowSecurityVerdict['outcome'], bypass: boolean, code: SubjectCode, message: string): RowSecurityVerdict => ({
    applies: outcome !== 'all-rows',
    bypass,
    outcome,
    role,
    reason: { code, message },
  });

  if (!canHaveRowSecurity(relation.kind)) return verdict('all-rows', false, 'no-row-security', `${rel} cannot have row level security`);
  if (!relation.rowSecurity) return verdict('all-rows', false, 'rls-disabled', `row level security is not enabled on ${rel}`);
  const attr = attributeBypass(role);
  if (attr === 'superuser') return verdict('all-rows', true, 'superuser', `${who} is a superuser`);
  if (attr === 'BYPASSRLS') return verdict('all-rows', true, 'bypassrls', `${who} has BYPASSRLS`);
  if (!relation.forceRowSecurity && actsAsOwner(role, relation.owner)) {
    return role.name === relation.owner
      ? verdict('all-rows', true, 'owner', `${who} owns ${rel}, which does not force row level security`)
      : verdict(
          'all-rows',
          true,
          'owner-privileges',
          `${who} has the privileges of ${relation.owner}, the owner of ${rel}, which does not force row level security`,
        );
  }
  if (rowSecurityIsOff(input.setting?.rowSecurity)) {
    return verdict('error', false, 'row-security-off', `${who} is subject to the policies of ${rel} and row_security is off: the query fails`);
  }
  if (input.policies) {
    const { list, command } = input.policies;
    const admitted = list.some((p) => p.permissive && appliesToCommand(p.command, command) && policyNamesRole(p, role));
    if (!admitted) {
      return verdict(
        'no-rows',
        false,
        'default-deny',
        `no permissive policy of ${rel} admits ${who} for ${command.toUpperCase()}: it ${command === 'insert' ? 'inserts' : 'sees'} no row`,
      );
    }
  }
  return verdict('policies', false, 'subject', `the policies of ${rel} apply to ${who}`);
}
