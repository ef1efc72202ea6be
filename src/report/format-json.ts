import { sortFindings, summarize, type Finding } from './finding.js';

/** The spec's envelope: exactly one JSON document on stdout. */
export function formatFindingsJson(command: string, findings: Finding[], extra: Record<string, unknown> = {}): string {
  const sorted = sortFindings(findings).map((f) => {
    const out: Record<string, unknown> = {
      rule: f.rule,
      name: f.name,
      severity: f.severity,
      message: f.message,
      object: f.object,
    };
    if (f.help !== undefined) out.help = f.help;
    if (f.fix !== undefined) out.fix = f.fix;
    out.fingerprint = f.fingerprint;
    if (f.location) out.location = f.location;
    return out;
  });
  return JSON.stringify({ version: 1, command, findings: sorted, summary: summarize(findings), ...extra }, null, 2) + '\n';
}
