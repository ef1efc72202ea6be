import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { diffModels } from '../../../src/diff/diff-models.js';
import { sortChanges, type PolicyChange } from '../../../src/diff/policy-change.js';
import { parsePolicy } from '../../../src/policy/load-policy.js';
import type { PolicyModel } from '../../../src/policy/model.js';

/**
 * Before/after policy files and the classes `diff` must give their changes.
 * Each expectation is `<class> <kind>`, one per change, so a missing, extra
 * or misclassed change fails the case. The reverse diff (head -> base) must
 * flip widening and narrowing, except where a case says otherwise: changes
 * whose effect rlsctl cannot tell count as widening in both directions.
 */

interface DocOptions {
  tenant?: Record<string, unknown>;
  app?: string[];
  bypass?: string[];
  schemas?: Record<string, unknown>;
  partitions?: Record<string, unknown>;
}

function doc(tables: Record<string, unknown>, options: DocOptions = {}): string {
  return stringify({
    version: 1,
    tenant: { setting: 'app.tenant_id', type: 'uuid', column: 'tenant_id', ...options.tenant },
    roles: { app: options.app ?? ['app_user'], bypass: options.bypass ?? ['migrator'] },
    schemas: options.schemas ?? { app: { tables } },
    ...(options.partitions ? { partitions: options.partitions } : {}),
  });
}

/** A hand-written policy, as in the policy file. */
function pol(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'support_read', to: ['support_agent'], for: 'select', using: 'true', ...fields };
}

const withPolicy = (p: Record<string, unknown>) => ({ tickets: { policies: [p] } });
const withPolicies = (...p: Array<Record<string, unknown>>) => ({ tickets: { policies: p } });

const MEMBERSHIP = { table: 'app.memberships', user_column: 'user_id', tenant_column: 'tenant_id', user: { setting: 'app.user_id', type: 'uuid' } };
const MEMBER_TABLES = { invoices: 'tenant', memberships: { mode: 'exempt', reason: 'membership table' }, teams: { mode: 'exempt', reason: 'teams' } };

interface Case {
  name: string;
  base: string;
  head: string;
  expect: string[];
  /** The classes of head -> base, when not the flip of `expect`. */
  reverse?: string[];
}

const LINES_VIA_INVOICES = { invoices: 'tenant', orders: 'tenant', lines: { via: { parent: 'invoices', columns: ['invoice_id'], references: ['id'] } } };
const LINES_VIA_ORDERS = { invoices: 'tenant', orders: 'tenant', lines: { via: { parent: 'orders', columns: ['order_id'], references: ['id'] } } };

