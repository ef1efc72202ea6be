import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { CANARY, createCanary } from '../helpers/hostile.js';
import { runPsql } from '../helpers/psql.js';
import { ownFixesOnly } from '../helpers/audit-fixtures.js';
import { quoteIdent } from '../../src/compile/quote.js';
import type { Finding } from '../../src/report/finding.js';

/**
 * Names that try to end the SQL or the comments of a fix (`audit --fix-script`):
 * a schema, tables, a tenant column, a policy and an app role whose names hold
 * quotes, line breaks, `--`, `*\/` and statements of their own. The script runs
 * with psql; the fixes take, the canary is intact, and every statement psql
 * ran is one the fixes meant (the hostile names only ever appear quoted).
 */

const EVIL = `x"; DROP TABLE public.${CANARY}; --`;
const SCHEMA = `s'\n-- DROP TABLE public.${CANARY};`;
const COLUMN = `Org" */ DROP TABLE public.${CANARY}; --`;
const POLICY = `p'); DROP TABLE public.${CANARY}; --`;

describeEachServer('hostile names in fixes and the fix script', (ctx) => {
  const app = `${uniqueName('ap')}"P\n--`;
  const owner = uniqueName('owner');
  let dir: string;
  const s = quoteIdent(SCHEMA);
  const col = quoteIdent(COLUMN);
  const flags = () => ['--db', ctx.db.url, '--schema', SCHEMA, '--tenant-column', COLUMN, '--tenant-setting', 'app.tenant_id', '--app-role', app];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'rlsctl-hostile-fix-'));
    await createCanary(ctx.db);
    const a = quoteIdent(app);
    const tenant = `(SELECT pg_catalog.current_setting('app.tenant_id', true)::uuid)`;
    await ctx.db.runScript(`
CREATE ROLE ${a} LOGIN PASSWORD 'secret';
CREATE ROLE ${owner} NOLOGIN;
CREATE SCHEMA ${s} AUTHORIZATION ${owner};
GRANT USAGE ON SCHEMA ${s} TO ${a};
CREATE TABLE ${s}.${quoteIdent(EVIL)} (${col} uuid, id bigint PRIMARY KEY);
CREATE TABLE ${s}.open (${col} uuid NOT NULL, id bigint, PRIMARY KEY (${col}, id));
ALTER TABLE ${s}.${quoteIdent(EVIL)} OWNER TO ${owner};
ALTER TABLE ${s}.open OWNER TO ${owner};
CREATE POLICY ${quoteIdent(POLICY)} ON ${s}.${quoteIdent(EVIL)} TO ${a} USING (${col} = ${tenant});
ALTER TABLE ${s}.${quoteIdent(EVIL)} ENABLE ROW LEVEL SECURITY;
ALTER TABLE ${s}.${quoteIdent(EVIL)} FORCE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE, DELETE ON ${s}.${quoteIdent(EVIL)}, ${s}.open TO ${a};
`);
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await ctx.db.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`).catch(() => undefined);
    for (const r of [quoteIdent(app), owner]) await ctx.db.query(`DROP ROLE IF EXISTS ${r}`).catch(() => undefined);
  });

  it('writes fixes that quote every name, which psql runs as meant, and the findings are gone', async () => {
    const file = path.join(dir, 'fixes.sql');
    const before = await runCli(['audit', ...flags(), '--format', 'json', '--fix-script', file, '--fix-warnings']);
    const findings = (JSON.parse(before.stdout) as { findings: Finding[] }).findings.filter((f) => f.object.schema === SCHEMA);
    // RLS021 (the cast), RLS001 (open), RLS040 and RLS062 (the evil table), RLS061 (its key): each with a runnable fix.
    const rules = [...new Set(findings.map((f) => f.rule))].sort();
    expect(rules).toEqual(expect.arrayContaining(['RLS001', 'RLS021', 'RLS040', 'RLS062']));
    for (const f of findings.filter((x) => ['RLS001', 'RLS021', 'RLS040', 'RLS062'].includes(x.rule))) expect(f.fix?.runnable, f.rule).toBe(true);
    writeFileSync(file, ownFixesOnly(readFileSync(file, 'utf8'), [app, owner, ctx.db.name]));
    const run = await runPsql(ctx.db.url, ['-f', file]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect((await ctx.db.query(`SELECT count(*)::int AS n FROM public.${CANARY}`)).rows[0].n).toBe(3);

    const after = await runCli(['audit', ...flags(), '--format', 'json']);
    const left = (JSON.parse(after.stdout) as { findings: Finding[] }).findings.filter((f) => f.object.schema === SCHEMA);
    const fixed = new Set(findings.filter((f) => f.fix?.runnable).map((f) => f.fingerprint));
    expect(left.filter((f) => fixed.has(f.fingerprint))).toEqual([]);
    expect(left.filter((f) => f.severity === 'error')).toEqual([]);
  });
});
