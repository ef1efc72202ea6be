import { Command } from 'commander';
import type pg from 'pg';
import { openDatabase, resolveConnection, type Database } from '../../db/connection.js';
import { convergeDatabase } from '../../apply/converge.js';
import { buildPlan } from '../../plan/build-plan.js';
import type { PolicyModel } from '../../policy/model.js';
import { factsFromModel, inferFacts, type TenantFacts } from '../../facts/resolve-facts.js';
import { asAuditError, runAudit, setScanTimeouts, withReadOnlyTransaction, type AuditResult } from '../../audit/run-audit.js';
import type { PlanFacts } from '../../audit/audit-context.js';
import { AUDIT_RULES } from '../../audit/registry.js';
import { failsAt, type Finding } from '../../report/finding.js';
import { formatFindingsJson } from '../../report/format-json.js';
import { formatSarif } from '../../report/format-sarif.js';
import { formatFindingsText, makeChalk } from '../../report/format-text.js';
import { applyBaseline, baselineOf, formatBaseline, readBaseline } from '../../report/baseline.js';
import { VERSION } from '../../version.js';
import { choosePolicyModel } from '../choose-policy.js';
import { parseDuration } from '../duration.js';
import { splitSchemaOption } from '../schema-option.js';
import { addCommonOptions, addFactOptions, addFailOn, failOnOf, formatOf, note, useColor, write, writeFileAtomic, type CommonOptions } from '../common.js';
import { escapeTerminal } from '../../report/escape-terminal.js';
import { buildFixScript } from '../../audit/fix-script.js';
import { UsageError } from '../../errors.js';

interface AuditCliOptions extends CommonOptions {
  schema?: string[];
  tenantColumn?: string;
  tenantSetting?: string;
  appRole?: string[];
  bypassRole?: string[];
  failOn?: string;
  baseline?: string;
  writeBaseline?: string;
  fixScript?: string;
  fixWarnings?: boolean;
  statementTimeout: number;
}

export function auditCommand(): Command {
  return addFailOn(addFactOptions(addCommonOptions(new Command('audit'), ['text', 'json', 'sarif'])))
    .description('read-only scan of the catalog for isolation holes and missing tenant indexes')
    .option('--baseline <file>', 'hide the findings whose fingerprints this baseline file holds')
    .option('--write-baseline <file>', 'write the fingerprints of the current findings to FILE (they are then accepted: the run exits 0)')
    .option('--fix-script <file>', 'write every runnable fix of the errors as one SQL script to review and run with psql (see docs/audit.md)')
    .option('--fix-warnings', 'with --fix-script: the fixes of warnings too')
    .option('--statement-timeout <duration>', 'time limit of each catalog query (30s, 500ms, 2min; a bare number is seconds)', parseDuration, 30_000)
    .addHelpText(
      'after',
      [
        '',
        'The scan runs in one READ ONLY transaction (REPEATABLE READ, with a statement_timeout) that is rolled',
        'back: it cannot write, and needs no privilege beyond connecting (see docs/audit.md).',
        '',
        'Facts: with a policy file (--policies, default policies/) the tenant tables, roles and setting are',
        "exactly the file's; without one, say them with --schema NAME, --tenant-column, --tenant-setting,",
        '--app-role, --bypass-role, and what they leave unsaid is inferred from the catalog.',
        '',
        'Examples:',
        '  rlsctl audit --db "$DATABASE_URL"',
        '  rlsctl audit --db "$DATABASE_URL" --schema app --tenant-column org_id --app-role app_user --format sarif > rlsctl.sarif',
        '  rlsctl audit --db "$DATABASE_URL" --write-baseline .rlsctl-baseline.json   # adopt on an old database',
        '  rlsctl audit --db "$DATABASE_URL" --baseline .rlsctl-baseline.json         # fail only on new holes',
        '  rlsctl audit --db "$DATABASE_URL" --fix-script fixes.sql                    # the fixes, to review, then psql -f',
        '  rlsctl audit --schema db/migrations                                         # embedded PostgreSQL, policies/ applied',
        '',
      ].join('\n'),
    )
    .action(async (options: AuditCliOptions, command: Command) => {
      const format = formatOf(options);
      if (options.fixWarnings && !options.fixScript) throw new UsageError('--fix-warnings needs --fix-script FILE');
      const timeout = options.statementTimeout;
      const embedded = resolveConnection(options.db).kind === 'embedded';
      const { names, sqlPath } = splitSchemaOption(options.schema, embedded);
      const model = await choosePolicyModel(options, command, names, 'audit');
      // Read the baseline before any server starts: a bad file is exit 2 at once.
      const baseline = options.baseline ? await readBaseline(options.baseline) : undefined;

      const db = await openDatabase({
        db: options.db,
        schema: sqlPath,
        prepareEmbedded: model ? (database) => convergeDatabase(database, model) : undefined,
      });
      let result: AuditResult;
      const progress = startProgress(options);
      try {
        if (db.embedded)
          note(options, `no database named: auditing ${db.label}${sqlPath ? ` loaded from ${sqlPath}` : ''}${model ? ', with the policy file applied' : ''}`);
        const client = await db.connect();
        try {
          result = await withReadOnlyTransaction(
            client,
            async () => {
              const facts: TenantFacts = model
                ? factsFromModel(model)
                : await inferFacts(
                    {
                      schema: names,
                      tenantColumn: options.tenantColumn,
                      tenantSetting: options.tenantSetting,
                      appRole: options.appRole,
                      bypassRole: options.bypassRole,
                    },
                    client,
                  );
              return runAudit(client, facts, {
                transaction: 'caller',
                plan: model ? () => planOnSecondConnection(db, model, timeout) : undefined,
                onProgress: progress.step,
              });
            },
            timeout,
          ).catch((error: unknown) => {
            throw asAuditError(error);
          });
        } finally {
          await client.end().catch(() => undefined);
        }
      } finally {
        progress.stop();
        await db.close();
      }

      if (options.verbose) {
        const s = result.stats;
        note(
          options,
          `scanned ${s.relations} relations and ${s.policies} policies (${s.expressionsParsed} distinct expressions parsed): catalog ${s.catalogMs} ms, rules ${s.rulesMs} ms`,
        );
        note(
          options,
          `  per query (ms): ${Object.entries(s.queries)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}`,
        );
      }
      let shown: Finding[] = result.findings;
      let hidden = 0;
      let stale: string[] = [];
      if (baseline) {
        const split = applyBaseline(result.findings, baseline);
        shown = split.shown;
        hidden = split.hidden.length;
        stale = split.fixed;
      }
      if (options.fixScript) {
        // The findings the report shows (a baseline's accepted ones are not fixed); the exit code does not change.
        const script = buildFixScript(shown, {
          warnings: options.fixWarnings ?? false,
          header: [`Fixes written by rlsctl audit ${VERSION} for ${db.label}, PostgreSQL ${result.server.version}.`],
        });
        await writeFileAtomic(options.fixScript, script.text);
        note(
          options,
          `wrote the fixes of ${script.fixed} finding${script.fixed === 1 ? '' : 's'} to ${options.fixScript}${script.manual > 0 ? ` (${script.manual} more need a decision: listed at its end)` : ''}`,
        );
      }
      if (options.writeBaseline) {
        // Writing a baseline accepts the current findings: adoption on an old
        // database is `--write-baseline` once, then `--baseline` in CI.
        const written = baselineOf('audit', result.findings);
        await writeFileAtomic(options.writeBaseline, formatBaseline(written));
        note(options, `wrote ${written.fingerprints.length} fingerprint${written.fingerprints.length === 1 ? '' : 's'} to ${options.writeBaseline}`);
        hidden = result.findings.length;
        shown = [];
      }

      if (format === 'json') {
        write(
          formatFindingsJson('audit', shown, {
            context: {
              serverVersion: result.server.version,
              facts: result.facts.source,
              inferred: result.facts.inferred,
              ...(baseline || options.writeBaseline ? { baseline: { hidden, stale: stale.length } } : {}),
            },
          }),
        );
      } else if (format === 'sarif') {
        write(formatSarif(shown, [...AUDIT_RULES], VERSION));
      } else {
        write(formatFindingsText(shown, { color: useColor(options), header: textHeader(result, db, options, hidden, stale) }));
      }
      if (failsAt(shown, failOnOf(options))) process.exitCode = 1;
    });
}

