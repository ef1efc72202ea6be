import type { Hazard, Statement } from '../compile/statement.js';
import { makeChalk } from '../report/format-text.js';
import { escapeTerminal, escapeTerminalBlock } from '../report/escape-terminal.js';
import { plural, type Plan, type PlanDrift } from './plan.js';
import { hazardReasons } from './hazard-reasons.js';

/** Plan → text (a commented SQL script for people), json (for machines), markdown (a pull-request comment). */

const HAZARDS: Hazard[] = ['AUTHZ_WIDENS', 'AUTHZ_NARROWS', 'DROP', 'INDEX_BUILD', 'TABLE_LOCK'];

export interface PlanSummary {
  statements: number;
  transaction: number;
  concurrent: number;
  drift: number;
  hazards: Record<Hazard, number>;
}

export function summarizePlan(plan: Pick<Plan, 'statements' | 'drift'>): PlanSummary {
  const hazards = Object.fromEntries(HAZARDS.map((h) => [h, 0])) as Record<Hazard, number>;
  for (const s of plan.statements) for (const h of s.hazards) hazards[h]++;
  return {
    statements: plan.statements.length,
    transaction: plan.statements.filter((s) => s.phase === 'transaction').length,
    concurrent: plan.statements.filter((s) => s.phase === 'concurrent').length,
    drift: plan.drift.length,
    hazards,
  };
}

export function describeSummary(summary: PlanSummary): string {
  if (summary.statements === 0 && summary.drift === 0) return 'nothing to do: the database matches the policy file';
  const parts: string[] = [];
  if (summary.statements > 0) {
    const phases = [
      summary.transaction > 0 ? `${summary.transaction} in one transaction` : '',
      summary.concurrent > 0 ? `${summary.concurrent} ${summary.transaction > 0 ? 'outside it' : 'outside any transaction'} for indexes` : '',
    ].filter(Boolean);
    parts.push(`${plural(summary.statements, 'statement')} (${phases.join(', ')})`);
  } else parts.push('no statement');
  const hazards = HAZARDS.filter((h) => summary.hazards[h] > 0).map((h) => `${h} ${summary.hazards[h]}`);
  if (hazards.length > 0) parts.push(`hazards: ${hazards.join(', ')}`);
  if (summary.drift > 0) parts.push(`${summary.drift} drift`);
  return parts.join('; ');
}

export function statementJson(s: Statement): Record<string, unknown> {
  return { sql: s.sql, target: s.target, hazards: s.hazards, reasons: hazardReasons(s), phase: s.phase, summary: s.summary };
}

export function formatPlanJson(plan: Plan, extra: Record<string, unknown> = {}): string {
  return (
    JSON.stringify(
      {
        version: 1,
        command: 'plan',
        statements: plan.statements.map(statementJson),
        drift: plan.drift,
        summary: summarizePlan(plan),
        catalogHash: plan.catalogHash,
        ...extra,
      },
      null,
      2,
    ) + '\n'
  );
}

export function formatPlanText(plan: Pick<Plan, 'statements' | 'drift'>, options: { color: boolean; title?: string }): string {
  const c = makeChalk(options.color);
  const paint = (h: Hazard) => (h === 'AUTHZ_WIDENS' ? c.red.bold(h) : h === 'DROP' ? c.yellow(h) : h === 'AUTHZ_NARROWS' ? c.cyan(h) : c.dim(h));
  const lines: string[] = [];
  if (options.title) lines.push(c.bold(`-- ${options.title}`), '');
  let phase: Statement['phase'] | undefined;
  plan.statements.forEach((s, i) => {
    if (s.phase !== phase) {
      phase = s.phase;
      lines.push(
        c.bold(
          phase === 'transaction'
            ? '-- In one transaction (all or nothing), under the apply lock:'
            : '-- Then one by one, outside any transaction (CREATE INDEX CONCURRENTLY cannot run inside one):',
        ),
      );
    }
    lines.push(c.dim(`-- [${i + 1}] ${escapeTerminal(s.summary)}`));
    if (s.hazards.length > 0) lines.push(`--     hazards: ${s.hazards.map(paint).join(', ')}`);
    for (const r of hazardReasons(s))
      if (r.code === 'AUTHZ_WIDENS' || r.code === 'AUTHZ_NARROWS') lines.push(`--       ${paint(r.code)}: ${escapeTerminal(r.message)}`);
    lines.push(escapeTerminalBlock(s.sql), '');
  });
  if (plan.drift.length > 0) lines.push(...formatDriftText(plan.drift, c.bold), '');
  lines.push(describeSummary(summarizePlan(plan)));
  return lines.join('\n') + '\n';
}

function formatDriftText(drift: PlanDrift[], bold: (s: string) => string): string[] {
  return [bold('-- Drift:'), ...drift.map((d) => `--   ${escapeTerminal(d.message)}`)];
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function formatPlanMarkdown(plan: Pick<Plan, 'statements' | 'drift'>, options: { title?: string } = {}): string {
  const summary = summarizePlan(plan);
  const lines: string[] = [`### ${options.title ?? 'rlsctl plan'}`, ''];
  if (summary.statements === 0 && summary.drift === 0) {
    lines.push('No change: the database matches the policy file.');
    return lines.join('\n') + '\n';
  }
  const widening = summary.hazards.AUTHZ_WIDENS;
  lines.push(
    `${widening > 0 ? `**:warning: ${plural(widening, 'statement')} ${widening === 1 ? 'widens' : 'widen'} access.** ` : ''}${describeSummary(summary)}.`,
    '',
  );
  if (plan.statements.length > 0) {
    lines.push('| # | phase | object | change | hazards |', '| ---: | --- | --- | --- | --- |');
    plan.statements.forEach((s, i) => {
      const object = !('table' in s.target) ? `${s.target.schema}.${s.target.name}` : `${s.target.schema}.${s.target.table} ${s.target.kind} ${s.target.name}`;
      const hazards = s.hazards.map((h) => (h === 'AUTHZ_WIDENS' ? `**\`${h}\`**` : `\`${h}\``)).join(' ');
      const why = hazardReasons(s)
        .filter((r) => r.code === 'AUTHZ_WIDENS' || r.code === 'AUTHZ_NARROWS')
        .map((r) => `<br>${r.code === 'AUTHZ_WIDENS' ? '**widens**' : 'narrows'}: ${cell(r.message)}`)
        .join('');
      lines.push(`| ${i + 1} | ${s.phase} | \`${cell(object)}\` | ${cell(s.summary)}${why} | ${hazards} |`);
    });
    lines.push('', '<details><summary>SQL</summary>', '', '```sql', ...plan.statements.map((s) => s.sql), '```', '', '</details>');
  }
  if (plan.drift.length > 0) {
    lines.push('', '**Drift** (apply leaves these unless run with `--prune`):', '', ...plan.drift.map((d) => `- ${cell(d.message)}`));
  }
  return lines.join('\n') + '\n';
}
