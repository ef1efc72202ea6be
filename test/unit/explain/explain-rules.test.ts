import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXPLAIN_RULES } from '../../../src/explain/rules/registry.js';
import { ROOT } from '../../helpers/cli.js';

describe('explain rules', () => {
  it('have unique codes and names, EXP001-EXP004 as cli.md lists them', () => {
    expect(EXPLAIN_RULES.map((r) => [r.code, r.name])).toEqual([
      ['EXP001', 'seq-scan-on-tenant-table'],
      ['EXP002', 'tenant-filter-not-index-condition'],
      ['EXP003', 'per-row-policy-subplan'],
      ['EXP004', 'query-failed'],
    ]);
    expect(new Set(EXPLAIN_RULES.map((r) => r.code)).size).toBe(EXPLAIN_RULES.length);
  });

  it.each(EXPLAIN_RULES.map((r) => [r.code, r.name]))('%s has a docs page with what, why, fix and when to ignore', (code, name) => {
    const page = path.join(ROOT, 'docs/rules', `${code}.md`);
    expect(existsSync(page)).toBe(true);
    const text = readFileSync(page, 'utf8');
    expect(text.split('\n')[0]).toBe(`# ${code} ${name}`);
    for (const heading of ['## What it finds', '## Why it matters', '## How to fix it', '## When to ignore it']) expect(text).toContain(heading);
  });
});
