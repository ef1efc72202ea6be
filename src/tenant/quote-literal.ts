/**
 * SQL string literals, for the runtime (src/tenant/with-tenant.ts) and, through
 * src/compile/quote.ts, everything else: one implementation.
 */

/** A string literal; standard_conforming_strings is on since 9.1, so only quotes double. */
export function quoteLiteral(value: string): string {
  if (value.includes('\\')) return "E'" + value.replace(/\\/g, '\\\\').replace(/'/g, "''") + "'";
  return "'" + value.replace(/'/g, "''") + "'";
}
