import type { RuleMeta } from '../report/finding.js';

/**
 * The rules of `rlsctl verify`. VER001–VER006 are the spec's (cli.md,
 * "verify rules"); VER010 is verify's own info finding for a probe that could
 * not be run or could not decide, so that nothing is skipped silently. Codes
 * are never reused.
 */

export type VerifyRuleCode = 'VER001' | 'VER002' | 'VER003' | 'VER004' | 'VER005' | 'VER006' | 'VER010';

export const VERIFY_RULES: RuleMeta[] = [
  {
    code: 'VER001',
    name: 'cross-tenant-read',
    severity: 'error',
    title: "A tenant can read another tenant's rows",
    description:
      'Acting as an app role with one tenant set, a query returned rows that belong to another tenant: directly from a tenant table or partition, or through a view, a materialized view or a SECURITY DEFINER function.',
    remediation:
      "Protect the relation with row level security (rlsctl apply), make views security_invoker, revoke app roles' access to materialized views, and make SECURITY DEFINER functions filter by the current tenant or run as SECURITY INVOKER.",
  },
  {
    code: 'VER002',
    name: 'unset-context-visible',
    severity: 'error',
    title: 'Rows are visible with no tenant set',
    description:
      'Acting as an app role in a session where no tenant was ever set, or after a transaction that set it with set_config(..., true) ended, a query returned tenant rows. Every query must return zero rows without a tenant.',
    remediation:
      "Compare the tenant column with (SELECT NULLIF(current_setting('SETTING', true), '')::TYPE): an unset or empty setting then admits no row. Remove predicates that admit every row when the setting is empty.",
  },
  {
    code: 'VER003',
    name: 'unset-context-error',
    // Not a leak (no row crosses), but spec behaviour 2 is broken: the application's queries fail
    // whenever no tenant is set. An error, as audit's RLS020 and RLS021 that find the same cause.
    severity: 'error',
    title: 'A query errors instead of returning zero rows with no tenant set',
    description:
      'Acting as an app role with no tenant set, or after a transaction-local tenant ended (the setting then reads as an empty string), a query raised an error instead of returning zero rows: typically current_setting() without missing_ok, or a cast of the empty string.',
    remediation: "Read the setting with current_setting('SETTING', true) and wrap it in NULLIF(..., '') before the cast, as the policies rlsctl compiles do.",
  },
  {
    code: 'VER004',
    name: 'cross-tenant-insert',
    severity: 'error',
    title: 'A tenant can insert a row for another tenant',
    description: 'Acting as an app role with one tenant set, an INSERT of a row that belongs to another tenant was admitted by the database.',
    remediation: 'Give the INSERT policies a WITH CHECK that compares the tenant column with the current tenant (rlsctl apply makes them).',
  },
  {
    code: 'VER005',
    name: 'cross-tenant-update',
    severity: 'error',
    title: "A tenant can update another tenant's rows or move its own rows to another tenant",
    description:
      "Acting as an app role with one tenant set, an UPDATE changed a row of another tenant, or moved one of the tenant's own rows to another tenant.",
    remediation: 'Give the UPDATE policies both a USING and a WITH CHECK that compare the tenant column with the current tenant.',
  },
  {
    code: 'VER006',
    name: 'cross-tenant-delete',
    severity: 'error',
    title: "A tenant can delete another tenant's rows",
    description: 'Acting as an app role with one tenant set, a DELETE removed a row of another tenant.',
    remediation: 'Give the DELETE policies a USING that compares the tenant column with the current tenant.',
  },
  {
    code: 'VER010',
    name: 'probe-skipped',
    severity: 'info',
    title: 'A probe could not be run or could not decide',
    description:
      'verify could not make a probe row (required columns without defaults whose values it cannot guess, a partition bound it cannot satisfy), or a probe failed for a reason other than the tenant boundary. That part of the relation is unproven, not proven safe.',
    remediation: 'Give verify rows to work with (seed two tenants in the test database), or name the tenants with --tenant; the message says what was missing.',
  },
];

export const LEAK_RULES: ReadonlySet<string> = new Set(['VER001', 'VER002', 'VER004', 'VER005', 'VER006']);

export function verifyRule(code: VerifyRuleCode): RuleMeta {
  const rule = VERIFY_RULES.find((r) => r.code === code);
  if (!rule) throw new Error(`unknown verify rule ${code}`);
  return rule;
}