const WIDENING: Case[] = [
  {
    name: 'tenant.membership added: the tenants now come from a table, widening both ways',
    base: doc(MEMBER_TABLES),
    head: doc(MEMBER_TABLES, { tenant: { setting: undefined, membership: MEMBERSHIP } }),
    expect: ['widening tenant-membership'],
    reverse: ['widening tenant-membership'],
  },
  {
    name: 'the membership table changes: widening both ways',
    base: doc(MEMBER_TABLES, { tenant: { setting: undefined, membership: MEMBERSHIP } }),
    head: doc(MEMBER_TABLES, { tenant: { setting: undefined, membership: { ...MEMBERSHIP, table: 'app.teams' } } }),
    expect: ['widening tenant-membership'],
    reverse: ['widening tenant-membership'],
  },
  {
    name: 'a membership column changes: widening both ways',
    base: doc(MEMBER_TABLES, { tenant: { setting: undefined, membership: MEMBERSHIP } }),
    head: doc(MEMBER_TABLES, { tenant: { setting: undefined, membership: { ...MEMBERSHIP, user_column: 'member_id' } } }),
    expect: ['widening tenant-membership'],
    reverse: ['widening tenant-membership'],
  },
  {
    name: 'the user now comes from a JWT claim: widening both ways',
    base: doc(MEMBER_TABLES, { tenant: { setting: undefined, membership: MEMBERSHIP } }),
    head: doc(MEMBER_TABLES, {
      tenant: { setting: undefined, membership: { ...MEMBERSHIP, user: { setting: 'request.jwt.claims', claim: 'sub', type: 'uuid' } } },
    }),
    expect: ['widening tenant-membership'],
    reverse: ['widening tenant-membership'],
  },
  { name: 'tenant -> exempt', base: doc({ invoices: 'tenant' }), head: doc({ invoices: { mode: 'exempt', reason: 'archive' } }), expect: ['widening mode'] },
  { name: 'shared -> exempt', base: doc({ countries: 'shared' }), head: doc({ countries: { mode: 'exempt', reason: 'lookup' } }), expect: ['widening mode'] },
  {
    name: 'tenant -> shared: every row readable, the writes go',
    base: doc({ invoices: 'tenant' }),
    head: doc({ invoices: 'shared' }),
    expect: ['widening mode', 'narrowing command', 'narrowing command', 'narrowing command', 'neutral index-removed'],
  },
  {
    name: 'tenant (read only) -> shared',
    base: doc({ events: { commands: ['select'] } }),
    head: doc({ events: 'shared' }),
    expect: ['widening mode', 'neutral index-removed'],
  },
  {
    name: 'a command is allowed',
    base: doc({ events: { commands: ['select', 'insert'] } }),
    head: doc({ events: { commands: ['select', 'insert', 'update'] } }),
    expect: ['widening command'],
  },
  {
    name: 'an app role is added',
    base: doc({ invoices: 'tenant' }),
    head: doc({ invoices: 'tenant' }, { app: ['app_user', 'reporting'] }),
    expect: ['widening app-role'],
  },
  {
    name: 'a bypass role is added',
    base: doc({ invoices: 'tenant' }),
    head: doc({ invoices: 'tenant' }, { bypass: ['migrator', 'ops'] }),
    expect: ['widening bypass-role'],
  },
  { name: 'a permissive policy is added', base: doc({ tickets: 'tenant' }), head: doc(withPolicy(pol())), expect: ['widening policy-added'] },
  {
    name: 'a restrictive policy is removed',
    base: doc(withPolicy(pol({ as: 'restrictive', for: 'all', to: ['app_user'], using: 'region = 1' }))),
    head: doc({ tickets: 'tenant' }),
    expect: ['widening policy-removed'],
  },
  {
    name: 'permissive USING gains a disjunct',
    base: doc(withPolicy(pol({ using: 'a = 1' }))),
    head: doc(withPolicy(pol({ using: 'a = 1 OR b = 2' }))),
    expect: ['widening policy-using'],
  },
  {
    name: 'permissive USING becomes true',
    base: doc(withPolicy(pol({ using: 'a = 1' }))),
    head: doc(withPolicy(pol({ using: 'true' }))),
    expect: ['widening policy-using'],
  },
  {
    name: 'permissive USING loses a conjunct',
    base: doc(withPolicy(pol({ using: 'a = 1 AND b = 2' }))),
    head: doc(withPolicy(pol({ using: 'a = 1' }))),
    expect: ['widening policy-using'],
  },
  {
    name: 'permissive USING changed beyond comparison: cannot tell, so widening both ways',
    base: doc(withPolicy(pol({ using: 'a = 1' }))),
    head: doc(withPolicy(pol({ using: 'a = 2' }))),
    expect: ['widening policy-using'],
    reverse: ['widening policy-using'],
  },
  {
    name: 'permissive WITH CHECK of an insert policy admits more',
    base: doc(withPolicy(pol({ for: 'insert', using: undefined, check: 'a = 1 AND b = 2' }))),
    head: doc(withPolicy(pol({ for: 'insert', using: undefined, check: 'a = 1' }))),
    expect: ['widening policy-check'],
  },
  {
    name: 'FOR ALL: a WITH CHECK beside USING that admits more new rows',
    base: doc(withPolicy(pol({ for: 'all', using: 'a = 1' }))),
    head: doc(withPolicy(pol({ for: 'all', using: 'a = 1', check: 'a = 1 OR b = 2' }))),
    expect: ['widening policy-check'],
  },
  {
    name: 'permissive `to` gains a role',
    base: doc(withPolicy(pol())),
    head: doc(withPolicy(pol({ to: ['support_agent', 'auditor'] }))),
    expect: ['widening policy-to'],
  },
  { name: 'permissive `to` becomes public', base: doc(withPolicy(pol())), head: doc(withPolicy(pol({ to: ['public'] }))), expect: ['widening policy-to'] },
  {
    name: 'permissive `to` swaps one role for another: mixed, widening both ways',
    base: doc(withPolicy(pol())),
    head: doc(withPolicy(pol({ to: ['auditor'] }))),
    expect: ['widening policy-to'],
    reverse: ['widening policy-to'],
  },
  {
    name: 'permissive `for` select -> all',
    base: doc(withPolicy(pol({ using: 'a = 1' }))),
    head: doc(withPolicy(pol({ for: 'all', using: 'a = 1' }))),
    expect: ['widening policy-for'],
  },
  {
    name: 'permissive `for` select -> delete: mixed, widening both ways',
    base: doc(withPolicy(pol({ using: 'a = 1' }))),
    head: doc(withPolicy(pol({ for: 'delete', using: 'a = 1' }))),
    expect: ['widening policy-for'],
    reverse: ['widening policy-for'],
  },
  {
    name: 'restrictive -> permissive',
    base: doc(withPolicy(pol({ as: 'restrictive', using: 'a = 1' }))),
    head: doc(withPolicy(pol({ as: 'permissive', using: 'a = 1' }))),
    expect: ['widening policy-as'],
  },
  {
    name: 'restrictive USING loses a conjunct (limits less)',
    base: doc(withPolicy(pol({ as: 'restrictive', using: 'a = 1 AND b = 2' }))),
    head: doc(withPolicy(pol({ as: 'restrictive', using: 'a = 1' }))),
    expect: ['widening policy-using'],
  },
  {
    // support_agent reads the table through a permissive policy of its own, so the restriction matters.
    name: 'restrictive `to` loses a role',
    base: doc(withPolicies(pol({ name: 'support_reads' }), pol({ as: 'restrictive', to: ['app_user', 'support_agent'], using: 'a = 1' }))),
    head: doc(withPolicies(pol({ name: 'support_reads' }), pol({ as: 'restrictive', to: ['app_user'], using: 'a = 1' }))),
    expect: ['widening policy-to'],
  },
  {
    name: 'restrictive `for` all -> select (limits fewer commands)',
    base: doc(withPolicy(pol({ as: 'restrictive', for: 'all', using: 'a = 1' }))),
    head: doc(withPolicy(pol({ as: 'restrictive', for: 'select', using: 'a = 1' }))),
    expect: ['widening policy-for'],
  },
  {
    name: 'the tenant setting changes: cannot tell, widening both ways',
    base: doc({ invoices: 'tenant' }),
    head: doc({ invoices: 'tenant' }, { tenant: { setting: 'app.org_id' } }),
    expect: ['widening tenant-setting'],
    reverse: ['widening tenant-setting'],
  },
  {
    name: 'the claim path changes: cannot tell, widening both ways',
    base: doc({ invoices: 'tenant' }, { tenant: { setting: 'request.jwt.claims', claim: 'app_metadata.org_id' } }),
    head: doc({ invoices: 'tenant' }, { tenant: { setting: 'request.jwt.claims', claim: 'user_metadata.org_id' } }),
    expect: ['widening tenant-claim'],
    reverse: ['widening tenant-claim'],
  },
  {
    name: 'the setting model becomes the claim model: cannot tell, widening both ways',
    base: doc({ invoices: 'tenant' }, { tenant: { setting: 'request.jwt.claims' } }),
    head: doc({ invoices: 'tenant' }, { tenant: { setting: 'request.jwt.claims', claim: 'org' } }),
    expect: ['widening tenant-claim'],
    reverse: ['widening tenant-claim'],
  },
  {
    name: 'the tenant type changes: cannot tell, widening both ways',
    base: doc({ invoices: 'tenant' }),
    head: doc({ invoices: 'tenant' }, { tenant: { type: 'text' } }),
    expect: ['widening tenant-type'],
    reverse: ['widening tenant-type'],
  },
  {
    name: "a table's tenant column changes: cannot tell, widening both ways; its tenant index moves",
    base: doc({ invoices: { column: 'org_id' } }),
    head: doc({ invoices: { column: 'owner_id' } }),
    expect: ['widening tenant-source', 'neutral index-added', 'neutral index-removed'],
    reverse: ['widening tenant-source', 'neutral index-added', 'neutral index-removed'],
  },
  {
    name: 'the default tenant column changes: each table that uses it is a change',
    base: doc({ invoices: 'tenant', orders: { column: 'org_id' } }),
    head: doc({ invoices: 'tenant', orders: { column: 'org_id' } }, { tenant: { column: 'org_id' } }),
    expect: ['neutral tenant-column-default', 'widening tenant-source', 'neutral index-added', 'neutral index-removed'],
    reverse: ['neutral tenant-column-default', 'widening tenant-source', 'neutral index-removed', 'neutral index-added'],
  },
  {
    name: 'a via parent changes: cannot tell, widening both ways',
    base: doc(LINES_VIA_INVOICES),
    head: doc(LINES_VIA_ORDERS),
    expect: ['widening tenant-source', 'neutral index-added', 'neutral index-removed'],
    reverse: ['widening tenant-source', 'neutral index-added', 'neutral index-removed'],
  },
  {
    name: 'a tenant column gives way to via',
    base: doc({ invoices: 'tenant', lines: 'tenant' }),
    head: doc({ invoices: 'tenant', lines: { via: { parent: 'invoices', columns: ['invoice_id'], references: ['id'] } } }),
    expect: ['widening tenant-source', 'neutral index-added', 'neutral index-removed'],
    reverse: ['widening tenant-source', 'neutral index-added', 'neutral index-removed'],
  },
  {
    name: 'a tenant table leaves the file',
    base: doc({ invoices: 'tenant', users: 'tenant' }),
    head: doc({ users: 'tenant' }),
    expect: ['widening table-removed'],
  },
  {
    name: 'a shared table leaves the file',
    base: doc({ countries: 'shared', users: 'tenant' }),
    head: doc({ users: 'tenant' }),
    expect: ['widening table-removed'],
  },
];

