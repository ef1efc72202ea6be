import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runAudit, withReadOnlyTransaction, type AuditResult } from '../../src/audit/run-audit.js';
import { inferFacts } from '../../src/facts/resolve-facts.js';
import { objectLabel, type Finding } from '../../src/report/finding.js';
import { describeEachServer, uniqueName } from '../helpers/db.js';
import { ROOT } from '../helpers/cli.js';

/**
 * The audit end to end on a realistic schema with many holes planted
 * (fixtures/audit/e2e/schema.sql, one "-- hole:" per defect) and one table
 * that is right in every respect: every hole is found, with the right rule
 * on the right object, nothing else is, and the clean table stays clean.
 * The scan runs as runAudit does in production: its own READ ONLY transaction.
 */

const E2E = path.join(ROOT, 'fixtures/audit/e2e');

/** rule → objects (as objectLabel prints them, with {{role}} placeholders) the planted holes must produce. */
const EXPECTED: Array<[string, string]> = [
  ['RLS001', 'app.invoices'],
  ['RLS001', 'app.notes'],
  ['RLS001', 'app.schema_migrations'],
  ['RLS002', 'app.projects'],
  ['RLS003', 'app.attachments'],
  ['RLS004', 'app.notes'],
  ['RLS010', '{{app}}'],
  ['RLS011', '{{rogue}}'],
  ['RLS012', '{{app}}'],
  ['RLS020', 'app.tasks.access'],
  ['RLS021', 'app.tasks.access'],
  ['RLS022', 'app.tickets.access'],
  ['RLS023', '{{app}}'],
  ['RLS030', 'app.labels.everyone'],
  ['RLS030', 'app.countries.read'],
  ['RLS031', 'app.labels'],
  ['RLS032', 'app.comments.write'],
  ['RLS040', 'app.audit_log'],
  ['RLS041', 'app.tasks.access'],
  ['RLS042', 'app.audit_log.access'],
  ['RLS043', 'app.labels.labels_one_per_org'],
  ['RLS050', 'app.project_names'],
  ['RLS051', 'app.task_counts'],
  ['RLS052', 'app.all_invoices()'],
  ['RLS053', 'app.events_2026'],
  ['RLS060', 'app.tasks'],
  ['RLS061', 'app.projects.projects_id_key'],
  ['RLS061', 'app.audit_log.audit_log_pkey'],
  ['RLS062', 'app.audit_log'],
  ['RLS063', 'app.comments'],
  ['RLS064', 'app.tickets'],
];

