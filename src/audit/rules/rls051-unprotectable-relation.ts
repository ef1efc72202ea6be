import { quoteIdent } from '../../compile/quote.js';
import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { sqlFix } from '../fix.js';
import { dependencyMap, protectedOf } from './rls050-view-bypasses-rls.js';

export const rls051 = defineRule({
  code: 'RLS051',
  name: 'unprotectable-relation',
  severity: 'error',
  title: 'A materialized view or foreign table with tenant rows that app roles can read',
  description:
    "Row level security cannot be enabled on a materialized view or a foreign table. A materialized view over a tenant table holds what its owner saw when it was refreshed, every tenant's rows if the owner bypasses RLS; a foreign table with a tenant column serves whatever the remote side returns. If an app role can read it, no policy stands between a tenant and the other tenants' rows.",
  remediation:
    "Revoke the app roles' privileges on it and serve it through a security-invoker view or function that filters by the current tenant, or replace it with a table under RLS (for a materialized view: a regular table refreshed by a job).",
  check(ctx) {
    const findings: Finding[] = [];
    const deps = dependencyMap(ctx);
    const readsTenantRows = (oid: string, seen = new Set<string>()): string | undefined => {
      if (seen.has(oid)) return undefined;
      seen.add(oid);
      for (const ref of deps.get(oid) ?? []) {
        const p = protectedOf(ctx, ref);
        if (p && p.mode === 'tenant') return ctx.label(ctx.relations.get(ref)!);
        const rel = ctx.relations.get(ref);
        if (rel && (rel.kind === 'v' || rel.kind === 'm')) {
          const through = readsTenantRows(ref, seen);
          if (through) return through;
        }
      }
      return undefined;
    };
    for (const [oid, roles] of ctx.catalog.appReach) {
      const rel = ctx.relations.get(oid);
      if (!rel || (rel.kind !== 'm' && rel.kind !== 'f')) continue;
      const column = ctx.column(oid, ctx.facts.tenantColumn);
      const source = rel.kind === 'm' ? readsTenantRows(oid) : undefined;
      if (!source && !column) continue;
      const what = rel.kind === 'm' ? 'materialized view' : 'foreign table';
      const why = source ? `holds rows of ${source}` : `has the tenant column ${column!.name}`;
      findings.push(
        findingOf(
          rls051,
          ctx.objectOf(rel),
          `${what} ${ctx.label(rel)} ${why}, cannot have row level security, and ${roles.join(', ')} can read it`,
          sqlFix([`REVOKE ALL ON ${ctx.sql(rel)} FROM PUBLIC, ${roles.map(quoteIdent).join(', ')};`], {
            note: `then serve it through a view or function that filters by tenant; where an app role reaches it through a role it inherits from, revoke from that role too`,
          }),
        ),
      );
    }
    return findings;
  },
});
