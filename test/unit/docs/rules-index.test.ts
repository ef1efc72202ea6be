import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderRulesIndex, type RuleRegistries } from '../../../scripts/gen-rules-index.mjs';
import { AUDIT_RULES } from '../../../src/audit/registry.js';
import { EXPLAIN_RULES } from '../../../src/explain/rules/registry.js';
import { VERIFY_RULES } from '../../../src/verify/registry.js';
import { POLICY_RULE, POLICY_RULES } from '../../../src/policy/policy-rules.js';
import { ROOT } from '../../helpers/cli.js';

/**
 * docs/rules/README.md is generated from the registries (scripts/gen-rules-index.mjs,
 * `npm run docs`); here it is generated again in memory from the sources, and
 * the committed file must be the same. The pages and the rules must match one
 * to one: a rule without a page, or a page left behind by a removed rule, fails.
 */

const RULES_DIR = path.join(ROOT, 'docs/rules');
const registries: RuleRegistries = { audit: AUDIT_RULES, explain: EXPLAIN_RULES, verify: VERIFY_RULES, policy: [...POLICY_RULES] };
const allRules = [...AUDIT_RULES, ...EXPLAIN_RULES, ...VERIFY_RULES, POLICY_RULE];
const pages = readdirSync(RULES_DIR).filter((f) => f.endsWith('.md') && f !== 'README.md');

describe('docs/rules', () => {
  it('README.md is what `npm run docs` generates from the rule registries', () => {
    const committed = readFileSync(path.join(RULES_DIR, 'README.md'), 'utf8');
    expect(committed, 'docs/rules/README.md is out of date: run `npm run build && npm run docs`').toBe(renderRulesIndex(registries));
  });

  it('lists every rule once, linked to its page, in its group', () => {
    const index = renderRulesIndex(registries);
    for (const rule of allRules) {
      const rows = index.split('\n').filter((l) => l.startsWith(`| [${rule.code}](${rule.code}.md) | \`${rule.name}\` | ${rule.severity} |`));
      expect(rows, rule.code).toHaveLength(1);
    }
    const groups = index.split(/^## /m).slice(1).map((g) => ({ title: g.split('\n')[0], codes: [...g.matchAll(/^\| \[(\w+)\]/gm)].map((m) => m[1]) }));
    expect(groups).toEqual([
      { title: 'audit', codes: AUDIT_RULES.map((r) => r.code) },
      { title: 'explain', codes: EXPLAIN_RULES.map((r) => r.code) },
      { title: 'verify', codes: VERIFY_RULES.map((r) => r.code) },
      { title: 'policy file', codes: [POLICY_RULE.code] },
    ]);
  });

  it('every rule has a page, headed with its code and name', () => {
    for (const rule of allRules) {
      expect(pages, `docs/rules/${rule.code}.md is missing`).toContain(`${rule.code}.md`);
      const first = readFileSync(path.join(RULES_DIR, `${rule.code}.md`), 'utf8').split('\n')[0];
      expect(first).toBe(`# ${rule.code} ${rule.name}`);
    }
  });

  it('every page belongs to a rule of a registry', () => {
    const codes = new Set(allRules.map((r) => r.code));
    expect(pages.filter((p) => !codes.has(p.replace(/\.md$/, '')))).toEqual([]);
    expect(pages.length).toBe(codes.size);
  });

  it('a table cell cannot be broken by a | in a title', () => {
    const index = renderRulesIndex({ audit: [{ code: 'X001', name: 'x', severity: 'error', title: 'a | b' }], explain: [], verify: [], policy: [] });
    expect(index).toContain('| [X001](X001.md) | `x` | error | a \\| b |');
  });
});
