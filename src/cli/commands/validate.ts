import { Command } from 'commander';
import { loadPolicy } from '../../policy/load-policy.js';
import { PolicyInvalid } from '../../errors.js';
import type { Finding, RuleMeta } from '../../report/finding.js';
import { formatFindingsJson } from '../../report/format-json.js';
import { formatSarif } from '../../report/format-sarif.js';
import { addCommonOptions, formatOf, note, write, type CommonOptions } from '../common.js';
import { VERSION } from '../../version.js';

export const POLICY_RULE: RuleMeta = {
  code: 'POL001',
  name: 'invalid-policy-file',
  severity: 'error',
  title: 'The policy file is invalid',
  description: 'The policy file does not follow format version 1: a key, a value, an identifier or an expression is wrong.',
  remediation: 'Fix the file at the location given; the message says what is expected there.',
};

/** Policy-file problems as findings, so validate reports like every other checking command. */
export function policyFindings(error: PolicyInvalid): Finding[] {
  return error.diagnostics.map((d) => ({
    rule: POLICY_RULE.code,
    name: POLICY_RULE.name,
    severity: 'error' as const,
    message: d.message,
    object: { kind: 'policy_file' as const, name: d.location.file },
    help: d.hint,
    fingerprint: `${POLICY_RULE.code}:${d.location.file}:${d.location.line}:${d.location.column}`,
    location: d.location,
  }));
}

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