const NARROWING: Case[] = [
  {
    name: 'an active tenant is now required beside the memberships (tenant.setting added)',
    base: doc(MEMBER_TABLES, { tenant: { setting: undefined, membership: MEMBERSHIP } }),
    head: doc(MEMBER_TABLES, { tenant: { membership: MEMBERSHIP } }),
    expect: ['narrowing tenant-membership'],
  },
  {
    name: 'partitions.protect_new turned on',
    base: doc({ events: 'tenant' }),
    head: doc({ events: 'tenant' }, { partitions: { protect_new: true } }),
    expect: ['narrowing partitions-protect-new'],
  },
  { name: 'exempt -> tenant', base: doc({ invoices: { mode: 'exempt', reason: 'archive' } }), head: doc({ invoices: 'tenant' }), expect: ['narrowing mode'] },
  {
    name: 'shared -> tenant: own rows only, but tenants may now write them',
    base: doc({ countries: 'shared' }),
    head: doc({ countries: 'tenant' }),
    expect: ['narrowing mode', 'widening command', 'widening command', 'widening command', 'neutral index-added'],
  },
  {
    name: 'a tenant table enters the file',
    base: doc({ users: 'tenant' }),
    head: doc({ users: 'tenant', invoices: 'tenant' }),
    expect: ['narrowing table-added'],
  },
  {
    name: 'a shared table enters the file',
    base: doc({ users: 'tenant' }),
    head: doc({ users: 'tenant', countries: 'shared' }),
    expect: ['narrowing table-added'],
  },
  {
    name: 'a command is no longer allowed',
    base: doc({ events: 'tenant' }),
    head: doc({ events: { commands: ['select', 'insert'] } }),
    expect: ['narrowing command', 'narrowing command'],
  },
  {
    name: 'an app role is removed',
    base: doc({ invoices: 'tenant' }, { app: ['app_user', 'reporting'] }),
    head: doc({ invoices: 'tenant' }),
    expect: ['narrowing app-role'],
  },
  {
    name: 'a bypass role is removed',
    base: doc({ invoices: 'tenant' }, { bypass: ['migrator', 'ops'] }),
    head: doc({ invoices: 'tenant' }),
    expect: ['narrowing bypass-role'],
  },
  {
    name: 'a restrictive policy is added',
    base: doc({ tickets: 'tenant' }),
    head: doc(withPolicy(pol({ as: 'restrictive', to: ['app_user'], using: 'region = 1' }))),
    expect: ['narrowing policy-added'],
  },
  { name: 'a permissive policy is removed', base: doc(withPolicy(pol())), head: doc({ tickets: 'tenant' }), expect: ['narrowing policy-removed'] },
  {
    name: 'permissive USING gains a conjunct',
    base: doc(withPolicy(pol({ using: 'a = 1' }))),
    head: doc(withPolicy(pol({ using: '(a = 1) AND b = 2' }))),
    expect: ['narrowing policy-using'],
  },
  {
    name: 'permissive USING becomes false',
    base: doc(withPolicy(pol({ using: 'a = 1' }))),
    head: doc(withPolicy(pol({ using: 'false' }))),
    expect: ['narrowing policy-using'],
  },
  {
    name: 'permissive -> restrictive',
    base: doc(withPolicy(pol({ using: 'a = 1' }))),
    head: doc(withPolicy(pol({ as: 'restrictive', using: 'a = 1' }))),
    expect: ['narrowing policy-as'],
  },
  {
    name: 'permissive `for` all -> select',
    base: doc(withPolicy(pol({ for: 'all', using: 'a = 1' }))),
    head: doc(withPolicy(pol({ using: 'a = 1' }))),
    expect: ['narrowing policy-for'],
  },
  {
    name: 'permissive `to` loses a role',
    base: doc(withPolicy(pol({ to: ['support_agent', 'auditor'] }))),
    head: doc(withPolicy(pol())),
    expect: ['narrowing policy-to'],
  },
  {
    name: 'restrictive `to` gains a role',
    base: doc(withPolicies(pol({ name: 'support_reads' }), pol({ as: 'restrictive', to: ['app_user'], using: 'a = 1' }))),
    head: doc(withPolicies(pol({ name: 'support_reads' }), pol({ as: 'restrictive', to: ['app_user', 'support_agent'], using: 'a = 1' }))),
    expect: ['narrowing policy-to'],
  },
  {
    name: 'restrictive USING gains a conjunct (limits more)',
    base: doc(withPolicy(pol({ as: 'restrictive', using: 'a = 1' }))),
    head: doc(withPolicy(pol({ as: 'restrictive', using: 'a = 1 AND b = 2' }))),
    expect: ['narrowing policy-using'],
  },
];

