import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { KNOWN_CVES, affects, splitVersion, versionLabel } from '../known-cves.js';
import { defineRule } from '../rule.js';
import { manualFix } from '../fix.js';

export const rls070 = defineRule({
  code: 'RLS070',
  name: 'vulnerable-server-version',
  severity: 'error',
  title: 'The server has a known row level security bug that the schema is exposed to',
  description:
    "The server's minor version is older than the release that fixed a published PostgreSQL security bug in row level security (CVE), and the schema uses the feature the bug needs. rlsctl keeps a table of these bugs (src/audit/known-cves.ts, docs/rules/RLS070.md) and compares it with server_version_num.",
  remediation:
    'Update PostgreSQL to the latest minor release of its major version: a minor update replaces the binaries and restarts the server, with no dump and restore.',
  check(ctx) {
    const findings: Finding[] = [];
    const [major, minor] = splitVersion(ctx.serverVersionNum);
    const running = versionLabel(major, minor);
    for (const cve of KNOWN_CVES) {
      const hit = affects(cve, ctx.serverVersionNum);
      if (!hit.affected) continue;
      const objects = cve.exposure.objects(ctx);
      if (objects.length === 0) continue;
      const shown = objects.length <= 3 ? objects.join(', ') : `${objects.slice(0, 3).join(', ')} and ${objects.length - 3} more`;
      findings.push(
        findingOf(
          rls070,
          { kind: 'database', name: ctx.catalog.server.database },
          `PostgreSQL ${running} is affected by ${cve.id} (${cve.title}; ${hit.fixedIn ? `fixed in ${hit.fixedIn}` : 'no fix on this major: it is out of support'}), and this database has ${cve.exposure.description}: ${shown}`,
          manualFix(
            hit.fixedIn
              ? `update the server to PostgreSQL ${hit.fixedIn} or later (a minor update); see ${cve.source}`
              : `upgrade to a supported major version; see ${cve.source}`,
          ),
          cve.id,
        ),
      );
    }
    return findings;
  },
});
