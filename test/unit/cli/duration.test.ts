import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../../src/cli/duration.js';

describe('parseDuration', () => {
  it('reads PostgreSQL-style durations into milliseconds; a bare number is seconds', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('2min')).toBe(120_000);
    expect(parseDuration('5')).toBe(5000);
    expect(parseDuration('0.2')).toBe(200);
  });

  it('refuses what is not a positive duration', () => {
    for (const bad of ['', 'abc', '-1', '0', '5h', '1e3', '30 seconds']) expect(() => parseDuration(bad), bad).toThrow(/duration/);
  });
});

describe('parseDuration below one millisecond (issue 14)', () => {
  it('refuses a duration under 1 ms instead of rounding it to 0, which would turn the timeout off', () => {
    for (const bad of ['0.4ms', '0.0004', '0.0009', '0.00001min', '0ms', '0.0min']) {
      expect(() => parseDuration(bad), bad).toThrow(/at least 1ms/);
    }
  });

  it('rounds what is 1 ms or more to whole milliseconds', () => {
    expect(parseDuration('1ms')).toBe(1);
    expect(parseDuration('0.001')).toBe(1);
    expect(parseDuration('1.4ms')).toBe(1);
    expect(parseDuration('1.6ms')).toBe(2);
  });
});
