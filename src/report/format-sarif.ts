import { objectLabel, sortFindings, type Finding, type RuleMeta, type Severity } from './finding.js';

const LEVEL: Record<Severity, 'error' | 'warning' | 'note'> = { error: 'error', warning: 'warning', info: 'note' };

/**
 * SARIF 2.1.0: each rule in tool.driver.rules, each finding a result with a
 * stable partialFingerprints entry so code scanning tracks it across runs.
 * Findings about database objects get a logical location; findings with a
 * file location (policy files, query files) a physical one.
 */
export function formatSarif(
  findings: Finding[],
  rules: RuleMeta[],
  version: string,
  docsBase = 'https://github.com/rlsctl/rlsctl/blob/main/docs/rules',
): string {
  const sorted = sortFindings(findings);
  const used = new Set(sorted.map((f) => f.rule));
  const driverRules = rules
    .filter((r) => used.has(r.code))
    .sort((a, b) => a.code.localeCompare(b.code))
    .map((r) => ({
      id: r.code,
      name: r.name,
      shortDescription: { text: r.title },
      fullDescription: { text: r.description },
      help: { text: r.remediation, markdown: r.remediation },
      helpUri: `${docsBase}/${r.code}.md`,
      defaultConfiguration: { level: LEVEL[r.severity] },
    }));
  const index = new Map(driverRules.map((r, i) => [r.id, i]));
  const results = sorted.map((f) => {
    const location = f.location
      ? {
          physicalLocation: {
            artifactLocation: { uri: f.location.file.replace(/\\/g, '/') },
            region: { startLine: f.location.line, startColumn: f.location.column },
          },
          logicalLocations: [{ fullyQualifiedName: objectLabel(f.object), kind: f.object.kind }],
        }
      : { logicalLocations: [{ fullyQualifiedName: objectLabel(f.object), kind: f.object.kind }] };
    const result: Record<string, unknown> = {
      ruleId: f.rule,
      level: LEVEL[f.severity],
      message: { text: f.help ? `${f.message}\nFix: ${f.help}` : f.message },
      locations: [location],
      partialFingerprints: { 'rlsctlFingerprint/v1': f.fingerprint },
    };
    if (index.has(f.rule)) result.ruleIndex = index.get(f.rule);
    // The fix as data (sql, runnable, note), as the JSON output carries it.
    if (f.fix) result.properties = { fix: f.fix };
    return result;
  });
  const log = {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: { driver: { name: 'rlsctl', version, informationUri: 'https://github.com/rlsctl/rlsctl', rules: driverRules } },
        results,
      },
    ],
  };
  return JSON.stringify(log, null, 2) + '\n';
}
