import { isMap, type Node, type Pair, type YAMLMap } from 'yaml';
import type { SourceLocation } from '../errors.js';
import type { Membership, TableDecl, TenantType } from './model.js';

/**
 * `tenant.membership` of the policy file (docs/policy-file.md, "Memberships"):
 *
 *     membership:
 *       table: app.memberships
 *       user_column: user_id
 *       tenant_column: org_id
 *       user: { setting: app.user_id, type: uuid }   # or { setting: request.jwt.claims, claim: sub, type: uuid }
 *
 * Read with the validator's own helpers (src/policy/validate-policy.ts), so that every problem has
 * its file:line:col and hint like the rest of the file.
 */
export interface MembershipValidator {
  entries(map: YAMLMap, allowed: readonly string[], where: string): Map<string, Pair>;
  string(pair: Pair, what: string): string | undefined;
  identifier(name: string, location: SourceLocation, what: string): boolean;
  settingName(pair: Pair, what: string): string | undefined;
  tenantType(pair: Pair, what: string): TenantType | undefined;
  report(location: SourceLocation, message: string, hint?: string): void;
  valueLocation(pair: Pair): SourceLocation;
  keyLocation(pair: Pair): SourceLocation;
  at(node: Node | null | undefined): SourceLocation;
}

const MEMBERSHIP_KEYS = ['table', 'user_column', 'tenant_column', 'user'] as const;
const USER_KEYS = ['setting', 'claim', 'type'] as const;
/** A claim path: JSON keys of letters, digits, `_` and `-`, joined by dots (`app_metadata.org_id`). */
const CLAIM_PATH = /^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$/;

export function readMembership(v: MembershipValidator, pair: Pair, activeTenant: boolean): Membership | undefined {
  const node = pair.value as Node | null;
  if (!isMap(node)) {
    v.report(
      v.valueLocation(pair),
      '`tenant.membership` must be a mapping (table, user_column, tenant_column, user)',
      'see docs/policy-file.md, "Memberships"',
    );
    return undefined;
  }
  const keys = v.entries(node, MEMBERSHIP_KEYS, '`tenant.membership`');
  for (const key of MEMBERSHIP_KEYS) {
    if (!keys.has(key)) v.report(v.at(node), `\`tenant.membership\` has no \`${key}\``, MISSING_HINT[key]);
  }
  const tablePair = keys.get('table');
  const table = tablePair ? qualifiedTable(v, tablePair) : undefined;
  const column = (key: 'user_column' | 'tenant_column') => {
    const p = keys.get(key);
    const c = p ? v.string(p, `\`tenant.membership.${key}\``) : undefined;
    return c !== undefined && v.identifier(c, v.valueLocation(p!), `the membership column`) ? c : undefined;
  };
  const userColumn = column('user_column');
  const tenantColumn = column('tenant_column');
  const userPair = keys.get('user');
  const user = userPair ? readUser(v, userPair) : undefined;
  if (!table || userColumn === undefined || tenantColumn === undefined || !user) return undefined;
  return { schema: table.schema, table: table.name, userColumn, tenantColumn, user, activeTenant };
}

const MISSING_HINT: Record<(typeof MEMBERSHIP_KEYS)[number], string> = {
  table: 'name the membership table with its schema: `table: app.memberships`',
  user_column: 'name the column of the membership table that holds the user: `user_column: user_id`',
  tenant_column: 'name the column of the membership table that holds the tenant: `tenant_column: org_id`',
  user: 'say where the user comes from: `user: { setting: app.user_id, type: uuid }`',
};

function qualifiedTable(v: MembershipValidator, pair: Pair): { schema: string; name: string } | undefined {
  const text = v.string(pair, '`tenant.membership.table`');
  if (text === undefined) return undefined;
  const dot = text.indexOf('.');
  if (dot <= 0 || dot === text.length - 1) {
    v.report(v.valueLocation(pair), `the membership table \`${text}\` names no schema`, `write it as schema.table, e.g. \`app.${text.replace(/\./g, '')}\``);
    return undefined;
  }
  const schema = text.slice(0, dot);
  const name = text.slice(dot + 1);
  const where = v.valueLocation(pair);
  if (!v.identifier(schema, where, 'the membership schema') || !v.identifier(name, where, 'the membership table')) return undefined;
  return { schema, name };
}

function readUser(v: MembershipValidator, pair: Pair): Membership['user'] | undefined {
  const node = pair.value as Node | null;
  if (!isMap(node)) {
    v.report(
      v.valueLocation(pair),
      '`tenant.membership.user` must be a mapping: { setting, type } or { setting, claim, type }',
      'e.g. `user: { setting: app.user_id, type: uuid }`',
    );
    return undefined;
  }
  const keys = v.entries(node, USER_KEYS, '`tenant.membership.user`');
  const settingPair = keys.get('setting');
  if (!settingPair) v.report(v.at(node), '`tenant.membership.user` has no `setting`', 'name the custom setting that holds the user: `setting: app.user_id`');
  const setting = settingPair ? v.settingName(settingPair, '`tenant.membership.user.setting`') : undefined;
  const typePair = keys.get('type');
  const type = typePair ? v.tenantType(typePair, '`tenant.membership.user.type`') : 'uuid';
  const claimPair = keys.get('claim');
  let claim: string | undefined;
  let claimOk = true;
  if (claimPair) {
    claim = v.string(claimPair, '`tenant.membership.user.claim`');
    if (claim !== undefined && !CLAIM_PATH.test(claim)) {
      v.report(
        v.valueLocation(claimPair),
        `the claim path \`${claim}\` is not a dotted path of JSON keys`,
        'write the keys of letters, digits, `_` and `-` joined by dots, e.g. `sub` or `app_metadata.user_id`',
      );
      claim = undefined;
    }
    claimOk = claim !== undefined;
  }
  if (setting === undefined || type === undefined || !claimOk) return undefined;
  return claim === undefined ? { setting, type } : { setting, type, claim };
}

/**
 * Across the file: the membership lookup reads the membership table as the function's owner
 * (src/compile/membership.ts). A tenant or shared table gets FORCE ROW LEVEL SECURITY and
 * policies for the app roles only, under which its owner reads no row: every user would be
 * a member of nothing. And the user must not come from the active tenant's own setting.
 */
export function checkMembershipTable(
  v: MembershipValidator,
  tenant: { setting: string; claim?: readonly string[]; membership?: Membership },
  tables: Map<string, TableDecl>,
  at: SourceLocation,
): void {
  const m = tenant.membership;
  if (!m) return;
  const declared = tables.get(`${m.schema}.${m.table}`);
  if (declared && declared.mode !== 'exempt') {
    v.report(
      declared.location,
      `the membership table ${m.schema}.${m.table} is declared ${declared.mode}: rlsctl would force row level security on it, and its lookup function, which reads it as the table's owner, would find no membership`,
      'declare it `exempt` with a reason (e.g. `{ mode: exempt, reason: membership lookup }`); protect it with row level security that is enabled but not forced, if at all (see docs/policy-file.md, "Memberships")',
    );
  }
  // Two claims may share one JSON setting (request.jwt.claims: `sub` and `app_metadata.org_id`).
  if (m.activeTenant && m.user.setting === tenant.setting && (m.user.claim === undefined || tenant.claim === undefined)) {
    v.report(
      at,
      `\`tenant.setting\` and \`tenant.membership.user.setting\` are both \`${tenant.setting}\`: one setting cannot hold the user and the active tenant`,
      'name two settings, e.g. `app.user_id` for the user and `app.tenant_id` for the active tenant',
    );
  }
}
