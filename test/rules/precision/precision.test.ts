import { afterAll, beforeAll, expect, it } from 'vitest';
import type pg from 'pg';
import { runAudit } from '../../../src/audit/run-audit.js';
import { inferFacts } from '../../../src/facts/resolve-facts.js';
import { runScript } from '../../../src/db/run-script.js';
import { describeEachServer, uniqueName } from '../../helpers/db.js';
import { CASES, SUPABASE_AUTH } from './cases.js';

/**
 * The precision corpus (cases.ts) on a real server: each case in its own
 * transaction, rolled back, on top of the stub auth schema.
 */
/** The signed-in user of the probes. */
const USER = '00000000-0000-4000-8000-000000000001';

describeEachServer('audit precision corpus', (ctx) => {
  const roles: Record<string, string> = { anon: uniqueName('anon'), authenticated: uniqueName('authenticated') };
  const fill = (text: string) => text.replace(/\{\{(\w+)\}\}/g, (_, k: string) => roles[k] ?? `{{${k}}}`);

  beforeAll(async () => {
    for (const r of Object.values(roles)) await ctx.db.query(`CREATE ROLE ${r} NOLOGIN`);
  });
  afterAll(async () => {
    for (const r of Object.values(roles)) await ctx.db.query(`DROP ROLE IF EXISTS ${r}`).catch(() => undefined);
  });

  for (const c of CASES) {
    it(c.name, async () => {
      const client: pg.Client = await ctx.db.client();
      try {
        await client.query('BEGIN');
        await runScript(client, fill(SUPABASE_AUTH + c.sql));
        const facts = await inferFacts({ schema: ['app', 'hidden'], tenantColumn: 'org_id', appRole: [roles.anon, roles.authenticated] }, client);
        const { findings } = await runAudit(client, facts, { transaction: 'caller' });
        if (c.applyHelp) {
          const fixes = findings.filter((f) => f.rule === c.applyHelp).map((f) => f.help ?? '');
          expect(fixes.length).toBeGreaterThan(0);
          for (const fix of fixes) await runScript(client, fix);
          const again = await runAudit(client, facts, { transaction: 'caller' });
          expect(again.findings.filter((f) => f.rule === c.applyHelp)).toEqual([]);
        }
        for (const [rule, count] of Object.entries(c.expect)) {
          const mine = findings.filter((f) => f.rule === rule);
          expect(mine, `${rule}: ${JSON.stringify(mine, null, 2)}`).toHaveLength(count);
          const severity = c.severity?.[rule];
          if (severity) for (const f of mine) expect(f.severity, f.message).toBe(severity);
        }
        if (c.probe) {
          await client.query('SAVEPOINT probe');
          await client.query(`SET LOCAL ROLE ${roles.authenticated}`);
          await client.query(`SELECT pg_catalog.set_config('request.jwt.claims', $1, true)`, [JSON.stringify({ sub: USER, role: 'authenticated' })]);
          const outcome = await client.query(c.probe.sql).then(
            () => 'ok',
            (error: Error) => error.message,
          );
          await client.query('ROLLBACK TO SAVEPOINT probe');
          if (c.probe.error) expect(outcome).toMatch(c.probe.error);
          else expect(outcome).toBe('ok');
        }
      } finally {
        await client.query('ROLLBACK').catch(() => undefined);
        await client.end();
      }
    });
  }
});
