import { Chalk, type ChalkInstance } from 'chalk';
import { objectLabel, sortFindings, summarize, type Finding, type Severity } from './finding.js';
import { escapeTerminal, escapeTerminalBlock } from './escape-terminal.js';

export function makeChalk(color: boolean): ChalkInstance {
  return new Chalk({ level: color ? 1 : 0 });
}

const MARK: Record<Severity, string> = { error: 'error', warning: 'warning', info: 'info' };
const RANK: Record<Severity, number> = { error: 0, warning: 1, info: 2 };

/** Findings grouped by object, with a one-line summary at the end. */
export function formatFindingsText(findings: Finding[], options: { color: boolean; header?: string[] }): string {
  const c = makeChalk(options.color);
  const paint: Record<Severity, (s: string) => string> = { error: c.red.bold, warning: c.yellow, info: c.cyan };
  const lines: string[] = [...(options.header ?? [])];
  const groups = new Map<string, Finding[]>();
  for (const f of sortFindings(findings)) {
    const where = f.location ? `${f.location.file}:${f.location.line}:${f.location.column}` : '';
    const key = escapeTerminal(`${f.object.kind} ${objectLabel(f.object)}${where && f.object.kind !== 'policy_file' ? ` (${where})` : ''}`);
    const group = groups.get(key) ?? [];
    group.push(f);
    groups.set(key, group);
  }
  // The most severe groups first (an object with an error before one with only
  // warnings), then by object: errors are what a reader must see first.
  const worst = (group: Finding[]) => Math.min(...group.map((f) => RANK[f.severity]));
  for (const [key, group] of [...groups].sort((a, b) => worst(a[1]) - worst(b[1]) || a[0].localeCompare(b[0]))) {
    lines.push(c.bold(key));
    for (const f of group) {
      const where = f.object.kind === 'policy_file' && f.location ? `${f.location.file}:${f.location.line}:${f.location.column} ` : '';
      lines.push(`  ${paint[f.severity](MARK[f.severity])} ${c.dim(`${f.rule} ${f.name}`)} ${escapeTerminal(where + f.message)}`);
      // The fix's SQL as JSON carries it; a fix that is not runnable says what to decide instead.
      const label = f.fix && !f.fix.runnable ? 'to decide: ' : 'fix: ';
      if (f.help)
        lines.push(
          ...escapeTerminalBlock(f.help)
            .split('\n')
            .map((l, i) => `    ${i === 0 ? c.dim(label) : ' '.repeat(label.length)}${l}`),
        );
    }
  }
  const s = summarize(findings);
  if (lines.length > (options.header?.length ?? 0)) lines.push('');
  lines.push(
    findings.length === 0
      ? c.green('no findings')
      : `${paint.error(`${s.error} error${s.error === 1 ? '' : 's'}`)}, ${paint.warning(`${s.warning} warning${s.warning === 1 ? '' : 's'}`)}, ${paint.info(`${s.info} info`)}`,
  );
  return lines.join('\n') + '\n';
}
