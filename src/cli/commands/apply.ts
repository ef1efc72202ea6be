import { Command } from 'commander';
import { addCommonOptions, notYet } from '../common.js';

export function applyCommand(): Command {
  return addCommonOptions(new Command('apply'), ['text', 'json'])
    .description('bring the database to the policy file: minimal changes; a second run changes nothing')
    .option('--dry-run', 'print the plan only')
    .option('--prune', 'drop policies on managed tables that the file does not declare')
    .option('--schema <path>', 'SQL file or folder loaded into the embedded PostgreSQL first')
    .action(() => notYet('apply'));
}