/**
 * Where the facts come from. A policy file named with --policies is the
 * source, and fact flags beside it are a contradiction (exit 2). Fact flags
 * without --policies mean "this database, these facts": the default
 * policies/ folder is then not read, so that an audit of a production
 * database from a project checkout says what it was asked to. Neither: the
 * policies/ folder if it exists, else inference from the catalog.
 */

/**
 * The planner round-trips expressions through temporary tables, which a READ
 * ONLY transaction forbids: it runs on a second connection, in a transaction
 * of its own that it rolls back. Its snapshot is a moment later than the
 * scan's; on a database under migration the two may differ by that moment.
 * It has the scan's statement_timeout and lock_timeout, for its session.
 */
async function planOnSecondConnection(db: Database, model: PolicyModel, statementTimeoutMs: number): Promise<PlanFacts> {
  const client: pg.Client = await db.connect();
  try {
    await setScanTimeouts(client, statementTimeoutMs, false);
    return await buildPlan(client, model);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function textHeader(result: AuditResult, db: Database, options: AuditCliOptions, hidden: number, stale: string[]): string[] {
  const c = makeChalk(useColor(options));
  const lines = [c.bold(escapeTerminal(`rlsctl audit of ${db.label}, PostgreSQL ${result.server.version}`))];
  if (result.facts.source === 'policy-file') {
    lines.push(c.dim(escapeTerminal(`facts from the policy file ${result.facts.model?.files.join(', ')}`)));
  } else {
    lines.push(c.dim('facts inferred from the catalog (say them with flags, or use a policy file, to be exact):'));
    for (const line of result.facts.inferred) lines.push(c.dim(`  ${escapeTerminal(line)}`));
  }
  if (hidden > 0) lines.push(c.dim(`${hidden} finding${hidden === 1 ? '' : 's'} hidden by the baseline`));
  if (stale.length > 0)
    lines.push(
      c.dim(
        `${stale.length} baseline entr${stale.length === 1 ? 'y' : 'ies'} no longer found (fixed): ${escapeTerminal(stale.slice(0, 5).join(', '))}${stale.length > 5 ? ', ...' : ''}`,
      ),
    );
  lines.push('');
  return lines;
}

/** A progress line on stderr, only on a terminal, only once the scan has taken more than a second. */
function startProgress(options: CommonOptions): { step: (s: string) => void; stop: () => void } {
  if (options.quiet || !process.stderr.isTTY) return { step: () => undefined, stop: () => undefined };
  let current = 'connecting';
  let shown = false;
  const draw = () => {
    shown = true;
    process.stderr.write(`\r\x1b[2Kaudit: ${escapeTerminal(current)}...`);
  };
  const timer = setTimeout(draw, 1000);
  return {
    step(s: string) {
      current = s;
      if (shown) draw();
    },
    stop() {
      clearTimeout(timer);
      if (shown) process.stderr.write('\r\x1b[2K');
    },
  };
}
