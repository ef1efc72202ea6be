import type pg from 'pg';
import { DatabaseError } from '../errors.js';
import { settingValueFor } from '../compile/tenant-lookup.js';
import { qualify, quoteIdent, quoteLiteral } from '../compile/quote.js';
import type { Membership, PolicyModel, TenantType } from '../policy/model.js';

/**
 * verify for a policy file with `tenant.membership` (docs/verify.md, "Memberships"). Acting "as
 * tenant T" means acting as a user who is a member of T alone (and, with `tenant.setting`, acts in
 * T): inside verify's rolled-back transaction each tenant gets a synthetic user with that one
 * membership. Two more identities are probed on every tenant table, where any row they read is a
 * leak: a user with no membership at all, and (with `tenant.setting`) the first tenant's member
 * acting in the second tenant, of which they are not a member.
 */

/** The identities beyond the tenants: their key (what ProbeSession.as gets) and how findings name them. */
export interface Stranger {
  key: string;
  description: string;
}

export interface MembershipProbes {
  /** The settings to set for a tenant (or a stranger's key). */
  identity(key: string): Array<[setting: string, value: string]>;
  strangers: Stranger[];
}

/** A synthetic user: not a value an application would hand out (the same rule as the synthetic tenants). */
function syntheticUser(type: TenantType, i: number): string {
  switch (type) {
    case 'uuid':
      return `ffffffff-ffff-4fff-bfff-${(0xfffffffff000 + i).toString(16)}`;
    case 'bigint':
    case 'integer':
      return String(2147483000 + i);
    case 'text':
      return `rlsctl-verify-user-${i}`;
  }
}

/** A claims document holding `value` at the dotted `path`, merged into `into` (both claims may share a setting). */
function withClaim(into: Record<string, unknown>, path: readonly string[], value: string): Record<string, unknown> {
  const [head, ...rest] = path;
  const inner = into[head];
  return {
    ...into,
    [head]: rest.length === 0 ? value : withClaim(typeof inner === 'object' && inner !== null ? (inner as Record<string, unknown>) : {}, rest, value),
  };
}

/**
 * The settings for a user acting in a tenant: the user (or a claims JSON holding it at its claim
 * path) and the active tenant (or the claims JSON of `tenant.claim`, src/compile/tenant-lookup.ts);
 * one JSON document when both claims live in the same setting.
 */
function memberSettings(model: PolicyModel, m: Membership, user: string, tenant: string | undefined): Array<[string, string]> {
  const claimOfTenant = model.tenant.claim;
  if (m.user.claim !== undefined && tenant !== undefined && claimOfTenant && m.user.setting === model.tenant.setting) {
    const doc = withClaim(withClaim({}, m.user.claim.split('.'), user), claimOfTenant, tenant);
    return [[m.user.setting, JSON.stringify(doc)]];
  }
  const userValue = m.user.claim === undefined ? user : JSON.stringify(withClaim({}, m.user.claim.split('.'), user));
  return [
    [m.user.setting, userValue],
    ...(tenant === undefined ? [] : [[model.tenant.setting, settingValueFor({ claim: claimOfTenant }, tenant)] as [string, string]]),
  ];
}

/**
 * Write the memberships of the synthetic users (one per tenant, none for the stranger) as the
 * connecting role, inside verify's transaction, and say which settings stand for which identity.
 */
export async function seedMemberships(client: pg.ClientBase, model: PolicyModel, tenants: string[]): Promise<MembershipProbes> {
  const m = model.tenant.membership!;
  const users = tenants.map((_, i) => syntheticUser(m.user.type, i));
  const nobody = syntheticUser(m.user.type, tenants.length);
  const table = qualify(m.schema, m.table);
  const uc = quoteIdent(m.userColumn);
  const tc = quoteIdent(m.tenantColumn);
  const lit = (value: string, type: string) => `${quoteLiteral(value)}::${type}`;
  const sql = [
    `SAVEPOINT rlsctl_members`,
    `DELETE FROM ${table} WHERE ${uc} IN (${[...users, nobody].map((u) => lit(u, m.user.type)).join(', ')})`,
    `INSERT INTO ${table} (${uc}, ${tc}) VALUES ${tenants.map((t, i) => `(${lit(users[i], m.user.type)}, ${lit(t, model.tenant.type)})`).join(', ')}`,
    `RELEASE SAVEPOINT rlsctl_members`,
  ].join(';\n');
  try {
    await client.query(sql);
  } catch (error) {
    await client.query('ROLLBACK TO SAVEPOINT rlsctl_members').catch(() => undefined);
    throw new DatabaseError(`verify could not write the memberships of its users into ${m.schema}.${m.table}: ${(error as Error).message}`, {
      hint: `verify inserts (${m.userColumn}, ${m.tenantColumn}) rows, rolled back at the end: give the other columns of ${m.schema}.${m.table} defaults, or name tenants whose members exist with --tenant`,
      cause: error,
    });
  }
  const active = m.activeTenant ? model.tenant.setting : undefined;
  const settings = (user: string, tenant: string) => memberSettings(model, m, user, active ? tenant : undefined);
  const strangers: Stranger[] = [{ key: '\u0000nobody', description: `a user with no membership${active ? ` (acting in tenant ${tenants[0]})` : ''}` }];
  if (active && tenants.length > 1) {
    strangers.push({
      key: '\u0000elsewhere',
      description: `the member of tenant ${tenants[0]} acting in tenant ${tenants[1]}, of which they are not a member`,
    });
  }
  return {
    identity(key) {
      if (key === '\u0000nobody') return settings(nobody, tenants[0]);
      if (key === '\u0000elsewhere') return settings(users[0], tenants[1]);
      const i = tenants.indexOf(key);
      return settings(users[i], key);
    },
    strangers,
  };
}
