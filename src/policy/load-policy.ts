import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { PolicyInvalid, UsageError } from '../errors.js';
import type { PolicyModel } from './model.js';
import { validatePolicy, type PolicySource } from './validate-policy.js';
import { loadParser } from './expression.js';
import { readInputFile } from '../input/read-input-file.js';

export const DEFAULT_POLICY_PATH = 'policies';

/**
 * Read a policy file or every `*.yaml` / `*.yml` file of a folder (sorted by
 * name) and validate them as one document. Throws UsageError for a path that
 * cannot be read and PolicyInvalid with every problem found.
 */
export async function loadPolicy(policyPath: string = DEFAULT_POLICY_PATH): Promise<PolicyModel> {
  const sources = await readPolicySources(policyPath);
  return parsePolicy(sources);
}

/** Validate policy sources already in memory (used by `diff` for git revisions). */
export async function parsePolicy(sources: PolicySource[]): Promise<PolicyModel> {
  await loadParser();
  const result = validatePolicy(sources);
  if (result.diagnostics.length > 0 || !result.model) throw new PolicyInvalid(result.diagnostics);
  return result.model;
}

export async function readPolicySources(policyPath: string): Promise<PolicySource[]> {
  let info;
  try {
    info = await stat(policyPath);
  } catch {
    throw new UsageError(`cannot read the policy file ${policyPath}: no such file or folder`, {
      hint:
        policyPath === DEFAULT_POLICY_PATH
          ? 'run rlsctl in the folder that holds policies/, name another with --policies PATH, or write a starter file with `rlsctl init`'
          : 'check the path given to --policies',
    });
  }
  const files = info.isDirectory()
    ? (await readdir(policyPath))
        .filter((name) => /\.ya?ml$/i.test(name))
        .sort()
        .map((name) => path.join(policyPath, name))
    : [policyPath];
  if (files.length === 0) {
    throw new UsageError(`the folder ${policyPath} holds no *.yaml or *.yml policy file`, {
      hint: 'add a policy file there (see policies/ in the rlsctl repository for an example) or write one with `rlsctl init`',
    });
  }
  return Promise.all(
    files.map(async (file) => ({ file, text: await readInputFile(file, { what: 'the policy file', missingHint: 'check the path given to --policies' }) })),
  );
}
