import { InvalidArgumentError } from 'commander';

const UNITS: Record<string, number> = { ms: 1, s: 1000, min: 60_000 };

/**
 * A timeout option, in milliseconds. Written as PostgreSQL writes durations
 * (`500ms`, `30s`, `2min`); a bare number is seconds, the same for every
 * command's --lock-timeout and --statement-timeout. The value is rounded to
 * whole milliseconds, and anything under 1 ms is refused: PostgreSQL reads a
 * timeout of 0 as "no timeout", so `0.4ms` must not silently turn it off.
 * There is no way to ask for no timeout (docs/apply.md, "Timeouts").
 */
export function parseDuration(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|min)?\s*$/.exec(value);
  if (!m) throw new InvalidArgumentError('a duration such as 30s, 500ms or 2min (a bare number is seconds)');
  const ms = Number(m[1]) * UNITS[m[2] ?? 's'];
  if (!(ms >= 1)) throw new InvalidArgumentError('a duration of at least 1ms (0 would turn the timeout off, which rlsctl does not do)');
  return Math.round(ms);
}
