import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command, Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildProgram } from '../../../src/cli/main.js';
import { ROOT } from '../../helpers/cli.js';

/**
 * The CI recipes, offline: the workflow parses as YAML, and every
 * `rlsctl <command> ...` they run names a command of the real program with
 * options that command declares, values among its choices, and as many
 * arguments as it takes. A renamed option or command breaks this test before
 * it breaks a user's pipeline.
 */

const WORKFLOW = path.join(ROOT, 'docs/examples/github-workflow.yml');
const SCRIPT = path.join(ROOT, 'docs/examples/rlsctl-ci.sh');
const CI_DOC = path.join(ROOT, 'docs/ci.md');

const OPERATORS = ['&&', '||', ';;', '2>&1', '>>', '2>', '&>', '|', ';', '>', '<', '&', '(', ')'];

/**
 * Shell words of a script, enough for CI recipes: quotes and backslashes,
 * line continuations, `#` comments, and the operators above as words of their
 * own. Expansions (`$X`, `${{ ... }}`) stay inside their word.
 */
function shellWords(script: string): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  const endWord = () => {
    if (inWord) words.push(word);
    word = '';
    inWord = false;
  };
  const endCommand = () => {
    endWord();
    if (words.length > 0) commands.push(words);
    words = [];
  };
  const text = script.replace(/\\\r?\n/g, ' ');
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < text.length) word += text[++i];
      else word += ch;
      continue;
    }
    if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
      continue;
    }
    if (ch === '\\' && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
      continue;
    }
    if (ch === '#' && !inWord) {
      while (i < text.length && text[i] !== '\n') i++;
      endCommand();
      continue;
    }
    if (ch === '\n') {
      endCommand();
      continue;
    }
    if (ch === ' ' || ch === '\t') {
      endWord();
      continue;
    }
    const op = OPERATORS.find((o) => text.startsWith(o, i) && !(o === '2>' && inWord) && !(o === '2>&1' && inWord));
    if (op) {
      endWord();
      words.push(op);
      i += op.length - 1;
      continue;
    }
    word += ch;
    inWord = true;
  }
  if (quote) throw new Error(`unterminated ${quote} quote in:\n${script}`);
  endCommand();
  return commands;
}

/** Every `rlsctl ...` invocation: the words after `rlsctl` up to the next operator. */
function rlsctlInvocations(script: string): string[][] {
  const out: string[][] = [];
  for (const words of shellWords(script)) {
    for (let i = 0; i < words.length; i++) {
      const atCommandPosition = i === 0 || words[i - 1] === 'npx' || OPERATORS.includes(words[i - 1]);
      if (path.basename(words[i]) !== 'rlsctl' || !atCommandPosition) continue;
      const args: string[] = [];
      for (let k = i + 1; k < words.length && !OPERATORS.includes(words[k]); k++) args.push(words[k]);
      out.push(args);
    }
  }
  return out;
}

const takesValue = (o: Option) => o.required || o.optional;
const isExpansion = (value: string) => value.includes('$');

/** Problems with one invocation against the real commander program; empty when it would parse. */
function checkInvocation(program: Command, args: string[]): string[] {
  const [name, ...rest] = args;
  const command = program.commands.find((c) => c.name() === name);
  if (!command) return [`rlsctl ${name ?? '(nothing)'}: no such command (have ${program.commands.map((c) => c.name()).join(', ')})`];
  const problems: string[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const token = rest[i];
    if (!token.startsWith('-') || token === '-') {
      positionals.push(token);
      continue;
    }
    const eq = token.indexOf('=');
    const flag = token.startsWith('--') && eq > 0 ? token.slice(0, eq) : token;
    const option = command.options.find((o) => o.long === flag || o.short === flag);
    if (!option) {
      problems.push(`rlsctl ${name}: unknown option ${flag}`);
      continue;
    }
    if (!takesValue(option)) {
      if (eq > 0 && token.startsWith('--')) problems.push(`rlsctl ${name}: ${flag} takes no value`);
      continue;
    }
    let value: string | undefined = eq > 0 && token.startsWith('--') ? token.slice(eq + 1) : undefined;
    if (value === undefined) {
      const next = rest[i + 1];
      if (next === undefined || (option.required && next.startsWith('-'))) {
        if (option.required) problems.push(`rlsctl ${name}: ${flag} needs a value`);
        continue;
      }
      value = next;
      i++;
    }
    if (option.argChoices && !isExpansion(value) && !option.argChoices.includes(value)) {
      problems.push(`rlsctl ${name}: ${flag} ${value} is not one of ${option.argChoices.join(', ')}`);
    }
  }
  const declared = command.registeredArguments;
  const required = declared.filter((a) => a.required).length;
  const variadic = declared.some((a) => a.variadic);
  if (positionals.length < required) problems.push(`rlsctl ${name}: needs ${required} argument(s), got ${positionals.length}`);
  if (!variadic && positionals.length > declared.length)
    problems.push(`rlsctl ${name}: takes at most ${declared.length} argument(s), got ${positionals.join(' ')}`);
  return problems;
}

