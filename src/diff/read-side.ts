import { execFile } from 'node:child_process';
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { RlsctlError, UsageError } from '../errors.js';
import { parsePolicy, readPolicySources } from '../policy/load-policy.js';
import type { PolicyModel } from '../policy/model.js';
import type { PolicySource } from '../policy/validate-policy.js';
import { decodeInput } from '../input/read-input-file.js';

/**
 * One side of a diff: a policy file or folder in the working tree, or
 * `git:REF` for the policy path at a git revision, read with git itself (no
 * checkout, no working-tree change), so it works in any CI clone that has the
 * revision.
 */
export interface DiffSide {
  model: PolicyModel;
  /** How the side is named in output: the path, or `REF:path`. */
  label: string;
}

export interface ReadSideOptions {
  /** The policy path (`--policies`) that `git:REF` reads at the revision. */
  policies: string;
  /** Where relative paths start; the process's current directory by default. */
  cwd?: string;
}

export const GIT_PREFIX = 'git:';

/** git is missing or failed for a reason that is not the input's fault: exit 3 (cli.md, "the environment failed"). */
export class GitFailed extends RlsctlError {
  readonly exitCode = 3 as const;
}

export async function readSide(spec: string, options: ReadSideOptions): Promise<DiffSide> {
  if (spec.startsWith(GIT_PREFIX)) return readGitSide(spec.slice(GIT_PREFIX.length), options);
  const resolved = options.cwd === undefined ? spec : path.resolve(options.cwd, spec);
  let sources: PolicySource[];
  try {
    sources = await readPolicySources(resolved);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    const looksLikeRef = !/\.ya?ml$/i.test(spec);
    throw new UsageError(error.message.replace(resolved, spec), {
      hint: looksLikeRef
        ? `BASE and HEAD are policy files or folders, or git:REF; to compare with a git revision write git:${spec}`
        : 'BASE and HEAD are policy files or folders, or git:REF',
      cause: error,
    });
  }
  // Diagnostics name the files as the user wrote the path, wherever it was resolved.
  const named = sources.map((s) => ({ file: path.join(spec, path.relative(resolved, s.file)), text: s.text }));
  return { model: await parsePolicy(named), label: spec };
}

/**
 * `--policies` is relative to the current directory, as everywhere else in
 * rlsctl; at a revision it names the same place in the tree: the path from
 * the repository root (`git rev-parse --show-toplevel`) to it. So
 * `rlsctl diff git:origin/main` run in a subfolder reads that subfolder's
 * `policies/` at origin/main, and diagnostics say `origin/main:sub/policies/x.yaml`.
 */
