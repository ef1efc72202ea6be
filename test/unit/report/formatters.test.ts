import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import { AUDIT_RULES } from '../../../src/audit/registry.js';
import { fingerprintOf, sortFindings, summarize, failsAt, type Finding } from '../../../src/report/finding.js';
import { formatFindingsJson } from '../../../src/report/format-json.js';
import { formatSarif } from '../../../src/report/format-sarif.js';
import { formatFindingsText } from '../../../src/report/format-text.js';
import { applyBaseline, baselineOf, formatBaseline, readBaseline } from '../../../src/report/baseline.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const schema = JSON.parse(readFileSync(path.join(here, 'sarif-2.1.0-subset.schema.json'), 'utf8'));

function finding(code: string, object: Finding['object'], message: string, detail?: string): Finding {
  const rule = AUDIT_RULES.find((r) => r.code === code)!;
  return {
    rule: code,
    name: rule.name,
    severity: rule.severity,
    message,
    object,
    help: `-- fix for ${message}`,
    fix: { sql: null, runnable: false, note: `fix for ${message}` },
    fingerprint: fingerprintOf(code, object, detail),
  };
}

const FINDINGS: Finding[] = [
  finding('RLS040', { kind: 'table', schema: 'app', name: 'tasks' }, 'app.tasks has no valid index that leads with org_id'),
  finding('RLS002', { kind: 'table', schema: 'app', name: 'projects' }, 'app.projects has row level security enabled but not forced'),
  finding('RLS001', { kind: 'table', schema: 'app', name: 'tasks' }, 'app.tasks is a tenant table without row level security'),
  finding(
    'RLS021',
    { kind: 'policy', schema: 'app', table: 'tasks', name: 'tasks_tenant' },
    "policy tasks_tenant casts app.tenant_id::uuid without NULLIF(..., '')",
  ),
  finding('RLS010', { kind: 'role', name: 'app_user' }, 'app role app_user is BYPASSRLS', 'BYPASSRLS'),
  finding('RLS007', { kind: 'table', schema: 'app', name: 'schema_migrations' }, 'app.schema_migrations is exempt'),
];

describe('SARIF 2.1.0', () => {
  const ajv = new Ajv({ allErrors: true });
  ajv.addFormat('uri', /^[a-z][a-z0-9+.-]*:[^\s]*$/i);
  ajv.addFormat('uri-reference', /^[^\s]*$/);
  const validate = ajv.compile(schema);

  it('is valid against the schema subset, for audit findings and for file findings', () => {
    const log = JSON.parse(formatSarif(FINDINGS, [...AUDIT_RULES], '0.1.0'));
    expect(validate(log), JSON.stringify(validate.errors, null, 2)).toBe(true);
    const withFile: Finding = { ...FINDINGS[0], location: { file: 'policies\\saas.yaml', line: 3, column: 5 } };
    const log2 = JSON.parse(formatSarif([withFile], [...AUDIT_RULES], '0.1.0'));
    expect(validate(log2), JSON.stringify(validate.errors, null, 2)).toBe(true);
    expect(log2.runs[0].results[0].locations[0].physicalLocation.artifactLocation.uri).toBe('policies/saas.yaml');
  });

  it('the schema rejects what SARIF forbids (the test can fail)', () => {
    const log = JSON.parse(formatSarif(FINDINGS, [...AUDIT_RULES], '0.1.0'));
    log.runs[0].results[0].level = 'info';
    expect(validate(log)).toBe(false);
    const log2 = JSON.parse(formatSarif(FINDINGS, [...AUDIT_RULES], '0.1.0'));
    delete log2.runs[0].tool.driver.name;
    expect(validate(log2)).toBe(false);
  });

  it('puts each reported rule in tool.driver.rules, and each result points at its rule', () => {
    const log = JSON.parse(formatSarif(FINDINGS, [...AUDIT_RULES], '0.1.0'));
    const rules = log.runs[0].tool.driver.rules as Array<{ id: string; name: string; helpUri: string; defaultConfiguration: { level: string } }>;
    expect(rules.map((r) => r.id)).toEqual([...new Set(FINDINGS.map((f) => f.rule))].sort());
    for (const result of log.runs[0].results) {
      expect(rules[result.ruleIndex].id).toBe(result.ruleId);
      expect(rules[result.ruleIndex].helpUri).toMatch(new RegExp(`/docs/rules/${result.ruleId}\\.md$`));
    }
    expect(rules.find((r) => r.id === 'RLS007')!.defaultConfiguration.level).toBe('note');
  });

  it('has stable partialFingerprints: the same findings in another order give the same log', () => {
    const a = formatSarif(FINDINGS, [...AUDIT_RULES], '0.1.0');
    const b = formatSarif([...FINDINGS].reverse(), [...AUDIT_RULES], '0.1.0');
    expect(b).toBe(a);
    const results = JSON.parse(a).runs[0].results as Array<{ partialFingerprints: Record<string, string> }>;
    const prints = results.map((r) => r.partialFingerprints['rlsctlFingerprint/v1']);
    expect(new Set(prints).size).toBe(FINDINGS.length);
    expect(prints).toContain('RLS021:app.tasks.tasks_tenant');
    expect(prints).toContain('RLS010:app_user:BYPASSRLS');
  });
});

