import { Command } from 'commander';
import { loadPolicy } from '../../policy/load-policy.js';
import type { PolicyModel } from '../../policy/model.js';
import { asDatabaseError, openDatabase, type Database } from '../../db/connection.js';
import { buildPlan } from '../../plan/build-plan.js';
import { isConverged, planProblems, type Plan } from '../../plan/plan.js';
import { describeSummary, formatPlanJson, formatPlanMarkdown, formatPlanText, summarizePlan } from '../../plan/format-plan.js';
import { CheckFailed, UsageError } from '../../errors.js';
import { addCommonOptions, formatOf, note, useColor, write, type CommonOptions } from '../common.js';

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
    .addHelpText(
      'after',
      '\nExamples:\n  rlsctl plan --db "$DATABASE_URL"\n  rlsctl plan --check --format markdown > plan.md   # exit 1 on drift\n  rlsctl plan --schema db/migrations                # against an embedded PostgreSQL\n',
    )
    .action(async (options: PlanCommandOptions & { check?: boolean }) => {
      const { db, plan } = await planFromOptions(options);
      try {
        const format = formatOf(options);
        if (format === 'json') write(formatPlanJson(plan));
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
