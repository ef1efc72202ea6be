import { makeChalk } from '../report/format-text.js';
import { escapeTerminal } from '../report/escape-terminal.js';
import { changeObjectLabel, CHANGE_CLASSES, sortChanges, summarizeChanges, type ChangeClass, type ChangeSummary, type PolicyChange } from './policy-change.js';

/** What was compared, for the header lines: labels as the user named the sides. */
export interface DiffSides {
  base: string;
  head: string;
}

/** The spec's JSON (cli.md, "diff"): exactly one document, the four keys of a change and nothing else. */
export function formatDiffJson(changes: PolicyChange[]): string {
  const sorted = sortChanges(changes).map((c) => ({ object: c.object, change: c.change, class: c.class, message: c.message }));
  return JSON.stringify({ version: 1, command: 'diff', changes: sorted, summary: summarizeChanges(changes) }, null, 2) + '\n';
}

export function formatDiffText(changes: PolicyChange[], sides: DiffSides, options: { color: boolean }): string {
  const c = makeChalk(options.color);
  const paint: Record<ChangeClass, (s: string) => string> = { widening: c.red.bold, narrowing: c.yellow, neutral: c.dim };
  const lines = [c.dim(escapeTerminal(`${sides.base} -> ${sides.head}`))];
  const width = Math.max(...CHANGE_CLASSES.map((k) => k.length));
  for (const change of sortChanges(changes)) {
    lines.push(
      `${paint[change.class](change.class.padEnd(width))}  ${c.bold(escapeTerminal(`${change.object.kind} ${changeObjectLabel(change.object)}`))}: ${escapeTerminal(change.change)}`,
    );
    lines.push(`${' '.repeat(width + 2)}${escapeTerminal(change.message)}`);
  }
  if (changes.length === 0) lines.push('no change in meaning');
  lines.push(
    '',
    summaryLine(summarizeChanges(changes), (k, s) => paint[k](s)),
  );
  return lines.join('\n') + '\n';
}

/**
 * A pull-request comment: the verdict on the first line, widening changes
 * first, and under each change the SQL it would run, folded. Every piece of
 * text that comes from the policy files is escaped, so a table or policy name
 * cannot inject markup into the comment.
 */
export function formatDiffMarkdown(changes: PolicyChange[], sides: DiffSides): string {
  const summary = summarizeChanges(changes);
  const lines: string[] = [verdict(summary), ''];
  lines.push(`${summaryLine(summary, (_, s) => s)}, comparing ${code(sides.base)} (base) with ${code(sides.head)} (head).`, '');
  const sorted = sortChanges(changes);
  for (const klass of CHANGE_CLASSES) {
    const group = sorted.filter((ch) => ch.class === klass);
    if (group.length === 0) continue;
    lines.push(`### ${TITLE[klass]} (${group.length})`, '');
    for (const change of group) {
      lines.push(`- **${escapeMarkdown(change.object.kind)} ${code(changeObjectLabel(change.object))}**: ${escapeMarkdown(change.change)}  `);
      lines.push(`  ${escapeMarkdown(change.message)}`);
      if (change.sql.length > 0) {
        lines.push(
          '',
          '  <details><summary>SQL</summary>',
          '',
          ...fenced(change.sql.join('\n'), 'sql').map((l) => (l === '' ? '' : `  ${l}`)),
          '',
          '  </details>',
        );
      }
      lines.push('');
    }
  }
  lines.push(
    '<sub>rlsctl diff: widening = someone can read or write more than before. The SQL is what the head policy file compiles to, relative to the base; run <code>rlsctl plan</code> against a database for what <code>apply</code> will run there.</sub>',
  );
  // A marker for CI scripts that update their earlier comment instead of adding one.
  lines.push('<!-- rlsctl-diff -->', '');
  return lines.join('\n');
}

const TITLE: Record<ChangeClass, string> = { widening: 'Widening', narrowing: 'Narrowing', neutral: 'Neutral' };

function verdict(s: ChangeSummary): string {
  if (s.widening > 0) {
    return `:warning: **This change widens tenant access**: ${plural(s.widening, 'change')} let${s.widening === 1 ? 's' : ''} someone read or write more than before. Review ${s.widening === 1 ? 'it' : 'them'} before merging.`;
  }
  if (s.narrowing > 0)
    return `**No change widens access**: ${plural(s.narrowing, 'change')} narrow${s.narrowing === 1 ? 's' : ''} it; application queries may see fewer rows or have writes refused.`;
  if (s.neutral > 0) return `**No change to who can read or write what**: ${plural(s.neutral, 'neutral change')} only.`;
  return '**No change** to the meaning of the policy file.';
}

function summaryLine(s: ChangeSummary, paint: (k: ChangeClass, s: string) => string): string {
  return CHANGE_CLASSES.map((k) => paint(k, `${s[k]} ${k}`)).join(', ');
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * Text in a Markdown paragraph: backslash-escape Markdown punctuation and
 * entity-encode what GitHub would read as HTML.
 */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/[\\`*_{}[\]()#+!|~]/g, (ch) => `\\${ch}`)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\r?\n/g, ' ');
}

/** A code span that holds any text: the fence is one backtick longer than the longest run inside. */
export function code(text: string): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((r) => r.length));
  const fence = '`'.repeat(longest + 1);
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${text.replace(/\r?\n/g, ' ')}${pad}${fence}`;
}

/** A fenced block that no line of the content can close early. */
function fenced(text: string, lang: string): string[] {
  const longest = Math.max(2, ...(text.match(/`+/g) ?? []).map((r) => r.length));
  const fence = '`'.repeat(longest + 1);
  return [`${fence}${lang}`, ...text.split('\n'), fence];
}
