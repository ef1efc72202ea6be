import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { diffModels } from '../../../src/diff/diff-models.js';
import { code, escapeMarkdown, formatDiffJson, formatDiffMarkdown, formatDiffText } from '../../../src/diff/format-diff.js';
import { parsePolicy } from '../../../src/policy/load-policy.js';

function doc(tables: Record<string, unknown>, bypass = ['migrator']): string {
  return stringify({ version: 1, roles: { app: ['app_user'], bypass }, schemas: { app: { tables } } });
}

async function diffOf(base: Record<string, unknown>, head: Record<string, unknown>, headBypass?: string[]) {
  return diffModels(await parsePolicy([{ file: 'base.yaml', text: doc(base) }]), await parsePolicy([{ file: 'head.yaml', text: doc(head, headBypass) }]));
}

const SIDES = { base: 'origin/main:policies', head: 'policies' };

describe('formatDiffJson', () => {
  it('prints the envelope of the spec, with exactly the four keys per change', async () => {
    const changes = await diffOf({ invoices: 'tenant', events: 'tenant' }, { invoices: { mode: 'exempt', reason: 'r' }, events: { commands: ['select'] } });
    const json = JSON.parse(formatDiffJson(changes));
    expect(Object.keys(json)).toEqual(['version', 'command', 'changes', 'summary']);
    expect(json.version).toBe(1);
    expect(json.command).toBe('diff');
    expect(json.summary).toEqual({ widening: 1, narrowing: 3, neutral: 0 });
    for (const change of json.changes) expect(Object.keys(change)).toEqual(['object', 'change', 'class', 'message']);
    expect(json.changes.map((c: { class: string }) => c.class)).toEqual(['widening', 'narrowing', 'narrowing', 'narrowing']);
    expect(json.changes[0].object).toEqual({ kind: 'table', schema: 'app', name: 'invoices' });
  });

  it('prints an empty list and zero counts when nothing changed', async () => {
    const json = JSON.parse(formatDiffJson(await diffOf({ a: 'tenant' }, { a: 'tenant' })));
    expect(json).toEqual({ version: 1, command: 'diff', changes: [], summary: { widening: 0, narrowing: 0, neutral: 0 } });
  });
});

describe('formatDiffMarkdown', () => {
  it('puts the verdict on the first line and widening changes before narrowing and neutral ones', async () => {
    const changes = await diffOf(
      { invoices: 'tenant', events: 'tenant', projects: 'tenant' },
      { invoices: { mode: 'exempt', reason: 'r' }, events: { commands: ['select'] }, projects: { indexes: [['created_at']] } },
    );
    const md = formatDiffMarkdown(changes, SIDES);
    const lines = md.split('\n');
    expect(lines[0]).toMatch(/^:warning: \*\*This change widens tenant access\*\*: 1 change lets someone/);
    const w = md.indexOf('### Widening (1)');
    const n = md.indexOf('### Narrowing (3)');
    const u = md.indexOf('### Neutral (2)');
    expect(w).toBeGreaterThan(0);
    expect(n).toBeGreaterThan(w);
    expect(u).toBeGreaterThan(n);
    expect(md).toContain('`origin/main:policies` (base) with `policies` (head)');
    // The SQL each change would run, in a fenced block under the change.
    expect(md).toContain('DROP POLICY IF EXISTS rlsctl_tenant_access ON app.events;');
    expect(md).toContain('CREATE INDEX CONCURRENTLY IF NOT EXISTS projects_tenant_id_created_at_idx ON app.projects (tenant_id, created_at);');
    expect(md).toMatch(/<details><summary>SQL<\/summary>\n\n {2}```sql\n/);
  });

  it.each([
    [{ a: 'tenant' }, { a: { commands: ['select'] } }, '**No change widens access**: 3 changes narrow it'],
    [
      { a: { indexes: [{ columns: ['n'], name: 'x' }] } },
      { a: { indexes: [{ columns: ['n'], name: 'y' }] } },
      '**No change to who can read or write what**: 1 neutral change only.',
    ],
    [{ a: 'tenant' }, { a: 'tenant' }, '**No change** to the meaning of the policy file.'],
  ])('gives the verdict for %j -> %j', async (base, head, verdict) => {
    expect(formatDiffMarkdown(await diffOf(base, head), SIDES).split('\n')[0]).toContain(verdict);
  });

  it('escapes names from the policy file, so they cannot inject markup into the comment', async () => {
    const hostile = 'x<img src=y onerror=z>`|*_[a](b)';
    const md = formatDiffMarkdown(await diffOf({ ok: 'tenant' }, { ok: 'tenant', [hostile]: 'tenant' }), SIDES);
    // Outside code spans and fenced SQL (where GitHub renders text literally) no raw tag survives.
    const prose = md
      .split('\n')
      .filter((l) => l.startsWith('- ') || (l.startsWith('  ') && !l.startsWith('   ') && !/^ {2}(CREATE|ALTER|DROP|```|<\/?details)/.test(l)))
      .map((l) => l.replace(/(`+)(?!`).*?[^`]\1(?!`)/g, ''));
    expect(prose.length).toBeGreaterThan(1);
    expect(prose.join('\n')).not.toContain('<img');
    expect(md).toContain('``app.x<img src=y onerror=z>`|*_[a](b)``');
    expect(md).toContain('x&lt;img src=y onerror=z&gt;\\`\\|\\*\\_\\[a\\]\\(b\\)');
    // In SQL the name is a quoted identifier, inside a fence longer than any backtick run in it.
    expect(md).toContain('"x<img src=y onerror=z>`|*_[a](b)"');
  });
});

describe('markdown helpers', () => {
  it('code() picks a fence longer than any backtick run inside', () => {
    expect(code('plain')).toBe('`plain`');
    expect(code('a`b')).toBe('``a`b``');
    expect(code('`edge')).toBe('`` `edge ``');
  });

  it('escapeMarkdown() leaves no raw HTML or emphasis', () => {
    expect(escapeMarkdown('<b>*x*</b> & _y_')).toBe('&lt;b&gt;\\*x\\*&lt;/b&gt; &amp; \\_y\\_');
  });
});

describe('formatDiffText', () => {
  it('prints one change per entry and a summary, without colour codes when colour is off', async () => {
    const text = formatDiffText(await diffOf({ a: 'tenant' }, { a: 'tenant' }, ['migrator', 'ops']), SIDES, { color: false });
    expect(text).toBe(
      [
        'origin/main:policies -> policies',
        'widening   role ops: bypass role added',
        "           ops is now allowed to bypass row level security: it may read and write every tenant's rows without an audit finding",
        '',
        '1 widening, 0 narrowing, 0 neutral',
        '',
      ].join('\n'),
    );
  });

  it('says so when nothing changed', async () => {
    const text = formatDiffText(await diffOf({ a: 'tenant' }, { a: 'tenant' }), SIDES, { color: false });
    expect(text).toBe('origin/main:policies -> policies\nno change in meaning\n\n0 widening, 0 narrowing, 0 neutral\n');
  });

  it('colours the class when asked', async () => {
    const text = formatDiffText(await diffOf({ a: 'tenant' }, { a: 'tenant' }, ['migrator', 'ops']), SIDES, { color: true });
    expect(text).toContain('\u001b[');
  });
});