const NEUTRAL: Case[] = [
  {
    name: 'the engine changes: the same tenant read with or without the sub-select, neutral',
    base: doc({ invoices: 'tenant' }),
    head: `${doc({ invoices: 'tenant' })}engine: citus\n`,
    expect: ['neutral engine'],
    reverse: ['neutral engine'],
  },
  {
    // The table's policies as a whole (src/rls/compare-policy-sets.ts): support_agent has no permissive
    // policy here, so it reads no row either way, and a member of both roles is restricted through app_user.
    name: 'restrictive `to` loses a role that no permissive policy admits',
    base: doc(withPolicy(pol({ as: 'restrictive', to: ['app_user', 'support_agent'], using: 'a = 1' }))),
    head: doc(withPolicy(pol({ as: 'restrictive', to: ['app_user'], using: 'a = 1' }))),
    expect: ['neutral policy-to'],
  },
  {
    name: 'a permissive policy added that admits what another already does',
    base: doc(withPolicy(pol())),
    head: doc(withPolicies(pol(), pol({ name: 'support_read_again' }))),
    expect: ['neutral policy-added'],
  },
  {
    name: 'an index is declared (it replaces the tenant index it leads with)',
    base: doc({ projects: 'tenant' }),
    head: doc({ projects: { indexes: [['created_at']] } }),
    expect: ['neutral index-added', 'neutral index-removed'],
    reverse: ['neutral index-added', 'neutral index-removed'],
  },
  {
    name: 'a named index becomes unique',
    base: doc({ invoices: { indexes: [{ columns: ['number'], name: 'invoice_no' }] } }),
    head: doc({ invoices: { indexes: [{ columns: ['number'], name: 'invoice_no', unique: true }] } }),
    expect: ['neutral index-changed'],
  },
  {
    name: 'an index is renamed',
    base: doc({ invoices: { indexes: [{ columns: ['number'], name: 'invoice_no' }] } }),
    head: doc({ invoices: { indexes: [{ columns: ['number'], name: 'invoices_by_number' }] } }),
    expect: ['neutral index-renamed'],
  },
  {
    name: 'a policy is renamed and its expression reformatted',
    base: doc(withPolicy(pol({ using: 'a = 1 and b = 2' }))),
    head: doc(withPolicy(pol({ name: 'support_read_all', using: 'B = 2\n  AND (a=1)' }))),
    expect: ['neutral policy-renamed'],
  },
  {
    name: 'partitions.protect_new: false is the default',
    base: doc({ events: 'tenant' }),
    head: doc({ events: 'tenant' }, { partitions: { protect_new: false } }),
    expect: [],
  },
  {
    name: 'an exempt reason changes',
    base: doc({ log: { mode: 'exempt', reason: 'a' } }),
    head: doc({ log: { mode: 'exempt', reason: 'b' } }),
    expect: ['neutral exempt-reason'],
  },
  {
    name: 'an exempt table enters the file',
    base: doc({ users: 'tenant' }),
    head: doc({ users: 'tenant', log: { mode: 'exempt', reason: 'r' } }),
    expect: ['neutral table-added'],
  },
  {
    name: 'a managed schema is added with an exempt table',
    base: doc({}, { schemas: { app: { tables: { users: 'tenant' } } } }),
    head: doc({}, { schemas: { app: { tables: { users: 'tenant' } }, audit: { tables: { log: { mode: 'exempt', reason: 'r' } } } } }),
    expect: ['neutral managed-schema', 'neutral table-added'],
  },
  {
    name: 'no change: shorthand vs mapping, reordered lists, reordered conjuncts',
    base: doc(
      { invoices: 'tenant', events: { commands: ['insert', 'select'] }, ...withPolicy(pol({ to: ['b', 'a'], using: 'x = 1 AND y = 2' })) },
      { app: ['app_user', 'reporting'] },
    ),
    head: doc(
      { invoices: { mode: 'tenant' }, events: { commands: ['select', 'insert'] }, ...withPolicy(pol({ to: ['a', 'b'], using: 'y = 2 AND x = 1' })) },
      { app: ['reporting', 'app_user'] },
    ),
    expect: [],
  },
  {
    name: 'no change: FOR ALL with a WITH CHECK equal to its USING',
    base: doc(withPolicy(pol({ for: 'all', using: 'a = 1' }))),
    head: doc(withPolicy(pol({ for: 'all', using: 'a = 1', check: '(a = 1)' }))),
    expect: [],
  },
];

