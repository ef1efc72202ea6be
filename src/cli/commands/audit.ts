import { Command } from 'commander';
import { addCommonOptions, addFactOptions, addFailOn, notYet } from '../common.js';

export function auditCommand(): Command {
  return addFailOn(addFactOptions(addCommonOptions(new Command('audit'), ['text', 'json', 'sarif'])))
    .description('read-only scan of the catalog for isolation holes and missing tenant indexes')
    .option('--baseline <file>', 'hide the findings whose fingerprints this baseline file holds')
    .option('--write-baseline <file>', 'write the fingerprints of the current findings to FILE')
    .action(() => notYet('audit'));
}
