import { Command } from 'commander';
import { parseDuration } from '../duration.js';
import { applyPlan, type ApplyResult } from '../../apply/apply-plan.js';
import { createProgress } from '../progress.js';
import { formatPlanJson, formatPlanText, statementJson, describeSummary, summarizePlan } from '../../plan/format-plan.js';
import { addCommonOptions, formatOf, note, useColor, write } from '../common.js';
import { planFromOptions, type PlanCommandOptions } from './plan.js';
import { makeChalk } from '../../report/format-text.js';
import { escapeTerminal } from '../../report/escape-terminal.js';

export function applyCommand(): Command {
  return addCommonOptions(new Command('apply'), ['text', 'json'])
    .description('bring the database to the policy file: minimal changes; a second run changes nothing')
    .option('--dry-run', 'print the plan only')
    .option('--prune', 'drop policies on managed tables that the file does not declare')
    .option('--schema <path>', 'SQL file or folder loaded into the embedded PostgreSQL first')
    .option(
      '--lock-timeout <duration>',
      'give up on a table lock after this long instead of queueing behind a long transaction (30s, 500ms, 2min; a bare number is seconds)',
      parseDuration,
      5000,
    )
    .option(
      '--statement-timeout <duration>',
      'statement_timeout of the transaction phase; index builds have none (a bare number is seconds)',
      parseDuration,
      60_000,
    )
    .option(
      '--transaction-timeout <duration>',
      'deadline of the whole policy transaction, however many lock waits it meets (a bare number is seconds)',
      parseDuration,
      60_000,
    )
    .addHelpText(
      'after',
      '\nExamples:\n  rlsctl apply --db "$DATABASE_URL" --dry-run\n  rlsctl apply --db "$DATABASE_URL"\n  rlsctl apply --schema db/migrations && rlsctl verify --schema db/migrations\n',
    )
    .action(async (options: PlanCommandOptions & { dryRun?: boolean; lockTimeout: number; statementTimeout: number; transactionTimeout: number }) => {
      const { db, plan } = await planFromOptions(options);
      try {
        const format = formatOf(options);
        if (options.dryRun) {
          if (format === 'json') write(formatPlanJson(plan, { command: 'apply', dryRun: true }));
          else write(formatPlanText(plan, { color: useColor(options), title: 'dry run: nothing is changed' }));
          return;
        }
        // On a terminal: one line that follows the statements and each index build (blocks done of
        // total). Elsewhere nothing, and no second connection to watch the builds.
        const progress = createProgress({ quiet: options.quiet });
        let result: ApplyResult;
        try {
          result = await applyPlan(db, plan, {
            onProgress: progress.active
              ? (line, event) => (event.kind === 'waiting-for-lock' || event.kind === 'replanning' ? progress.note(line) : progress.update(line))
              : undefined,
            lockTimeoutMs: options.lockTimeout,
            statementTimeoutMs: options.statementTimeout,
            transactionTimeoutMs: options.transactionTimeout,
          });
        } finally {
          progress.done();
        }
        const drift = result.plan.drift;
        if (format === 'json') {
          write(
            JSON.stringify(
              {
                version: 1,
                command: 'apply',
                statements: result.executed.map(statementJson),
                drift,
                summary: { ...summarizePlan({ statements: result.executed, drift }), replanned: result.replanned },
              },
              null,
              2,
            ) + '\n',
          );
          return;
        }
        const c = makeChalk(useColor(options));
        const lines: string[] = [];
        if (result.executed.length === 0) {
          lines.push(drift.length === 0 ? 'nothing to do: the database already matches the policy file' : 'nothing to change');
        } else {
          if (result.replanned) lines.push(c.dim('the database changed since the plan was made: planned again under the lock'));
          for (const s of result.executed)
            lines.push(`${c.green('applied')} ${escapeTerminal(s.summary)}${s.hazards.length ? c.dim(` [${s.hazards.join(', ')}]`) : ''}`);
          lines.push('', `applied ${describeSummary(summarizePlan({ statements: result.executed, drift: [] }))}`);
        }
        // With --prune the drift was dropped, and the statements above say so.
        if (!result.plan.source.prune) for (const d of drift) lines.push(`${c.yellow('drift')} ${escapeTerminal(d.message)}`);
        write(lines.join('\n') + '\n');
        if (db.embedded) note(options, 'the embedded PostgreSQL is thrown away on exit: this apply checked that the policy file applies to the schema');
      } finally {
        await db.close();
      }
    });
}