async function model(text: string, file = 'policy.yaml'): Promise<PolicyModel> {
  return parsePolicy([{ file, text }]);
}

function classes(changes: PolicyChange[]): string[] {
  return changes.map((c) => `${c.class} ${c.kind}`).sort();
}

/** The reverse of a change: widening <-> narrowing, and what was added is removed. */
function flip(expected: string[]): string[] {
  const swap = (text: string, a: string, b: string) => text.replace(new RegExp(`${a}|${b}`), (m) => (m === a ? b : a));
  return expected.map((e) => swap(swap(e, 'widening', 'narrowing'), '-added', '-removed')).sort();
}

describe('diffModels: classes of changes', () => {
  describe.each([
    ['widening', WIDENING],
    ['narrowing', NARROWING],
    ['neutral', NEUTRAL],
  ] as const)('%s cases', (_, cases) => {
    it.each(cases)('$name', async (c) => {
      const base = await model(c.base);
      const head = await model(c.head);
      expect(classes(diffModels(base, head))).toEqual([...c.expect].sort());
      // The reverse diff flips widening and narrowing (or is as the case says).
      expect(classes(diffModels(head, base))).toEqual(c.reverse ? [...c.reverse].sort() : flip(c.expect));
    });
  });

  it('every widening case has at least one widening change, every narrowing case a narrowing one', () => {
    // Guards the tables themselves against a case filed under the wrong heading.
    expect(WIDENING.every((c) => c.expect.some((e) => e.startsWith('widening ')))).toBe(true);
    expect(NARROWING.every((c) => c.expect.some((e) => e.startsWith('narrowing ')))).toBe(true);
    expect(NEUTRAL.every((c) => c.expect.every((e) => e.startsWith('neutral ')))).toBe(true);
  });
});