async function readGitSide(ref: string, options: ReadSideOptions): Promise<DiffSide> {
  const cwd = options.cwd ?? process.cwd();
  if (ref === '') throw new UsageError('git: names no revision', { hint: 'write git:REF, for example git:origin/main or git:HEAD~1' });
  // A revision starting with `-` would be read by git as an option.
  if (ref.startsWith('-')) throw new UsageError(`git:${ref} is not a revision name`, { hint: 'a revision does not start with -' });

  const top = await git(['rev-parse', '--show-toplevel'], cwd).catch((error: unknown) => {
    if (error instanceof GitFailed) throw error;
    // git says why (not a repository, or one owned by another user: safe.directory).
    throw new UsageError(`git:${ref} needs a git repository, and git cannot use one at ${cwd}: ${(error as Error).message}`, {
      hint: 'run rlsctl diff inside the repository, or compare two policy files or folders',
      cause: error,
    });
  });
  const repoPath = await pathInRepository(top.trim(), cwd, options.policies);

  // Resolve once to a commit, so the reads below see one revision even if the ref moves meanwhile.
  const commit = (
    await git(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`], cwd).catch((error: unknown) => {
      if (error instanceof GitFailed) throw error;
      throw new UsageError(`git:${ref}: no such revision in this repository`, {
        hint: /^origin\//.test(ref)
          ? `a CI checkout is often shallow or has only one branch: fetch it first (git fetch --depth=1 origin ${ref.slice('origin/'.length)}:refs/remotes/${ref}), or check out with full history`
          : 'check the name with `git rev-parse REF`; in a shallow clone, fetch the revision first',
        cause: error,
      });
    })
  ).trim();

  const object = `${commit}:${repoPath}`;
  const display = (p: string) => `${ref}:${p}`;
  const type = (
    await git(['cat-file', '-t', object], cwd).catch((error: unknown) => {
      if (error instanceof GitFailed) throw error;
      throw new UsageError(`${display(repoPath || '.')} does not exist: the revision ${ref} has no policy file there`, {
        hint: 'name the policy path with --policies (relative to the current folder), or compare with a revision that has the policy file',
        cause: error,
      });
    })
  ).trim();

  let sources: PolicySource[];
  if (type === 'blob') {
    sources = [await gitBlob(object, display(repoPath), cwd)];
  } else if (type === 'tree') {
    const entries = parseLsTree(await git(['ls-tree', '-z', object], cwd));
    // The same files, in the same order, as readPolicySources reads from a folder.
    const files = entries.filter((e) => /\.ya?ml$/i.test(e.name)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const join = (name: string) => (repoPath === '' ? name : `${repoPath}/${name}`);
    for (const f of files) {
      // A symbolic link is stored as a blob holding the link's target; reading
      // that as YAML would silently drop the policies it points to.
      if (f.type !== 'blob' || f.mode === '120000') {
        throw new UsageError(`${display(join(f.name))} is not a regular file at ${ref}`, {
          hint: 'rlsctl reads only regular *.yaml / *.yml files at a git revision',
        });
      }
    }
    if (files.length === 0) {
      throw new UsageError(`the folder ${display(repoPath || '.')} holds no *.yaml or *.yml policy file`, { hint: 'name the policy path with --policies' });
    }
    sources = [];
    for (const f of files) sources.push(await gitBlob(f.oid, display(join(f.name)), cwd));
  } else {
    throw new UsageError(`${display(repoPath)} is a ${type}, not a policy file or folder`);
  }
  return { model: await parsePolicy(sources), label: display(repoPath || '.') };
}

/** The policy path as git names it at a revision: relative to the repository root, with `/`. */
async function pathInRepository(top: string, cwd: string, policies: string): Promise<string> {
  // git prints the root as a real path; the current folder may be reached
  // through a symbolic link (/tmp on macOS is /private/tmp), so compare real paths.
  const realTop = await realpath(top).catch(() => top);
  const absolute = path.isAbsolute(policies) ? await realOrSelf(policies) : path.resolve(await realOrSelf(cwd), policies);
  const relative = path.relative(realTop, absolute);
  if (relative.startsWith('..') || path.isAbsolute(relative)) {
    throw new UsageError(`the policy path ${policies} is outside the git repository at ${top}`, {
      hint: 'name a policy path inside the repository with --policies',
    });
  }
  return relative.split(path.sep).join('/');
}

async function realOrSelf(p: string): Promise<string> {
  // The path may not exist in the working tree (deleted on this branch): then
  // its folder does, or it is taken as written.
  try {
    return await realpath(p);
  } catch {
    try {
      return path.join(await realpath(path.dirname(p)), path.basename(p));
    } catch {
      return path.resolve(p);
    }
  }
}

interface TreeEntry {
  mode: string;
  type: string;
  oid: string;
  name: string;
}

/** `git ls-tree -z`: `<mode> SP <type> SP <object> TAB <name> NUL`, names unquoted. */
function parseLsTree(output: string): TreeEntry[] {
  return output
    .split('\0')
    .filter((line) => line !== '')
    .map((line) => {
      const tab = line.indexOf('\t');
      const [mode, type, oid] = line.slice(0, tab).split(' ');
      return { mode, type, oid, name: line.slice(tab + 1) };
    });
}

class GitExit extends Error {}

/** A policy file at a revision, with the size limit and strict UTF-8 of every input file. */
async function gitBlob(object: string, file: string, cwd: string): Promise<PolicySource> {
  return { file, text: decodeInput(file, 'the policy file', await git(['cat-file', 'blob', object], cwd, 'buffer')) };
}

/**
 * Run git with an argument array, never through a shell. A non-zero exit is a
 * GitExit (the caller says what it means for the input); git missing is
 * GitFailed (exit 3).
 */
function git(args: string[], cwd: string): Promise<string>;
function git(args: string[], cwd: string, encoding: 'buffer'): Promise<Buffer>;
function git(args: string[], cwd: string, encoding: 'utf8' | 'buffer' = 'utf8'): Promise<string | Buffer> {
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      args,
      // Never prompt (a credential helper, a pager) in CI; output as UTF-8 text, or bytes for a blob (checked by decodeInput).
      { cwd, encoding, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_PAGER: 'cat', LC_ALL: 'C' } },
      (error, stdout, stderr) => {
        if (!error) return resolve(stdout);
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
          reject(
            new GitFailed('git is not installed or not on PATH', {
              hint: 'git:REF reads the policy file with git; install git, or compare two files or folders',
              cause: error,
            }),
          );
          return;
        }
        reject(new GitExit(String(stderr).trim().split('\n')[0] || error.message, { cause: error }));
      },
    );
  });
}
