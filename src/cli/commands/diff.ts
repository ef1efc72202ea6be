import { Command } from 'commander';
import { addCommonOptions, notYet } from '../common.js';

export function diffCommand(): Command {
  return addCommonOptions(new Command('diff'), ['text', 'json', 'markdown'])
    .description('compare two versions of the policy file; class every change as widening, narrowing or neutral')
    .argument('<base>', 'a policy file or folder, or git:REF')
    .argument('[head]', 'a policy file or folder, or git:REF (default: --policies in the working tree)')
    .option('--fail-on-widening', 'exit 1 when any change widens access')
    .action(() => notYet('diff'));
}
