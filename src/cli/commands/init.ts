import { Command } from 'commander';
import { addCommonOptions, notYet } from '../common.js';

export function initCommand(): Command {
  return addCommonOptions(new Command('init'), ['text'])
    .description('write a starter policy file from an existing database')
    .option('-o, --output <file>', 'where to write the policy file', 'policies/policies.yaml')
    .option('--tenant-column <name>', 'the tenant column to look for', 'tenant_id')
    .option('--tenant-setting <name>', 'the setting that carries the current tenant', 'app.tenant_id')
    .option('--app-role <role>', 'a role application traffic runs as (repeatable)', (v: string, p: string[] = []) => [...p, v])
    .option('--schema <name>', 'a schema to include (repeatable; default every non-system schema)', (v: string, p: string[] = []) => [...p, v])
    .option('--force', 'overwrite an existing file')
    .action(() => notYet('init'));
}
