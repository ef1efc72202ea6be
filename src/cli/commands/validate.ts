import { Command } from 'commander';
import { loadPolicy } from '../../policy/load-policy.js';
import { PolicyInvalid } from '../../errors.js';
import type { Finding } from '../../report/finding.js';
import { formatFindingsJson } from '../../report/format-json.js';
import { formatSarif } from '../../report/format-sarif.js';
import { POLICY_RULE, policyFindings } from '../../policy/policy-rules.js';
import { addCommonOptions, formatOf, note, write, type CommonOptions } from '../common.js';
import { VERSION } from '../../version.js';

export function validateCommand(): Command {
  return addCommonOptions(new Command('validate'), ['text', 'json', 'sarif'])
    .description('read the policy file and report every problem in it')
    .addHelpText('after', '\nExamples:\n  rlsctl validate\n  rlsctl validate --policies db/policies.yaml --format json\n')
    .action(async (options: CommonOptions) => {
      const format = formatOf(options);
      let findings: Finding[] = [];
      let summary = '';
      try {
        const model = await loadPolicy(options.policies);
        summary = `${model.files.join(', ')}: valid (${model.tables.length} table${model.tables.length === 1 ? '' : 's'} in ${model.schemas.length} schema${model.schemas.length === 1 ? '' : 's'})`;
      } catch (error) {
        // In text, problems are diagnostics like a compiler's (file:line:col: error ...) on
        // stderr, exactly as every other command that reads the file reports them.
        if (!(error instanceof PolicyInvalid) || format === 'text') throw error;
        findings = policyFindings(error);
      }
      if (format === 'json') write(formatFindingsJson('validate', findings));
      else if (format === 'sarif') write(formatSarif(findings, [POLICY_RULE], VERSION));
      else note(options, summary);
      // An invalid policy file is wrong input: exit 2, as for every command that reads it.
      if (findings.length > 0) process.exitCode = 2;
    });
}
