import { Command } from 'commander';
import { addCommonOptions, addFactOptions, addFailOn, notYet } from '../common.js';

export function verifyCommand(): Command {
  const collect = (value: string, previous: string[] = []) => [...previous, value];
  return addFailOn(addFactOptions(addCommonOptions(new Command('verify'), ['text', 'json', 'sarif'])))
    .description('probe isolation for real, as each app role, inside transactions that are rolled back')
    .option('--tenant <value>', 'a tenant to act as (repeatable; default: two tenants that own rows)', collect)
    .action(() => notYet('verify'));
}
