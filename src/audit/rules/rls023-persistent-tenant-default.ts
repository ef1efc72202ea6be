import { quoteIdent } from '../../compile/quote.js';
import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { sqlFix } from '../fix.js';

export const rls023 = defineRule({
  code: 'RLS023',
  name: 'persistent-tenant-default',
  severity: 'error',
  title: 'A database or role default sets the tenant',
  description:
    "ALTER DATABASE ... SET or ALTER ROLE ... SET gives the tenant setting a default value. Every new session then starts as that tenant: a connection that never set a tenant, or whose transaction-local tenant has ended, reads and writes that tenant's rows instead of none.",
  remediation: 'RESET the setting on the database or role; set the tenant per transaction (set_config(name, value, true)) in the application.',
  check(ctx) {
    const findings: Finding[] = [];
    const setting = ctx.facts.setting?.toLowerCase();
    if (!setting) return findings;
    const settingSql = setting.split('.').map(quoteIdent).join('.');
    for (const s of ctx.catalog.settings) {
      if (s.name !== setting) continue;
      const where = s.database ? ` in database ${s.database}` : '';
      if (s.role) {
        findings.push(
          findingOf(
            rls023,
            { kind: 'role', name: s.role },
            `role ${s.role} has ${ctx.facts.setting} = '${s.value}' as its default${where}: its sessions start as that tenant`,
            sqlFix([`ALTER ROLE ${quoteIdent(s.role)}${s.database ? ` IN DATABASE ${quoteIdent(s.database)}` : ''} RESET ${settingSql};`]),
            s.database ?? '*',
          ),
        );
      } else if (s.database) {
        findings.push(
          findingOf(
            rls023,
            { kind: 'database', name: s.database },
            `database ${s.database} has ${ctx.facts.setting} = '${s.value}' as its default: every session starts as that tenant`,
            sqlFix([`ALTER DATABASE ${quoteIdent(s.database)} RESET ${settingSql};`]),
          ),
        );
      }
    }
    return findings;
  },
});
