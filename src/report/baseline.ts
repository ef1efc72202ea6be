import { UsageError } from '../errors.js';
import { readInputFile } from '../input/read-input-file.js';
import type { Finding } from './finding.js';

/**
 * A baseline: the fingerprints of findings a team has accepted, so that a
 * check fails only on new ones (`--baseline FILE`, written by
 * `--write-baseline FILE`). Fingerprints name objects, never OIDs, so a
 * baseline survives a dump and restore.
 */
export interface Baseline {
  version: 1;
  command: string;
  fingerprints: string[];
}

export function baselineOf(command: string, findings: Finding[]): Baseline {
  return { version: 1, command, fingerprints: [...new Set(findings.map((f) => f.fingerprint))].sort() };
}

export function formatBaseline(baseline: Baseline): string {
  return JSON.stringify(baseline, null, 2) + '\n';
}

export async function readBaseline(file: string): Promise<Baseline> {
  const text = await readInputFile(file, { what: 'the baseline', missingHint: 'write one with --write-baseline FILE' });
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`the baseline ${file} is not JSON: ${(error as Error).message}`, { hint: 'write it again with --write-baseline FILE' });
  }
  const b = data as Partial<Baseline>;
  if (!b || b.version !== 1 || !Array.isArray(b.fingerprints) || !b.fingerprints.every((f) => typeof f === 'string')) {
    throw new UsageError(`the baseline ${file} is not an rlsctl baseline (version 1 with a list of fingerprints)`, {
      hint: 'write it again with --write-baseline FILE',
    });
  }
  return { version: 1, command: typeof b.command === 'string' ? b.command : '', fingerprints: b.fingerprints };
}

/** Split findings into those the baseline hides and those it does not; also the baseline entries no finding matches any more. */
export function applyBaseline(findings: Finding[], baseline: Baseline): { shown: Finding[]; hidden: Finding[]; fixed: string[] } {
  const known = new Set(baseline.fingerprints);
  const shown: Finding[] = [];
  const hidden: Finding[] = [];
  for (const f of findings) (known.has(f.fingerprint) ? hidden : shown).push(f);
  const current = new Set(findings.map((f) => f.fingerprint));
  return { shown, hidden, fixed: baseline.fingerprints.filter((f) => !current.has(f)) };
}
