import { parseSync } from 'libpg-query';
import { usesCheck, usesUsing } from '../rls/policy-semantics.js';
import type { Command } from '../policy/model.js';
import { tenantLookupOfFacts, type TenantFacts } from '../facts/resolve-facts.js';
import { tenantEqualsSql } from '../compile/tenant-lookup.js';
import { qualify, quoteIdent } from '../compile/quote.js';
import type { PlannableKind } from './inspect-query.js';
import type { PolicyInfo, TenantRelation } from './read-explain-catalog.js';
import type { ScanNode } from './walk-plan.js';

/**
 * The policies of a tenant table as explain sees them: the commands a
 * statement meets policies for (which apply is the row-security model's to
 * say: scan-security.ts), what their sub-queries read, and the ALTER POLICY that gives
 * them the one-lookup, index-friendly shape `rlsctl compile` writes.
 */

/**
 * The policy commands whose policies a statement may meet: its own, and SELECT's, which PostgreSQL
 * adds when the statement reads existing rows (a WHERE, RETURNING, ON CONFLICT).
 */
export const COMMANDS_OF: Record<PlannableKind, Command[]> = {
  SelectStmt: ['select'],
  InsertStmt: ['insert', 'select'],
  UpdateStmt: ['update', 'select'],
  DeleteStmt: ['delete', 'select'],
  MergeStmt: ['select', 'insert', 'update', 'delete'],
};

/**
 * A policy sub-query that refers to the row being checked: pg_get_expr
 * qualifies such outer references with the table's name.
 */
export function isCorrelated(policy: PolicyInfo, on: { name: string }): boolean {
  const name = on.name;
  const ident = /^[a-z_][a-z0-9_$]*$/.test(name) ? name.replace(/\$/g, '\\$') : `"${name.replace(/"/g, '""')}"`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return /\bSELECT\b/i.test(policy.using ?? '') && new RegExp(`(?<![\\w$."])${ident}\\.`).test(policy.using ?? '');
}

/** The relations the sub-queries of a policy's expressions read, as `{ schema?, name }` (the schema when the text names it). */
export function policyReads(policy: PolicyInfo): Array<{ schema?: string; name: string }> {
  const out: Array<{ schema?: string; name: string }> = [];
  for (const text of [policy.using, policy.check]) {
    if (!text) continue;
    let tree: unknown;
    try {
      tree = parseSync(`SELECT (\n${text}\n)`);
    } catch {
      continue;
    }
    const visit = (node: unknown): void => {
      if (Array.isArray(node)) return node.forEach(visit);
      if (!node || typeof node !== 'object') return;
      const rv = (node as { RangeVar?: { schemaname?: string; relname?: string } }).RangeVar;
      if (rv?.relname) out.push({ schema: rv.schemaname, name: rv.relname });
      for (const v of Object.values(node)) visit(v);
    };
    visit(tree);
  }
  return out;
}

/** True when `qualified` (`schema.name`, as a plan names a relation) is among `reads`. */
export function readsRelation(reads: Array<{ schema?: string; name: string }>, qualified: string): boolean {
  const dot = qualified.indexOf('.');
  const schema = qualified.slice(0, dot);
  const name = qualified.slice(dot + 1);
  return reads.some((r) => r.name === name && (r.schema === undefined || r.schema === schema));
}

/** The predicate every tenant policy should hold (the shape `rlsctl compile` writes). */
export function idealPredicate(facts: TenantFacts, column: string): string {
  return tenantEqualsSql(column, tenantLookupOfFacts(facts));
}

/** ALTER POLICY statements that give the offending policies (of `on`: the tenant table, or a partition the query names) the one-lookup, index-friendly shape. */
export function policyRewrite(facts: TenantFacts, on: { schema: string; name: string }, policies: PolicyInfo[], column: string): string {
  const lines: string[] = [];
  const target = qualify(on.schema, on.name);
  for (const p of policies) {
    const flat = (text: string) => text.replace(/\s+/g, ' ').replace(/\( /g, '(');
    lines.push(`-- ${quoteIdent(p.name)} now: USING ${flat(p.using ?? '(none)')}${p.check ? ` WITH CHECK ${flat(p.check)}` : ''}`);
    const ideal = idealPredicate(facts, column);
    const using = usesUsing(p.command) ? ` USING (${ideal})` : '';
    const check = usesCheck(p.command) ? ` WITH CHECK (${ideal})` : '';
    lines.push(`ALTER POLICY ${quoteIdent(p.name)} ON ${target}${using}${check};`);
  }
  if (facts.source === 'policy-file') lines.push('-- or let `rlsctl apply` write the policies of the policy file, which have this shape');
  else if (lines.length > 0) lines.push('-- keep any other condition the policy needs beside the tenant comparison');
  return lines.join('\n');
}

export function tableLabel(scan: ScanNode, relation: TenantRelation): string {
  const own = `${scan.schema}.${scan.relation}`;
  const root = `${relation.table.schema}.${relation.table.name}`;
  return own === root ? root : `${own} (a partition of ${root})`;
}
