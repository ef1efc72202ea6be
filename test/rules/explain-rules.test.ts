import { existsSync, readFileSync, readdirSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { EXPLAIN_RULES } from '../../src/explain/rules/registry.js';
import { runExplain, type ExplainFinding } from '../../src/explain/run-explain.js';
import { readQueryFile } from '../../src/explain/read-query-file.js';
import { factsFromModel } from '../../src/facts/resolve-facts.js';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { ROOT } from '../helpers/cli.js';

/**
 * Every explain rule in the "one finding → fix → no finding" form, on a real
 * server, as test/rules/rules.test.ts does for audit: fixtures/explain/<RULE>/
 * holds bad.sql and good.sql (the schema, {{app}} the app role), queries.sql
 * (planned on both) and policy.yaml. bad.sql must give exactly one finding
 * of the rule, good.sql (the fix, with near misses) none. Each variant's
 * schema `app` is dropped after it.
 */

const DIR = path.join(ROOT, 'fixtures/explain');
const fixture = (rule: string, name: string) => readFileSync(path.join(DIR, rule, name), 'utf8');

it('every explain rule has a source file, a registry entry, a docs page and bad/good fixtures', () => {
  const sources = readdirSync(path.join(ROOT, 'src/explain/rules'));
  for (const rule of EXPLAIN_RULES) {
    expect(sources).toContain(`${rule.code.toLowerCase()}-${rule.name}.ts`);
    expect(existsSync(path.join(ROOT, 'docs/rules', `${rule.code}.md`))).toBe(true);
    for (const file of ['bad.sql', 'good.sql', 'queries.sql', 'policy.yaml'])
      expect(existsSync(path.join(DIR, rule.code, file)), `${rule.code}/${file}`).toBe(true);
  }
});

describeEachServer('explain rules', (ctx) => {
  const app = uniqueName('exprule_app');
  const fill = (text: string) => text.replace(/\{\{app\}\}/g, app);
  const dir = mkdtempSync(path.join(tmpdir(), 'rlsctl-exp-rules-'));

  beforeAll(async () => {
    await ctx.db.query(`CREATE ROLE ${app}`);
  });
  afterAll(async () => {
    await ctx.db.query(`DROP OWNED BY ${app}`).catch(() => undefined);
    await ctx.db.query(`DROP ROLE IF EXISTS ${app}`).catch(() => undefined);
  });

  async function explainFixture(rule: string, variant: 'bad' | 'good'): Promise<ExplainFinding[]> {
    await ctx.db.runScript(fill(fixture(rule, `${variant}.sql`)));
    try {
      const facts = factsFromModel(await parsePolicy([{ file: `${rule}/policy.yaml`, text: fill(fixture(rule, 'policy.yaml')) }]));
      const file = path.join(dir, `${rule}-queries.sql`);
      writeFileSync(file, fixture(rule, 'queries.sql'));
      const read = await readQueryFile(file);
      const client = await ctx.db.client();
      try {
        return (await runExplain(client, facts, read.queries, { problems: read.problems })).findings;
      } finally {
        await client.end();
      }
    } finally {
      await ctx.db.query('DROP SCHEMA app CASCADE');
    }
  }

  for (const rule of EXPLAIN_RULES) {
    it(`${rule.code} ${rule.name}: one finding in bad.sql, none once fixed in good.sql`, async () => {
      const bad = (await explainFixture(rule.code, 'bad')).filter((f) => f.rule === rule.code);
      expect(bad, JSON.stringify(bad, null, 2)).toHaveLength(1);
      expect(bad[0]).toMatchObject({ rule: rule.code, name: rule.name, severity: rule.severity, object: { kind: 'query' } });
      expect(bad[0].fingerprint.startsWith(`${rule.code}:`)).toBe(true);
      const good = await explainFixture(rule.code, 'good');
      expect(good, JSON.stringify(good, null, 2)).toEqual([]);
    });
  }
});
