import { makeChalk } from '../report/format-text.js';
import { escapeTerminal, escapeTerminalBlock } from '../report/escape-terminal.js';
import { sortFindings, summarize, type Severity } from '../report/finding.js';
import type { ExplainContext, ExplainFinding, QueryOutcome } from './run-explain.js';

/**
 * The text report of explain: per query (name and file:line), each finding
 * with the table, the plan node, the offending plan fragment as EXPLAIN's
 * text format prints it, and the fix as SQL; then what was planned as whom,
 * and whether hypopg could try the suggested indexes.
 */
export function formatExplainText(findings: ExplainFinding[], queries: QueryOutcome[], context: ExplainContext, options: { color: boolean }): string {
  const c = makeChalk(options.color);
  const paint: Record<Severity, (s: string) => string> = { error: c.red.bold, warning: c.yellow, info: c.cyan };
  const lines: string[] = [];
  // Queries in file order (the order they were read), findings within a query by severity and rule.
  const fileOrder = new Map<string, number>();
  for (const q of queries) if (q.file !== undefined && !fileOrder.has(q.file)) fileOrder.set(q.file, fileOrder.size);
  const groups = new Map<string, { order: [number, number, string]; findings: ExplainFinding[] }>();
  for (const f of sortFindings(findings) as ExplainFinding[]) {
    const at = f.location ? `${f.location.file}:${f.location.line}` : '';
    const key = `query ${f.object.name}${at && at !== f.object.name ? ` (${at})` : ''}`;
    const group = groups.get(key) ?? { order: [fileOrder.get(f.location?.file ?? '') ?? fileOrder.size, f.location?.line ?? 0, f.object.name], findings: [] };
    group.findings.push(f);
    groups.set(key, group);
  }
  const ordered = [...groups].sort(([, a], [, b]) => a.order[0] - b.order[0] || a.order[1] - b.order[1] || a.order[2].localeCompare(b.order[2]));
  for (const [key, group] of ordered) {
    lines.push(c.bold(escapeTerminal(key)));
    for (const f of group.findings) {
      const headline = f.detail?.headline ? `${f.detail.table}: ${f.detail.headline}` : f.message;
      lines.push(`  ${paint[f.severity](f.severity)} ${c.dim(`${f.rule} ${f.name}`)} ${escapeTerminal(headline)}`);
      if (f.detail?.fragment) f.detail.fragment.forEach((l, i) => lines.push(`    ${i === 0 ? c.dim('plan: ') : '      '}${escapeTerminal(l)}`));
      if (f.help)
        escapeTerminalBlock(f.help)
          .split('\n')
          .forEach((l, i) => lines.push(`    ${i === 0 ? c.dim('fix:  ') : '      '}${l}`));
    }
    lines.push('');
  }
  const planned = queries.filter((q) => q.planned).length;
  const s = summarize(findings);
  lines.push(
    `${planned} of ${queries.length} quer${queries.length === 1 ? 'y' : 'ies'} planned as ${escapeTerminal(context.role)}${context.policyRole !== context.role ? ` (a member of ${escapeTerminal(context.policyRole)}, an app role of the policy file)` : ''} with ${escapeTerminal(context.setting)} = '${escapeTerminal(context.settingValue ?? context.tenant)}' on PostgreSQL ${context.serverVersion}, each as is and with sequential scans disabled (generic plans for parameters)`,
  );
  lines.push(
    context.hypopg.used
      ? `hypopg ${context.hypopg.version}: each suggested index was tried as a hypothetical index`
      : context.hypopg.installed
        ? 'hypopg is installed but was not used: suggested indexes were not tried'
        : context.hypopg.available
          ? 'hypopg: available on the server but not installed in this database (CREATE EXTENSION hypopg; to have each suggested index tried as a hypothetical index)'
          : 'hypopg: not available on this server; suggested indexes were not tried as hypothetical indexes',
  );
  lines.push(
    findings.length === 0
      ? c.green('no findings: every tenant table is read by an index seek on its tenant column')
      : `${paint.error(`${s.error} error${s.error === 1 ? '' : 's'}`)}, ${paint.warning(`${s.warning} warning${s.warning === 1 ? '' : 's'}`)}, ${paint.info(`${s.info} info`)}`,
  );
  return lines.join('\n') + '\n';
}
