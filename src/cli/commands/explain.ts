import { Command } from 'commander';
import { addCommonOptions, addFactOptions, addFailOn, notYet } from '../common.js';

export function explainCommand(): Command {
  const collect = (value: string, previous: string[] = []) => [...previous, value];
  return addFailOn(addFactOptions(addCommonOptions(new Command('explain'), ['text', 'json', 'sarif'])))
    .description('plan the queries in FILE as an app role with a tenant set; flag tenant filters that are not index conditions')
    .argument('<file...>', 'SQL query files (or pg_stat_statements exports as .csv or .json)')
    .option('--tenant <value>', 'the tenant to act as (repeatable)', collect)
    .action(() => notYet('explain'));
}
