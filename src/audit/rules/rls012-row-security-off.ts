import { quoteIdent } from '../../compile/quote.js';
import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { sqlFix } from '../fix.js';
import { rowSecurityIsOff } from '../../rls/row-security-subjects.js';

export const rls012 = defineRule({
  code: 'RLS012',
  name: 'row-security-off',
  severity: 'error',
  title: 'row_security = off as a database or role default',
  description:
    'With row_security = off, every query that row level security would filter raises an error instead ("query would be affected by row-level security policy") for every role that does not bypass RLS. Set as a default for the database, or for a role the application uses, it turns isolation into an outage. For roles that bypass RLS it changes nothing and is not reported.',
  remediation:
    'ALTER DATABASE ... RESET row_security / ALTER ROLE ... RESET row_security. Keep row_security = off for pg_dump sessions only, where it makes a dump fail instead of silently missing rows.',
  check(ctx) {
    const findings: Finding[] = [];
    for (const s of ctx.catalog.settings) {
      if (s.name !== 'row_security' || !rowSecurityIsOff(s.value)) continue;
      if (s.role && ctx.bypassesByAttribute(s.role)) continue;
      const where = s.database ? ` in database ${s.database}` : '';
      if (s.role) {
        findings.push(
          findingOf(
            rls012,
            { kind: 'role', name: s.role },
            `role ${s.role} has row_security = off as its default${where}: its queries of RLS tables fail with an error`,
            sqlFix([`ALTER ROLE ${quoteIdent(s.role)}${s.database ? ` IN DATABASE ${quoteIdent(s.database)}` : ''} RESET row_security;`]),
            s.database ?? '*',
          ),
        );
      } else if (s.database) {
        findings.push(
          findingOf(
            rls012,
            { kind: 'database', name: s.database },
            `database ${s.database} has row_security = off as its default: queries of RLS tables fail with an error for every role that does not bypass RLS`,
            sqlFix([`ALTER DATABASE ${quoteIdent(s.database)} RESET row_security;`]),
          ),
        );
      }
    }
    // The server's own configuration (postgresql.conf, the command line).
    const rs = ctx.catalog.server.rowSecurity;
    if (rowSecurityIsOff(rs.setting) && !['default', 'database', 'user', 'database user', 'session', 'client'].includes(rs.source)) {
      findings.push(
        findingOf(
          rls012,
          { kind: 'database', name: ctx.catalog.server.database },
          `the server sets row_security = off (source: ${rs.source}): queries of RLS tables fail with an error for every role that does not bypass RLS`,
          sqlFix(['ALTER SYSTEM RESET row_security;', 'SELECT pg_catalog.pg_reload_conf();'], {
            note: 'if postgresql.conf (not postgresql.auto.conf) sets it, remove it there before reloading',
          }),
          'server',
        ),
      );
    }
    return findings;
  },
});
