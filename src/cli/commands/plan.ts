import { Command } from 'commander';
import { loadPolicy } from '../../policy/load-policy.js';
import type { PolicyModel } from '../../policy/model.js';
import { asDatabaseError, openDatabase, type Database } from '../../db/connection.js';
import { buildPlan } from '../../plan/build-plan.js';
import { isConverged, planProblems, type Plan } from '../../plan/plan.js';
import { describeSummary, formatPlanJson, formatPlanMarkdown, formatPlanText, summarizePlan } from '../../plan/format-plan.js';
import { CheckFailed, UsageError } from '../../errors.js';
import { addCommonOptions, formatOf, note, useColor, write, type CommonOptions } from '../common.js';
import { MIGRATION_TOOLS, migrationTool } from '../../migration/registry.js';
import { checkMigrationName } from '../../migration/render.js';
import { writeMigration, type WrittenMigration } from '../../migration/write-migration.js';
import path from 'node:path';

export interface PlanCommandOptions extends CommonOptions {
  schema?: string;
  prune?: boolean;
}

/**
 * What plan and apply share: read the policy file (before starting any
 * database, so a bad file fails fast), open the database (the embedded
 * default loads --schema), plan, and refuse input the database contradicts.
 */
export async function planFromOptions(options: PlanCommandOptions): Promise<{ model: PolicyModel; db: Database; plan: Plan }> {
  const model = await loadPolicy(options.policies);
  const db = await openDatabase({ db: options.db, schema: options.schema });
  try {
    if (db.embedded) note(options, `no database named: using ${db.label}${options.schema ? `, loaded from ${options.schema}` : ''}`);
    const plan = await buildPlan(db.pool, model, { prune: options.prune });
    const problems = planProblems(plan);
    if (problems.length > 0) {
      throw new UsageError(`${problems.join('; ')}; nothing was planned`, { hint: problemHint(plan) });
    }
    return { model, db, plan };
  } catch (error) {
    await db.close();
    throw asDatabaseError(error, `planning against ${db.label}`);
  }
}

interface MigrationOptions {
  migration?: string;
  dir?: string;
  name?: string;
}

function describeMigration(written: WrittenMigration, plan: Plan): string {
  if (written.files.length === 0) {
    const drift = plan.drift.length > 0 ? ` (${plan.drift.length} drift: policies the file does not declare, dropped only with --prune)` : '';
    return `nothing to write: no statement to run${drift}\n`;
  }
  const files = written.files.map((f) => `wrote ${path.join(written.dir, f)}\n`).join('');
  return `${files}${written.tool} migration: ${describeSummary(summarizePlan(plan))}\n`;
}

function problemHint(plan: Plan): string {
  const hints: string[] = [];
  if (plan.missingTables.length > 0) hints.push('create the missing tables first (run your migrations), or remove them from the policy file');
  if (plan.undeclaredTables.length > 0) hints.push('declare every table of a managed schema: `tenant`, `shared`, or `{ mode: exempt, reason: ... }`');
  if (plan.missingColumns.length > 0) hints.push('check the tenant `column`, the `via` columns and the `indexes` of those tables');
  for (const v of plan.viaWithoutKey) hints.push(v.fix);
  if (plan.missingRoles.length > 0) hints.push('rlsctl does not create roles: create them first (CREATE ROLE ...)');
  return hints.join('; ');
}

export function planCommand(): Command {
  return addCommonOptions(new Command('plan'), ['text', 'json', 'markdown'])
    .description('print the statements `apply` would run against this database, with their hazards')
    .option('--check', 'exit 1 when the plan is not empty (drift)')
    .option('--schema <path>', 'SQL file or folder loaded into the embedded PostgreSQL first')
    .option('--prune', 'also drop policies on managed tables that the file does not declare')
    .option(
      '--migration <tool>',
      `write the plan as a migration for a tool instead of printing it: ${MIGRATION_TOOLS.map((t) => t.name).join(', ')} (docs/migrations.md)`,
    )
    .option('--dir <path>', "with --migration: the migrations folder, created if missing (default: the tool's own)")
    .option('--name <slug>', 'with --migration: the name in the file names (letters, digits, _ and -; default rlsctl_policies)')
    .addHelpText(
      'after',
      '\nExamples:\n  rlsctl plan --db "$DATABASE_URL"\n  rlsctl plan --check --format markdown > plan.md   # exit 1 on drift\n  rlsctl plan --schema db/migrations                # against an embedded PostgreSQL\n  rlsctl plan --db "$DATABASE_URL" --migration dbmate --dir db/migrations --name tenant_rls\n',
    )
    .action(async (options: PlanCommandOptions & MigrationOptions & { check?: boolean }) => {
      if (!options.migration && (options.dir !== undefined || options.name !== undefined)) {
        throw new UsageError('--dir and --name go with --migration TOOL', { hint: `e.g. --migration ${MIGRATION_TOOLS[0].name} --dir migrations` });
      }
      // Bad input fails before any database is opened.
      if (options.migration) migrationTool(options.migration);
      if (options.name !== undefined) checkMigrationName(options.name);
      const { db, plan } = await planFromOptions(options);
      try {
        const format = formatOf(options);
        if (options.migration) {
          const written = await writeMigration(plan, { tool: options.migration, dir: options.dir, name: options.name });
          if (format === 'json') write(formatPlanJson(plan, { migration: written }));
          else write(describeMigration(written, plan));
          if (written.note) note(options, `note: ${written.note}`);
        } else if (format === 'json') write(formatPlanJson(plan));
        else if (format === 'markdown') write(formatPlanMarkdown(plan));
        else write(formatPlanText(plan, { color: useColor(options) }));
        if (options.check && !isConverged(plan)) {
          throw new CheckFailed(`the database differs from the policy file: ${describeSummary(summarizePlan(plan))}`, {
            hint: 'run `rlsctl apply` to bring it to the policy file',
          });
        }
      } finally {
        await db.close();
      }
    });
}