interface Step {
  name?: string;
  run?: string;
  uses?: string;
  with?: Record<string, unknown>;
}
interface Workflow {
  on: Record<string, unknown>;
  jobs: Record<string, { steps: Step[]; permissions?: Record<string, string> }>;
}

const workflowText = readFileSync(WORKFLOW, 'utf8');
const workflow = parse(workflowText) as Workflow;
const runs = Object.entries(workflow.jobs).flatMap(([job, j]) => j.steps.filter((s) => s.run).map((s) => ({ job, step: s.name ?? s.run!, run: s.run! })));
const allInvocations = runs.flatMap((r) => rlsctlInvocations(r.run).map((args) => ({ ...r, args })));

/** The fenced code blocks of a Markdown file, by info string. */
function codeBlocks(markdown: string, lang: RegExp): string[] {
  const blocks: string[] = [];
  const re = /^```(\S*)\n([\s\S]*?)^```$/gm;
  for (let m = re.exec(markdown); m; m = re.exec(markdown)) if (lang.test(m[1])) blocks.push(m[2]);
  return blocks;
}

describe('the shell reader used by this test', () => {
  it('splits words, quotes, operators and continuations as a shell would', () => {
    expect(shellWords(`npx rlsctl diff "git:origin/$BASE" --format markdown > out.md && cat out.md # note`)).toEqual([
      ['npx', 'rlsctl', 'diff', 'git:origin/$BASE', '--format', 'markdown', '>', 'out.md', '&&', 'cat', 'out.md'],
    ]);
    expect(rlsctlInvocations('env -u X npx rlsctl plan \\\n  --check\nrlsctl validate|tee log')).toEqual([['plan', '--check'], ['validate']]);
    expect(rlsctlInvocations('echo "rlsctl apply" ; ./rlsctl-ci.sh review')).toEqual([]);
  });

  it('rejects what commander would reject', () => {
    const program = buildProgram();
    expect(checkInvocation(program, ['diff', 'git:origin/main', '--format', 'markdown'])).toEqual([]);
    expect(checkInvocation(program, ['diff', 'git:origin/main', '--fail-on-widenin'])).toEqual(['rlsctl diff: unknown option --fail-on-widenin']);
    expect(checkInvocation(program, ['diff', 'a', '--format', 'sarif'])).toEqual(['rlsctl diff: --format sarif is not one of text, json, markdown']);
    expect(checkInvocation(program, ['diff'])).toEqual(['rlsctl diff: needs 1 argument(s), got 0']);
    expect(checkInvocation(program, ['diff', 'a', 'b', 'c'])).toEqual(['rlsctl diff: takes at most 2 argument(s), got a b c']);
    expect(checkInvocation(program, ['deploy'])[0]).toMatch(/^rlsctl deploy: no such command/);
    expect(checkInvocation(program, ['plan', '--check=yes'])).toEqual(['rlsctl plan: --check takes no value']);
    expect(checkInvocation(program, ['validate', '--format=json', '--no-color', '--policies', 'p'])).toEqual([]);
  });
});