describeEachServer('audit end to end', (ctx) => {
  const roles: Record<string, string> = {
    app: uniqueName('app'),
    owner: uniqueName('owner'),
    migrator: uniqueName('migrator'),
    rogue: uniqueName('rogue'),
    power: uniqueName('power'),
  };
  const fill = (text: string) => text.replace(/\{\{(\w+)\}\}/g, (_, k: string) => roles[k]);
  let result: AuditResult;

  beforeAll(async () => {
    await ctx.db.runScript(fill(readFileSync(path.join(E2E, 'schema.sql'), 'utf8')));
    await ctx.db.query(readFileSync(path.join(E2E, 'invalid-index.sql'), 'utf8')).then(
      () => {
        throw new Error('the concurrent unique build was expected to fail on duplicates');
      },
      (error: Error) => expect(error.message).toMatch(/could not create unique index/),
    );
    const client = await ctx.db.client();
    try {
      const facts = await inferFacts({ schema: ['app'], tenantColumn: 'org_id', appRole: [roles.app], bypassRole: [roles.migrator] }, client);
      result = await runAudit(client, facts);
    } finally {
      await client.end();
    }
  });

  afterAll(async () => {
    // Roles are cluster-wide: the database goes with the block, the roles must be dropped.
    await ctx.db.query(`DROP OWNED BY ${Object.values(roles).join(', ')} CASCADE`).catch(() => undefined);
    for (const r of Object.values(roles)) await ctx.db.query(`DROP ROLE IF EXISTS ${r}`).catch(() => undefined);
  });

  function ours(findings: Finding[]): Finding[] {
    const mine = new Set(Object.values(roles));
    return findings.filter((f) => (f.object.kind === 'role' ? mine.has(f.object.name) : f.object.kind !== 'database'));
  }

  it('finds every planted hole, with its rule on its object, and nothing else', () => {
    const got = ours(result.findings).map((f) => `${f.rule} ${objectLabel(f.object)}`);
    const want = EXPECTED.map(([rule, object]) => `${rule} ${fill(object)}`);
    expect([...new Set(got)].sort()).toEqual([...new Set(want)].sort());
  });

  it('leaves the clean table clean', () => {
    expect(result.findings.filter((f) => JSON.stringify(f.object).includes('clean_items'))).toEqual([]);
    expect(result.findings.filter((f) => f.object.name === 'organizations' || f.object.table === 'organizations')).toEqual([]);
  });

  it('infers what the flags leave unsaid, and says so', () => {
    expect(result.facts.source).toBe('inferred');
    expect(result.facts.setting).toBe('app.org_id');
    expect(result.facts.inferred.join('\n')).toMatch(/tenant setting: app\.org_id/);
    expect(result.facts.tenantTables.map((t) => t.name)).toContain('clean_items');
    expect(result.facts.tenantTables.map((t) => t.name)).not.toContain('events_2026');
  });

  it('reports a view hole with the fix for this server version', () => {
    const view = result.findings.find((f) => f.rule === 'RLS050')!;
    expect(view.help).toContain(ctx.server.major >= 15 ? 'security_invoker = true' : 'no security_invoker');
  });

  it('gives stable, OID-free fingerprints: a second scan finds the same', async () => {
    const client = await ctx.db.client();
    try {
      const facts = await inferFacts({ schema: ['app'], tenantColumn: 'org_id', appRole: [roles.app], bypassRole: [roles.migrator] }, client);
      const again = await runAudit(client, facts);
      expect(again.findings.map((f) => f.fingerprint)).toEqual(result.findings.map((f) => f.fingerprint));
    } finally {
      await client.end();
    }
    const { rows } = await ctx.db.query<{ oid: string }>("SELECT oid::text FROM pg_class WHERE relnamespace = 'app'::regnamespace");
    const oids = new Set(rows.map((r) => r.oid));
    for (const f of result.findings) for (const part of f.fingerprint.split(/[:.]/)) expect(oids.has(part)).toBe(false);
  });

  it('cannot write: the scan transaction is READ ONLY, with a statement_timeout', async () => {
    const client = await ctx.db.client();
    try {
      const seen = await withReadOnlyTransaction(
        client,
        async () => {
          const { rows } = await client.query<{ ro: string; timeout: string }>(
            "SELECT current_setting('transaction_read_only') AS ro, current_setting('statement_timeout') AS timeout",
          );
          await expect(client.query('CREATE TABLE app.sneaky (id int)')).rejects.toThrow(/read-only transaction/);
          return rows[0];
        },
        1234,
      );
      expect(seen).toEqual({ ro: 'on', timeout: '1234ms' });
      // Nothing leaked out of the transaction: not the table, not the setting.
      expect((await client.query("SELECT to_regclass('app.sneaky') AS t")).rows[0].t).toBeNull();
      expect((await client.query("SELECT current_setting('statement_timeout') AS t")).rows[0].t).toBe('0');
    } finally {
      await client.end();
    }
  });

  it('needs no privilege beyond connecting: the same findings as a plain login role', async () => {
    const reader = uniqueName('reader');
    await ctx.db.query(`CREATE ROLE ${reader} LOGIN PASSWORD 'secret'`);
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: ctx.db.urlAs(reader) });
    try {
      await client.connect();
      const facts = await inferFacts({ schema: ['app'], tenantColumn: 'org_id', appRole: [roles.app], bypassRole: [roles.migrator] }, client);
      const asReader = await runAudit(client, facts);
      // The reader is a new login role that bypasses nothing: the findings are the superuser's.
      expect(ours(asReader.findings).map((f) => f.fingerprint)).toEqual(ours(result.findings).map((f) => f.fingerprint));
    } finally {
      await client.end().catch(() => undefined);
      await ctx.db.query(`DROP ROLE IF EXISTS ${reader}`);
    }
  });
});
