import { Command } from 'commander';
import { loadPolicy } from '../../policy/load-policy.js';
import { compileScript } from '../../compile/render-sql.js';
import { addCommonOptions, note, writeFileAtomic, type CommonOptions } from '../common.js';

export function compileCommand(): Command {
  return addCommonOptions(new Command('compile'), ['text'])
    .description('print an idempotent SQL script for the whole policy file')
    .option('-o, --output <file>', 'write the script to FILE (atomically) instead of stdout')
    .option('--transactional', 'no CONCURRENTLY and no BEGIN/COMMIT: for migration tools that run each file in one transaction')
    .addHelpText(
      'after',
      '\nExamples:\n  rlsctl compile > rls.sql && psql -v ON_ERROR_STOP=1 -f rls.sql\n  rlsctl compile -o migrations/0042_rls.sql\n  rlsctl compile --transactional > rls.sql && psql -1 -v ON_ERROR_STOP=1 -f rls.sql\n',
    )
    .action(async (options: CommonOptions & { output?: string; transactional?: boolean }) => {
      const model = await loadPolicy(options.policies);
      const sql = compileScript(model, { transactional: options.transactional });
      if (options.output) {
        await writeFileAtomic(options.output, sql);
        note(options, `wrote ${options.output}`);
        // The script itself, byte for byte, for psql: policy-file names hold no control characters (validate refuses them).
      } else process.stdout.write(sql);
    });
}
