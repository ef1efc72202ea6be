import { Command } from 'commander';
import { addCommonOptions, notYet } from '../common.js';

export function planCommand(): Command {
  return addCommonOptions(new Command('plan'), ['text', 'json', 'markdown'])
    .description('print the statements `apply` would run against this database, with their hazards')
    .option('--check', 'exit 1 when the plan is not empty (drift)')
    .option('--schema <path>', 'SQL file or folder loaded into the embedded PostgreSQL first')
    .option('--prune', 'also drop policies on managed tables that the file does not declare')
    .action(() => notYet('plan'));
}