describe('diffModels: what the changes say', () => {
  it('compares a model with itself as no change', async () => {
    const m = await model(doc({ invoices: 'tenant', countries: 'shared', tickets: { policies: [pol()] } }));
    expect(diffModels(m, m)).toEqual([]);
  });

  it('moving a schema and its tables to another file of the folder is no change', async () => {
    const roles = 'version: 1\nroles: { app: [app_user] }\n';
    const app = 'schemas:\n  app:\n    tables:\n      invoices: tenant\n';
    const billing = '  billing:\n    tables:\n      bills: { commands: [select] }\n';
    const base = await parsePolicy([{ file: 'p/a.yaml', text: `${roles}${app}${billing}` }]);
    const head = await parsePolicy([
      { file: 'p/a.yaml', text: `${roles}${app}` },
      { file: 'p/b.yaml', text: `version: 1\nschemas:\n${billing}` },
    ]);
    expect(head.files).toEqual(['p/a.yaml', 'p/b.yaml']);
    expect(diffModels(base, head)).toEqual([]);
  });

  it('reformatting every expression is no change', async () => {
    const base = await model(`version: 1
roles: { app: [app_user] }
schemas:
  app:
    tables:
      tickets:
        policies:
          - { name: p, to: [support_agent], for: all, using: "org_id = (select current_setting('app.x', true))::uuid and not archived", check: "status in ('open', 'closed')" }
`);
    const head = await model(`version: 1
roles:
  app: [app_user]
schemas:
  app:
    tables:
      tickets:
        policies:
          - name: p
            to: [support_agent]
            for: all
            using: |
              ORG_ID = (SELECT current_setting('app.x', TRUE))::UUID
                AND NOT (archived)   -- soft-deleted rows stay hidden
            check: >-
              status IN ('open',
                         'closed')
`);
    expect(diffModels(base, head)).toEqual([]);
  });

  it('says so when it cannot tell whether an expression widens', async () => {
    const [change] = diffModels(await model(doc(withPolicy(pol({ using: 'a = 1' })))), await model(doc(withPolicy(pol({ using: 'a > 0' })))));
    expect(change.class).toBe('widening');
    expect(change.message).toContain('cannot tell');
    expect(change.change).toBe('using a = 1 -> a > 0');
  });

  it('names the table and the mode change as the spec example does', async () => {
    const changes = diffModels(
      await model(doc({}, { schemas: { public: { tables: { invoices: 'tenant' } } } })),
      await model(doc({}, { schemas: { public: { tables: { invoices: { mode: 'exempt', reason: 'r' } } } } })),
    );
    expect(changes.map(({ object, change, class: k, message }) => ({ object, change, class: k, message }))).toEqual([
      {
        object: { kind: 'table', schema: 'public', name: 'invoices' },
        change: 'mode tenant -> exempt',
        class: 'widening',
        message: "public.invoices is no longer isolated by tenant: every app role can read every tenant's rows",
      },
    ]);
  });

  it('attaches the SQL each change would run, with identifiers quoted', async () => {
    const changes = diffModels(
      await model(doc({ 'Order Lines': { commands: ['select', 'insert'] } })),
      await model(doc({ 'Order Lines': { commands: ['select', 'insert', 'update'] } })),
    );
    expect(changes).toHaveLength(1);
    expect(changes[0].sql.join('\n')).toBe(
      [
        'CREATE POLICY rlsctl_tenant_update ON app."Order Lines"',
        '  AS PERMISSIVE FOR UPDATE',
        '  TO app_user',
        "  USING (tenant_id = (SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid))",
        "  WITH CHECK (tenant_id = (SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid));",
      ].join('\n'),
    );
  });

  it("keeps one change's SQL apart from another's in the same diff", async () => {
    // The app role and the command change both touch app.events; the role's
    // SQL must show the role added to every generated policy, the command's
    // only the new policy, each on its own.
    const changes = diffModels(
      await model(doc({ events: { commands: ['select', 'insert'] }, countries: 'shared' })),
      await model(doc({ events: { commands: ['select', 'insert', 'delete'] }, countries: 'shared' }, { app: ['app_user', 'reporting'] })),
    );
    const role = changes.find((c) => c.kind === 'app-role')!;
    const command = changes.find((c) => c.kind === 'command')!;
    expect(role.sql.filter((s) => s.startsWith('CREATE POLICY')).every((s) => s.includes('TO app_user, reporting'))).toBe(true);
    expect(role.sql.some((s) => s.includes('rlsctl_shared_read ON app.countries'))).toBe(true);
    expect(role.sql.some((s) => s.includes('rlsctl_tenant_delete'))).toBe(false);
    expect(command.sql.join('\n')).toContain('CREATE POLICY rlsctl_tenant_delete ON app.events');
    expect(command.sql.join('\n')).not.toContain('reporting');
  });

  it('notes that app roles stay within their tenant when a permissive policy for them is added to a tenant table', async () => {
    const [change] = diffModels(await model(doc({ tickets: 'tenant' })), await model(doc(withPolicy(pol({ to: ['app_user'] })))));
    expect(change.class).toBe('widening');
    expect(change.message).toContain('restrictive tenant guard still applies');
  });

  it('sorts deterministically: widening first, then by object', async () => {
    const base = await model(doc({ b: 'tenant', a: 'shared', c: { commands: ['select'] }, d: { mode: 'exempt', reason: 'x' } }));
    const head = await model(doc({ b: { mode: 'exempt', reason: 'y' }, a: 'tenant', c: 'tenant', d: 'tenant' }, { bypass: ['migrator', 'ops'] }));
    const changes = diffModels(base, head);
    const order = changes.map((c) => c.class);
    expect(order).toEqual([...order].sort((x, y) => ['widening', 'narrowing', 'neutral'].indexOf(x) - ['widening', 'narrowing', 'neutral'].indexOf(y)));
    expect(changes[0].object).toEqual({ kind: 'role', name: 'ops' });
    expect(sortChanges([...changes].reverse())).toEqual(changes);
    expect(diffModels(base, head)).toEqual(changes);
  });
});
