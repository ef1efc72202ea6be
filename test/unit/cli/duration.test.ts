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
