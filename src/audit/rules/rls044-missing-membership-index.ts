import { membershipIndex } from '../../compile/membership.js';
import { quoteIdent } from '../../compile/quote.js';
import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { sqlFix } from '../fix.js';

export const rls044 = defineRule({
  code: 'RLS044',
  name: 'missing-membership-index',
  severity: 'warning',
  title: 'The membership table has no index for the membership lookup',
  description:
    "With `tenant.membership` in the policy file, every statement on a tenant table looks up the current user's tenants in the membership table (src/compile/membership.ts). Without a valid, non-partial index whose first columns are the user column and the tenant column, that lookup reads the whole membership table once per statement.",
  remediation:
    'CREATE INDEX CONCURRENTLY ... ON membership_table (user_column, tenant_column), or run `rlsctl apply`, which builds it when no index leads with those columns.',
  needsPolicyFile: true,
  check(ctx) {
    const m = ctx.facts.model?.tenant.membership;
    if (!m) return [];
    const rel = ctx.relationsByKey.get(`${m.schema}.${m.table}`);
    if (!rel) return [];
    const nums = [m.userColumn, m.tenantColumn].map((c) => ctx.column(rel.oid, c)?.num);
    // A missing column is another problem (plan reports it), not an index one.
    if (nums.some((n) => n === undefined)) return [];
    const served = ctx.indexesOf(rel.oid).some((i) => i.valid && !i.partial && i.keys[0] === nums[0] && i.keys[1] === nums[1]);
    if (served) return [];
    const index = membershipIndex(m);
    const findings: Finding[] = [
      findingOf(
        rls044,
        ctx.objectOf(rel),
        `${ctx.label(rel)} has no valid index that leads with (${index.columns.join(', ')}): the membership lookup reads the whole table for every statement on a tenant table`,
        sqlFix([
          `CREATE INDEX ${rel.kind === 'p' ? '' : 'CONCURRENTLY '}${quoteIdent(index.name)} ON ${ctx.sql(rel)} (${index.columns.map(quoteIdent).join(', ')});`,
        ]),
      ),
    ];
    return findings;
  },
});