describe('docs/examples/github-workflow.yml', () => {
  it('parses as a workflow with jobs and steps', () => {
    expect(Object.keys(workflow.on).sort()).toEqual(['pull_request', 'push', 'schedule', 'workflow_dispatch']);
    for (const job of Object.values(workflow.jobs)) expect(job.steps.length).toBeGreaterThan(0);
  });

  it('runs validate, diff as markdown, diff --fail-on-widening, verify on the embedded default, apply, and plan --check', () => {
    const seen = (command: string, ...flags: string[]) => allInvocations.filter((i) => i.args[0] === command && flags.every((f) => i.args.includes(f)));
    expect(seen('validate')).not.toHaveLength(0);
    const diffs = seen('diff', '--format', 'markdown');
    expect(diffs.map((d) => d.args[1])).toEqual(['git:origin/$BASE_REF']);
    expect(seen('diff', '--fail-on-widening')).not.toHaveLength(0);
    // The embedded default: neither --db nor a DATABASE_URL in the verify job.
    const verify = seen('verify');
    expect(verify.map((v) => v.job)).toEqual(['verify']);
    expect(verify[0].args).not.toContain('--db');
    expect(JSON.stringify(workflow.jobs.verify)).not.toContain('DATABASE_URL');
    expect(
      seen('apply')
        .map((a) => a.job)
        .sort(),
    ).toEqual(['apply', 'verify']);
    expect(seen('plan', '--check').map((p) => p.job)).toEqual(['drift']);
  });

  it.each(allInvocations.map((i) => [`${i.job}: rlsctl ${i.args.join(' ')}`, i.args] as const))('%s is a valid invocation', (_, args) => {
    expect(checkInvocation(buildProgram(), [...args])).toEqual([]);
  });

  it('checks out the full history where it diffs against git:origin/...', () => {
    for (const [name, job] of Object.entries(workflow.jobs)) {
      const diffs = job.steps.some((s) => s.run && rlsctlInvocations(s.run).some((a) => a[0] === 'diff' && a.some((w) => w.startsWith('git:'))));
      if (!diffs) continue;
      const checkout = job.steps.find((s) => s.uses?.startsWith('actions/checkout@'));
      expect(checkout?.with?.['fetch-depth'], `job ${name}`).toBe(0);
    }
  });

  it('posts the markdown the diff step writes, with the permission to comment', () => {
    const review = workflow.jobs.review;
    const comment = review.steps.find((s) => s.uses?.startsWith('marocchino/sticky-pull-request-comment@'));
    const writes = review.steps.find((s) => s.run?.includes('--format markdown'));
    expect(comment?.with?.path).toBe('rlsctl-diff.md');
    expect(writes?.run).toContain(`> ${comment?.with?.path}`);
    expect(review.permissions?.['pull-requests']).toBe('write');
  });
});

describe('the generic shell recipe', () => {
  const script = readFileSync(SCRIPT, 'utf8');

  it('is valid bash', () => {
    expect(() => execFileSync('bash', ['-n', SCRIPT])).not.toThrow();
  });

  it('runs the same commands', () => {
    const commands = rlsctlInvocations(script).map((a) => a[0]);
    expect([...new Set(commands)].sort()).toEqual(['apply', 'diff', 'plan', 'validate', 'verify']);
  });

  it.each(rlsctlInvocations(script).map((args) => [`rlsctl ${args.join(' ')}`, args] as const))('%s is a valid invocation', (_, args) => {
    expect(checkInvocation(buildProgram(), [...args])).toEqual([]);
  });
});

describe('docs/ci.md', () => {
  const doc = readFileSync(CI_DOC, 'utf8');

  it('shows the workflow file as it is', () => {
    expect(codeBlocks(doc, /^ya?ml$/)).toContain(workflowText);
  });

  it('uses only valid invocations in its shell examples', () => {
    const invocations = codeBlocks(doc, /^(sh|bash|shell)$/).flatMap(rlsctlInvocations);
    expect(invocations.length).toBeGreaterThan(0);
    for (const args of invocations) expect(checkInvocation(buildProgram(), args), `rlsctl ${args.join(' ')}`).toEqual([]);
  });
});
