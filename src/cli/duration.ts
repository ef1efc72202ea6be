import { InvalidArgumentError } from 'commander';

const UNITS: Record<string, number> = { ms: 1, s: 1000, min: 60_000 };

/**
 * A timeout option, in milliseconds. Written as PostgreSQL writes durations
 * (`500ms`, `30s`, `2min`); a bare number is seconds, the same for every
 * command's --lock-timeout and --statement-timeout.
 */
export function parseDuration(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|min)?\s*$/.exec(value);
  if (!m) throw new InvalidArgumentError('a duration such as 30s, 500ms or 2min (a bare number is seconds)');
  const ms = Number(m[1]) * UNITS[m[2] ?? 's'];
  if (ms <= 0) throw new InvalidArgumentError('a duration greater than 0');
  return Math.round(ms);
}
