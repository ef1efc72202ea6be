import { Command } from 'commander';
import { CheckFailed } from '../../errors.js';
import { diffModels } from '../../diff/diff-models.js';
import { formatDiffJson, formatDiffMarkdown, formatDiffText } from '../../diff/format-diff.js';
import { summarizeChanges } from '../../diff/policy-change.js';
import { readSide } from '../../diff/read-side.js';
import { addCommonOptions, formatOf, useColor, write, type CommonOptions } from '../common.js';

export function diffCommand(): Command {
  return addCommonOptions(new Command('diff'), ['text', 'json', 'markdown'])
    .description('compare two versions of the policy file; class every change as widening, narrowing or neutral')
    .argument('<base>', 'a policy file or folder, or git:REF')
    .argument('[head]', 'a policy file or folder, or git:REF (default: --policies in the working tree)')
    .option('--fail-on-widening', 'exit 1 when any change widens access')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  rlsctl diff git:origin/main                       the branch against its base, working tree as HEAD\n' +
        '  rlsctl diff git:HEAD~1 git:HEAD --format json     the last commit\n' +
        '  rlsctl diff old/policies policies --fail-on-widening\n' +
        '\ngit:REF reads --policies (relative to the current folder) at REF with git; no checkout needed.\n',
    )
    .action(async (base: string, head: string | undefined, options: CommonOptions & { failOnWidening?: boolean }) => {
      // Read one side after the other: a wrong BASE is reported before HEAD is read.
      const baseSide = await readSide(base, { policies: options.policies });
      const headSide = await readSide(head ?? options.policies, { policies: options.policies });
      const changes = diffModels(baseSide.model, headSide.model);
      const sides = { base: baseSide.label, head: headSide.label };
      const format = formatOf(options);
      if (format === 'json') write(formatDiffJson(changes));
      else if (format === 'markdown') write(formatDiffMarkdown(changes, sides));
      else write(formatDiffText(changes, sides, { color: useColor(options) }));
      const { widening } = summarizeChanges(changes);
      if (options.failOnWidening && widening > 0) {
        throw new CheckFailed(`${widening} change${widening === 1 ? '' : 's'} widen${widening === 1 ? 's' : ''} access (--fail-on-widening)`, {
          hint: 'review the widening changes; if they are intended, merge without --fail-on-widening or with a reviewer’s approval',
        });
      }
    });
}
