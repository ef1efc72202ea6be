import { defineVerifyRule } from '../rule.js';
import { quoteLiteral } from '../../compile/quote.js';
import type { PgError } from '../probe-session.js';

/** docs/rules/VER003.md */
export const ver003 = defineVerifyRule({
  code: 'VER003',
  name: 'unset-context-error',
  // Not a leak (no row crosses), but spec behaviour 2 is broken: the application's queries fail
  // whenever no tenant is set. An error, as audit's RLS020 and RLS021 that find the same cause.
  severity: 'error',
  title: 'A query errors instead of returning zero rows with no tenant set',
  description:
    'Acting as an app role with no tenant set, or after a transaction-local tenant ended (the setting then reads as an empty string), a query raised an error instead of returning zero rows: typically current_setting() without missing_ok, or a cast of the empty string.',
  remediation: "Read the setting with current_setting('SETTING', true) and wrap it in NULLIF(..., '') before the cast, as the policies rlsctl compiles do.",
  leak: false,
  message(e, label) {
    const errors = [...e.errors].map(([state, error]) => `${state}: ${error}`).join('; ');
    return `${e.role}'s query on ${label} fails with no tenant set instead of returning zero rows (${errors}): ${e.statement}`;
  },
  help({ target, setting }) {
    if (target.kind === 'function')
      return `read the setting with current_setting(${quoteLiteral(setting)}, true) and NULLIF(..., '') before any cast, inside ${target.fn.sql}`;
    return `read the setting with current_setting(${quoteLiteral(setting)}, true) and wrap it in NULLIF(..., '') before the cast, in the policies of ${target.rel.sql} (as rlsctl compile writes them)`;
  },
});

/**
 * What decides VER003: a query with no tenant set failed. Unless the error says
 * nothing about the tenant context (no privilege, a materialized view never
 * refreshed, a timeout, a lock wait): that probe could not decide (VER010).
 */
export function notAboutContext(e: PgError): boolean {
  return e.code === '42501' || e.code === '55000' || e.code === '57014' || e.code === '55P03';
}
