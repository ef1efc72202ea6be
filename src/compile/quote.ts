/**
 * SQL quoting. Every identifier and literal that reaches generated SQL goes
 * through here; nothing is ever spliced in raw.
 */

// PostgreSQL's reserved and type-function-name keywords that need quoting as
// identifiers (from src/include/parser/kwlist.h, categories RESERVED_KEYWORD,
// TYPE_FUNC_NAME_KEYWORD and COL_NAME_KEYWORD). Quoting more than needed is
// harmless; quoting less is a syntax error or worse.
const KEYWORDS = new Set(
  (
    'all analyse analyze and any array as asc asymmetric authorization between bigint binary bit boolean both case cast char ' +
    'character check coalesce collate collation column concurrently constraint create cross current_catalog current_date ' +
    'current_role current_schema current_time current_timestamp current_user dec decimal default deferrable desc distinct do ' +
    'else end except exists extract false fetch float for foreign freeze from full grant greatest group grouping having ilike in ' +
    'initially inner inout int integer intersect interval into is isnull join json json_array json_arrayagg json_exists ' +
    'json_object json_objectagg json_query json_scalar json_serialize json_table json_value lateral leading least left like ' +
    'limit localtime localtimestamp merge_action national natural nchar none normalize not notnull null nullif numeric offset on ' +
    'only or order out outer overlaps overlay placing position precision primary real references returning right row select ' +
    'session_user setof similar smallint some substring symmetric system_user table tablesample then time timestamp to trailing ' +
    'treat trim true union unique user using values varchar variadic verbose when where window with xmlattributes xmlconcat ' +
    'xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi xmlroot xmlserialize xmltable'
  ).split(' '),
);

/**
 * Quote an identifier only where PostgreSQL needs it, so generated SQL stays
 * readable. The same rule as PostgreSQL's own quote_ident() (ruleutils.c
 * quote_identifier: lower-case ASCII letters, digits and `_`, not a
 * non-unreserved keyword), so a name reads the same here as in what
 * pg_get_expr() and pg_get_indexdef() print back.
 */
export function quoteIdent(name: string): string {
  if (/^[a-z_][a-z0-9_]*$/.test(name) && !KEYWORDS.has(name)) return name;
  return '"' + name.replace(/"/g, '""') + '"';
}

/** schema.name, each part quoted where needed. */
export function qualify(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

// Defined in src/tenant/ so that the runtime entry (src/runtime.ts) loads only src/tenant/.
export { quoteLiteral } from '../tenant/quote-literal.js';

/** Byte length as PostgreSQL counts it for NAMEDATALEN (63 bytes). */
export function identBytes(name: string): number {
  return Buffer.byteLength(name, 'utf8');
}