describe('JSON envelope', () => {
  it("is the spec's document: version, command, sorted findings, summary", () => {
    const doc = JSON.parse(formatFindingsJson('audit', FINDINGS));
    expect(Object.keys(doc)).toEqual(['version', 'command', 'findings', 'summary']);
    expect(doc.version).toBe(1);
    expect(doc.command).toBe('audit');
    expect(doc.summary).toEqual(summarize(FINDINGS));
    expect(doc.findings.map((f: Finding) => f.fingerprint)).toEqual(sortFindings(FINDINGS).map((f) => f.fingerprint));
    expect(doc.findings.map((f: Finding) => f.severity)).toEqual(['error', 'error', 'error', 'warning', 'warning', 'info']);
    expect(Object.keys(doc.findings[0])).toEqual(['rule', 'name', 'severity', 'message', 'object', 'help', 'fix', 'fingerprint']);
  });
});

describe('text report', () => {
  it('groups by object, ends with a one-line summary, and has no colour unless asked', () => {
    const text = formatFindingsText(FINDINGS, { color: false, header: ['header line'] });
    expect(text).not.toMatch(/\x1b\[/);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('header line');
    expect(lines[lines.length - 1]).toBe('3 errors, 2 warnings, 1 info');
    // app.tasks holds two findings: one group heading, both under it.
    expect(lines.filter((l) => l === 'table app.tasks')).toHaveLength(1);
    const at = lines.indexOf('table app.tasks');
    expect(lines[at + 1]).toContain('RLS001');
    expect(lines.slice(at + 1).find((l) => l.includes('RLS040'))).toBeDefined();
    expect(formatFindingsText(FINDINGS, { color: true })).toMatch(/\x1b\[/);
    expect(formatFindingsText([], { color: false })).toBe('no findings\n');
  });
});

describe('fail-on', () => {
  it('fails at or above the threshold', () => {
    const warnings = FINDINGS.filter((f) => f.severity === 'warning');
    expect(failsAt(warnings, 'error')).toBe(false);
    expect(failsAt(warnings, 'warning')).toBe(true);
    expect(failsAt(warnings, 'info')).toBe(true);
    expect(failsAt(FINDINGS, 'never')).toBe(false);
  });
});

describe('baseline', () => {
  it('hides known findings by fingerprint and reports the entries no longer found', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'rlsctl-baseline-'));
    const file = path.join(dir, 'baseline.json');
    await writeFile(file, formatBaseline(baselineOf('audit', FINDINGS.slice(0, 3))));
    const baseline = await readBaseline(file);
    expect(baseline.fingerprints).toEqual([...FINDINGS.slice(0, 3).map((f) => f.fingerprint)].sort());
    const later = [...FINDINGS.slice(1), finding('RLS062', { kind: 'table', schema: 'app', name: 'users' }, 'app.users.org_id admits NULL', 'org_id')];
    const split = applyBaseline(later, baseline);
    expect(split.hidden.map((f) => f.fingerprint).sort()).toEqual(
      FINDINGS.slice(1, 3)
        .map((f) => f.fingerprint)
        .sort(),
    );
    expect(split.shown.map((f) => f.rule).sort()).toEqual(['RLS007', 'RLS010', 'RLS021', 'RLS062']);
    expect(split.fixed).toEqual([FINDINGS[0].fingerprint]);
    expect(JSON.parse(await readFile(file, 'utf8')).version).toBe(1);
  });

  it('refuses a file that is not a baseline, as bad input', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'rlsctl-baseline-'));
    const file = path.join(dir, 'bad.json');
    await writeFile(file, '{"fingerprints": 3}');
    await expect(readBaseline(file)).rejects.toMatchObject({ exitCode: 2 });
    await writeFile(file, 'not json');
    await expect(readBaseline(file)).rejects.toThrow(/not JSON/);
    await expect(readBaseline(path.join(dir, 'missing.json'))).rejects.toMatchObject({ exitCode: 2 });
  });
});

describe('sorting', () => {
  it('puts findings of one file in the order of their lines, not of their fingerprint text', () => {
    const at = (line: number): Finding => ({
      rule: 'POL001',
      name: 'invalid-policy-file',
      severity: 'error',
      message: `problem on line ${line}`,
      object: { kind: 'policy_file', name: 'p.yaml' },
      fingerprint: `POL001:p.yaml:${line}:1`,
      location: { file: 'p.yaml', line, column: 1 },
    });
    expect(sortFindings([at(11), at(3), at(2)]).map((f) => f.location?.line)).toEqual([2, 3, 11]);
  });
});
