import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { hasPolicyFile } from '../facts/resolve-facts.js';
import { loadPolicy } from '../policy/load-policy.js';
import type { PolicyModel } from '../policy/model.js';
import { note } from './common.js';

export interface FactFlags {
  policies: string;
  tenantColumn?: string;
  tenantSetting?: string;
  appRole?: string[];
  bypassRole?: string[];
  quiet?: boolean;
}

/**
 * Where audit, explain and verify take their facts from (cli.md, "Audit
 * rules"): the policy file, or the flags with the rest inferred. Naming
 * both is a contradiction (exit 2); fact flags without `--policies` mean the
 * default `policies/` folder is not read; with neither, the folder is read
 * when it exists.
 */
export async function choosePolicyModel(
  options: FactFlags,
  command: Command,
  schemaNames: string[] | undefined,
  verb: string,
  /** explain and verify: `--app-role` beside `--policies` names the role to check as (app-role-member.ts). */
  appRoleWithPolicies = false,
): Promise<PolicyModel | undefined> {
  const explicit = command.getOptionValueSource('policies') === 'cli';
  const flags = [
    schemaNames && schemaNames.length > 0 ? '--schema NAME' : '',
    options.tenantColumn ? '--tenant-column' : '',
    options.tenantSetting ? '--tenant-setting' : '',
    options.appRole ? '--app-role' : '',
    options.bypassRole ? '--bypass-role' : '',
  ].filter(Boolean);
  const contradicting = appRoleWithPolicies ? flags.filter((f) => f !== '--app-role') : flags;
  if (explicit && contradicting.length > 0) {
    throw new UsageError(`--policies and ${contradicting.join(', ')} both say the facts`, {
      hint: `with a policy file the tenant tables, roles and setting are the file's: leave out the flags, or leave out --policies to ${verb} from the flags`,
    });
  }
  if (explicit && flags.length > 0) return loadPolicy(options.policies);
  if (flags.length > 0) {
    if (hasPolicyFile({ policies: options.policies })) note(options, `facts from ${flags.join(', ')}: the ${options.policies}/ folder is not read`);
    return undefined;
  }
  if (!explicit && !hasPolicyFile({ policies: options.policies })) return undefined;
  return loadPolicy(options.policies);
}
