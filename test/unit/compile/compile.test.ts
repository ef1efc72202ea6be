import { readdirSync } from 'node:fs';
import path from 'node:path';
import { parseSync } from 'libpg-query';
import { beforeAll, describe, expect, it } from 'vitest';
import { desiredState, desiredTable, indexName, viaAlias } from '../../../src/compile/desired-state.js';
import { identBytes } from '../../../src/compile/quote.js';
import { compileScript, compileStatements } from '../../../src/compile/render-sql.js';
import type { Statement } from '../../../src/compile/statement.js';
import { loadParser } from '../../../src/policy/expression.js';
import { loadPolicy, parsePolicy } from '../../../src/policy/load-policy.js';
import type { PolicyModel } from '../../../src/policy/model.js';
import { ROOT } from '../../helpers/cli.js';

/**
 * The exact SQL that `compile` writes (kysely's testSql style): a change in
 * the generated SQL shows up here as a diff to review. What the SQL does on a
 * real server is tested in test/integration/compiled-policies.test.ts.
 */

beforeAll(async () => {
  await loadParser();
});

async function compileYaml(body: string, head = 'version: 1\nroles: { app: [app_user, app_reader] }\n'): Promise<PolicyModel> {
  return parsePolicy([{ file: 'p.yaml', text: head + body }]);
}

function targetTable(s: Statement): string {
  return `${s.target.schema}.${!('table' in s.target) ? s.target.name : s.target.table}`;
}

/** The transaction-phase SQL of one table, without the partition block unless asked for. */
function tableSql(model: PolicyModel, table: string, options: { partitions?: boolean } = {}): string {
  return compileStatements(model)
    .filter((s) => s.phase === 'transaction' && targetTable(s) === table)
    .filter((s) => options.partitions || !s.sql.startsWith('DO $rlsctl$'))
    .map((s) => s.sql)
    .join('\n\n');
}

function indexSql(model: PolicyModel, table?: string): string[] {
  return compileStatements(model)
    .filter((s) => s.phase === 'concurrent' && (table === undefined || targetTable(s) === table))
    .map((s) => s.sql);
}

/** The format() template of a table's partition block, as the server would run it for partition `schema.part`. */
function partitionSql(model: PolicyModel, table: string, part: { qualified: string; name: string }): string {
  const block = compileStatements(model).find((s) => targetTable(s) === table && s.sql.startsWith('DO $rlsctl$'));
  const literal = /EXECUTE pg_catalog\.format\((E?)'((?:[^']|'')*)', part,/.exec(block!.sql);
  expect(literal).not.toBeNull();
  let template = literal![2].replace(/''/g, "'");
  if (literal![1] === 'E') template = template.replace(/\\\\/g, '\\');
  // %3$I: the via parent's alias, picked from the partition's name when the script runs.
  return template.replaceAll('%1$s', part.qualified).replaceAll('%2$I', part.name).replaceAll('%3$I', viaAlias(part.name)).replaceAll('%%', '%');
}

/** The statements of a script as PostgreSQL's parser splits them: node type and, for DROP, what it drops. */
/** The kinds of the script's statements; a psql `\\gexec` line (which sends the query before it) read as a `;`. */
function statementKinds(sql: string): string[] {
  const { stmts } = parseSync(sql.replace(/^\\gexec$/gm, ';')) as { stmts: Array<{ stmt: Record<string, { removeType?: string }> }> };
  return stmts.map(({ stmt }) => {
    const [kind, node] = Object.entries(stmt)[0];
    return node.removeType ? `${kind}:${node.removeType}` : kind;
  });
}

const TENANT = "(SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid)";

describe('compile: the SQL of each mode', () => {
  it('a tenant table: the restrictive guard, one permissive policy for every command, RLS forced, its partitions alike, a tenant index', async () => {
    const model = await compileYaml('schemas:\n  app:\n    tables:\n      projects:\n        indexes: [[created_at]]\n');
    expect(tableSql(model, 'app.projects', { partitions: true })).toBe(`DROP POLICY IF EXISTS rlsctl_tenant_guard ON app.projects;
CREATE POLICY rlsctl_tenant_guard ON app.projects
  AS RESTRICTIVE FOR ALL
  TO app_user, app_reader
  USING (tenant_id = (SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid))
  WITH CHECK (tenant_id = (SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid));

DROP POLICY IF EXISTS rlsctl_tenant_access ON app.projects;
CREATE POLICY rlsctl_tenant_access ON app.projects
  AS PERMISSIVE FOR ALL
  TO app_user, app_reader
  USING (tenant_id = (SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid))
  WITH CHECK (tenant_id = (SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid));

ALTER TABLE app.projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.projects FORCE ROW LEVEL SECURITY;

DO $rlsctl$
DECLARE
  part regclass;
  stale record;
BEGIN
  FOR stale IN
    SELECT p.polrelid::regclass AS rel, p.polname FROM pg_catalog.pg_policy p
    WHERE (p.polrelid = 'app.projects'::regclass OR p.polrelid IN (SELECT relid FROM pg_catalog.pg_partition_tree('app.projects'::regclass)))
      AND pg_catalog.starts_with(p.polname::text, 'rlsctl_') AND p.polname::text <> ALL (ARRAY['rlsctl_tenant_guard', 'rlsctl_tenant_access']::text[])
  LOOP
    EXECUTE pg_catalog.format('DROP POLICY %I ON %s', stale.polname, stale.rel);
  END LOOP;
  FOR part IN
    SELECT relid FROM pg_catalog.pg_partition_tree('app.projects'::regclass)
    WHERE relid <> 'app.projects'::regclass
  LOOP
    EXECUTE pg_catalog.format('DROP POLICY IF EXISTS rlsctl_tenant_guard ON %1$s;
CREATE POLICY rlsctl_tenant_guard ON %1$s
  AS RESTRICTIVE FOR ALL
  TO app_user, app_reader
  USING (tenant_id = (SELECT NULLIF(pg_catalog.current_setting(''app.tenant_id'', true), '''')::uuid))
  WITH CHECK (tenant_id = (SELECT NULLIF(pg_catalog.current_setting(''app.tenant_id'', true), '''')::uuid));
DROP POLICY IF EXISTS rlsctl_tenant_access ON %1$s;
CREATE POLICY rlsctl_tenant_access ON %1$s
  AS PERMISSIVE FOR ALL
  TO app_user, app_reader
  USING (tenant_id = (SELECT NULLIF(pg_catalog.current_setting(''app.tenant_id'', true), '''')::uuid))
  WITH CHECK (tenant_id = (SELECT NULLIF(pg_catalog.current_setting(''app.tenant_id'', true), '''')::uuid));
ALTER TABLE %1$s ENABLE ROW LEVEL SECURITY;
ALTER TABLE %1$s FORCE ROW LEVEL SECURITY;', part, (SELECT relname FROM pg_catalog.pg_class WHERE oid = part));
  END LOOP;
END
$rlsctl$;`);
    // The declared index leads with the tenant column, so it serves the predicate: no second index.
    expect(indexSql(model)).toEqual(['CREATE INDEX CONCURRENTLY IF NOT EXISTS projects_tenant_id_created_at_idx ON app.projects (tenant_id, created_at);']);
  });

  it('a tenant table limited to some commands: the guard for all, a permissive policy per allowed command', async () => {
    const model = await compileYaml('schemas:\n  app:\n    tables:\n      events:\n        commands: [insert, select]\n');
    expect(tableSql(model, 'app.events')).toBe(`DROP POLICY IF EXISTS rlsctl_tenant_guard ON app.events;
CREATE POLICY rlsctl_tenant_guard ON app.events
  AS RESTRICTIVE FOR ALL
  TO app_user, app_reader
  USING (tenant_id = ${TENANT})
  WITH CHECK (tenant_id = ${TENANT});

DROP POLICY IF EXISTS rlsctl_tenant_select ON app.events;
CREATE POLICY rlsctl_tenant_select ON app.events
  AS PERMISSIVE FOR SELECT
  TO app_user, app_reader
  USING (tenant_id = ${TENANT});

DROP POLICY IF EXISTS rlsctl_tenant_insert ON app.events;
CREATE POLICY rlsctl_tenant_insert ON app.events
  AS PERMISSIVE FOR INSERT
  TO app_user, app_reader
  WITH CHECK (tenant_id = ${TENANT});

ALTER TABLE app.events ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.events FORCE ROW LEVEL SECURITY;`);
    expect(indexSql(model)).toEqual(['CREATE INDEX CONCURRENTLY IF NOT EXISTS events_tenant_id_idx ON app.events (tenant_id);']);
  });

  it('a table whose tenant comes via its parent: EXISTS on the parent row, the via columns indexed', async () => {
    const model = await compileYaml(
      'schemas:\n  app:\n    tables:\n      projects: tenant\n  billing:\n    tables:\n      projects:\n        via: { parent: app.projects, columns: [project_id, tenant_id], references: [id, tenant_id] }\n',
    );
    const exists = 'EXISTS (SELECT 1 FROM app.projects AS rls_parent WHERE rls_parent.id = projects.project_id AND rls_parent.tenant_id = projects.tenant_id)';
    expect(tableSql(model, 'billing.projects')).toBe(`DROP POLICY IF EXISTS rlsctl_tenant_guard ON billing.projects;
CREATE POLICY rlsctl_tenant_guard ON billing.projects
  AS RESTRICTIVE FOR ALL
  TO app_user, app_reader
  USING (${exists})
  WITH CHECK (${exists});

DROP POLICY IF EXISTS rlsctl_tenant_access ON billing.projects;
CREATE POLICY rlsctl_tenant_access ON billing.projects
  AS PERMISSIVE FOR ALL
  TO app_user, app_reader
  USING (${exists})
  WITH CHECK (${exists});

ALTER TABLE billing.projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE billing.projects FORCE ROW LEVEL SECURITY;`);
    expect(indexSql(model, 'billing.projects')).toEqual([
      'CREATE INDEX CONCURRENTLY IF NOT EXISTS projects_project_id_tenant_id_idx ON billing.projects (project_id, tenant_id);',
    ]);
    // A partition names itself in the predicate, by its own name.
    expect(partitionSql(model, 'billing.projects', { qualified: 'billing.projects_2026', name: 'projects_2026' })).toContain(
      'WHERE rls_parent.id = projects_2026.project_id AND rls_parent.tenant_id = projects_2026.tenant_id',
    );
    expect(desiredTable(model, model.tables[1])).toMatchObject({
      tenantColumn: undefined,
      viaParent: { schema: 'app', name: 'projects', columns: ['id', 'tenant_id'] },
    });
    // compile reads no database: the script says that the key is plan's and apply's to check.
    expect(compileScript(model)).toContain(
      '-- billing.projects: tenant, via app.projects (project_id, tenant_id) -> (id, tenant_id), which must be a unique key of app.projects: compile cannot check it, plan and apply do\n',
    );
  });

  it('a via table named like the parent alias gets another alias, so its columns are not the parent’s', async () => {
    const model = await compileYaml(
      'schemas:\n  app:\n    tables:\n      p: tenant\n      rls_parent:\n        via: { parent: p, columns: [p_id], references: [id] }\n',
    );
    expect(tableSql(model, 'app.rls_parent')).toContain('USING (EXISTS (SELECT 1 FROM app.p AS rls_parent_row WHERE rls_parent_row.id = rls_parent.p_id))');
  });

  it('a shared table: one SELECT policy admitting every row, no write policy, RLS forced', async () => {
    const model = await compileYaml(
      'schemas:\n  app:\n    tables:\n      countries:\n        mode: shared\n        indexes: [{ columns: [code], unique: true }]\n',
    );
    expect(tableSql(model, 'app.countries')).toBe(`DROP POLICY IF EXISTS rlsctl_shared_read ON app.countries;
CREATE POLICY rlsctl_shared_read ON app.countries
  AS PERMISSIVE FOR SELECT
  TO app_user, app_reader
  USING (true);

ALTER TABLE app.countries ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.countries FORCE ROW LEVEL SECURITY;`);
    // No tenant column is prepended on a shared table.
    expect(indexSql(model)).toEqual(['CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS countries_code_idx ON app.countries (code);']);
  });

  it('an exempt table: no statement at all, a comment with its reason', async () => {
    const model = await compileYaml('schemas:\n  app:\n    tables:\n      schema_migrations: { mode: exempt, reason: migration bookkeeping }\n');
    expect(compileStatements(model)).toEqual([]);
    expect(desiredState(model).tables).toEqual([{ schema: 'app', name: 'schema_migrations', mode: 'exempt', policies: [], indexes: [] }]);
    expect(compileScript(model)).toContain('\n-- app.schema_migrations: exempt (migration bookkeeping); left as it is.\nCOMMIT;\n');
  });

  it('extra policies as written; a trailing `--` comment ends on its own line, in the table and in its partitions', async () => {
    const model = await compileYaml(`schemas:
  app:
    tables:
      tickets:
        commands: [select]
        policies:
          - name: support_read
            to: [support_agent]
            for: select
            using: "true -- support sees every ticket"
          - name: closed_is_final
            to: [app_user]
            for: update
            as: restrictive
            using: "status <> 'closed'"
            check: "status LIKE 'open%'"
`);
    expect(tableSql(model, 'app.tickets')).toBe(`DROP POLICY IF EXISTS rlsctl_tenant_guard ON app.tickets;
CREATE POLICY rlsctl_tenant_guard ON app.tickets
  AS RESTRICTIVE FOR ALL
  TO app_user, app_reader
  USING (tenant_id = ${TENANT})
  WITH CHECK (tenant_id = ${TENANT});

DROP POLICY IF EXISTS rlsctl_tenant_select ON app.tickets;
CREATE POLICY rlsctl_tenant_select ON app.tickets
  AS PERMISSIVE FOR SELECT
  TO app_user, app_reader
  USING (tenant_id = ${TENANT});

DROP POLICY IF EXISTS support_read ON app.tickets;
CREATE POLICY support_read ON app.tickets
  AS PERMISSIVE FOR SELECT
  TO support_agent
  USING (
    true -- support sees every ticket
  );

DROP POLICY IF EXISTS closed_is_final ON app.tickets;
CREATE POLICY closed_is_final ON app.tickets
  AS RESTRICTIVE FOR UPDATE
  TO app_user
  USING (status <> 'closed')
  WITH CHECK (status LIKE 'open%');

ALTER TABLE app.tickets ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.tickets FORCE ROW LEVEL SECURITY;`);
    // What the partition block runs for a partition: every statement whole, the
    // comment ended before the closing parenthesis, `%` kept as written.
    const forPartition = partitionSql(model, 'app.tickets', { qualified: 'app.tickets_p1', name: 'tickets_p1' });
    expect(statementKinds(forPartition)).toEqual([
      'DropStmt:OBJECT_POLICY',
      'CreatePolicyStmt',
      'DropStmt:OBJECT_POLICY',
      'CreatePolicyStmt',
      'DropStmt:OBJECT_POLICY',
      'CreatePolicyStmt',
      'DropStmt:OBJECT_POLICY',
      'CreatePolicyStmt',
      'AlterTableStmt',
      'AlterTableStmt',
    ]);
    expect(forPartition).toContain(
      "CREATE POLICY closed_is_final ON app.tickets_p1\n  AS RESTRICTIVE FOR UPDATE\n  TO app_user\n  USING (status <> 'closed')\n  WITH CHECK (status LIKE 'open%');",
    );
    expect(forPartition).toContain('  USING (\n    true -- support sees every ticket\n  );\nDROP POLICY IF EXISTS closed_is_final ON app.tickets_p1;');
  });

  it('quotes names that need it: capitals, spaces, keywords, double quotes; leaves plain ones bare', async () => {
    const model = await compileYaml(
      `schemas:
  "Billing":
    tables:
      "Invoice Lines":
        column: Tenant Id
        policies:
          - { name: "Say \\"hi\\"", to: ["select", public], for: select, using: "true" }
      order: tenant
`,
      'version: 1\nroles: { app: ["App User"] }\n',
    );
    expect(tableSql(model, 'Billing.Invoice Lines')).toBe(`DROP POLICY IF EXISTS rlsctl_tenant_guard ON "Billing"."Invoice Lines";
CREATE POLICY rlsctl_tenant_guard ON "Billing"."Invoice Lines"
  AS RESTRICTIVE FOR ALL
  TO "App User"
  USING ("Tenant Id" = ${TENANT})
  WITH CHECK ("Tenant Id" = ${TENANT});

DROP POLICY IF EXISTS rlsctl_tenant_access ON "Billing"."Invoice Lines";
CREATE POLICY rlsctl_tenant_access ON "Billing"."Invoice Lines"
  AS PERMISSIVE FOR ALL
  TO "App User"
  USING ("Tenant Id" = ${TENANT})
  WITH CHECK ("Tenant Id" = ${TENANT});

DROP POLICY IF EXISTS "Say ""hi""" ON "Billing"."Invoice Lines";
CREATE POLICY "Say ""hi""" ON "Billing"."Invoice Lines"
  AS PERMISSIVE FOR SELECT
  TO "select", PUBLIC
  USING (true);

ALTER TABLE "Billing"."Invoice Lines" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "Billing"."Invoice Lines" FORCE ROW LEVEL SECURITY;`);
    expect(tableSql(model, 'Billing.order')).toContain('CREATE POLICY rlsctl_tenant_guard ON "Billing"."order"\n');
    expect(indexSql(model)).toEqual([
      'CREATE INDEX CONCURRENTLY IF NOT EXISTS "Invoice Lines_Tenant Id_idx" ON "Billing"."Invoice Lines" ("Tenant Id");',
      'CREATE INDEX CONCURRENTLY IF NOT EXISTS order_tenant_id_idx ON "Billing"."order" (tenant_id);',
    ]);
  });

  it.each([
    ['bigint', "(SELECT NULLIF(pg_catalog.current_setting('app.org', true), '')::bigint)"],
    ['integer', "(SELECT NULLIF(pg_catalog.current_setting('app.org', true), '')::integer)"],
    ['text', "(SELECT NULLIF(pg_catalog.current_setting('app.org', true), ''))"],
  ])('casts the setting to the tenant type %s', async (type, expression) => {
    const model = await compileYaml(`tenant: { setting: app.org, type: ${type}, column: org }\nschemas:\n  app:\n    tables:\n      t: tenant\n`);
    expect(tableSql(model, 'app.t')).toContain(`  USING (org = ${expression})\n`);
  });
});

describe('compile: index names', () => {
  it('hashes a name past 63 bytes, deterministically and within 63 bytes', async () => {
    const table = 'a'.repeat(60);
    const model = await compileYaml(`schemas:\n  app:\n    tables:\n      ${table}: tenant\n`);
    expect(indexSql(model)).toEqual([`CREATE INDEX CONCURRENTLY IF NOT EXISTS ${'a'.repeat(54)}_eb7a55b6 ON app.${table} (tenant_id);`]);
    expect(indexName(table, ['tenant_id'])).toBe(indexName(table, ['tenant_id']));
    expect(identBytes(indexName(table, ['tenant_id']))).toBe(63);
    // The hash is of the whole name: names that differ only past the cut still differ.
    expect(indexName(table, ['tenant_id', 'created_at'])).not.toBe(indexName(table, ['tenant_id', 'updated_at']));
    // Up to 63 bytes the name is left whole.
    expect(indexName('t', ['c'.repeat(57)])).toBe(`t_${'c'.repeat(57)}_idx`);
  });

  it('cuts a long multi-byte name on whole characters', () => {
    const name = indexName('😀'.repeat(20), ['tenant_id']);
    expect(identBytes(name)).toBeLessThanOrEqual(63);
    expect(name).toMatch(/^(😀)+_[0-9a-f]{8}$/u);
    expect(Buffer.from(name, 'utf8').toString('utf8')).toBe(name);
  });
});

describe('compile: the whole script', () => {
  it('is one transaction for the policies and RLS flags, then the indexes outside it', async () => {
    const model = await compileYaml(
      'schemas:\n  app:\n    tables:\n      t: shared\n      u: tenant\n',
      'version: 1\ntenant: { setting: app.org, type: text }\nroles: { app: [app_user] }\n',
    );
    const script = compileScript(model);
    expect(script.split('\n').slice(0, 9)).toEqual([
      '-- Generated by rlsctl compile from p.yaml.',
      '-- Concurrent index builds: run it with psql (psql -v ON_ERROR_STOP=1 -f FILE), not inside a transaction (compile --transactional writes a script for that).',
      '-- Idempotent: run it any number of times; each run leaves the same catalog.',
      '-- Tenant setting app.org (text); app roles: app_user.',
      'SET standard_conforming_strings = on;',
      '',
      'BEGIN;',
      '',
      '-- app.t: shared: every tenant reads, no app role writes',
    ]);
    const indexPart = script.slice(script.indexOf('COMMIT;\n'));
    expect(indexPart.split('\n').slice(0, 7)).toEqual([
      'COMMIT;',
      '',
      '-- Tenant indexes, built without blocking writes. CREATE INDEX CONCURRENTLY cannot run inside a',
      '-- transaction block, so each runs on its own, listed by a query that psql runs with \\gexec. A',
      '-- partitioned table cannot be indexed concurrently: its partitions are, then attached to an index',
      '-- created ON ONLY the parent (as `rlsctl apply` does).',
      '-- index u_tenant_id_idx on app.u (tenant_id)',
    ]);
    // The statement for a table that is not partitioned, as psql's \gexec runs it; the rest is decided at run time.
    expect(indexPart).toContain("SELECT 0 AS k, 'CREATE INDEX CONCURRENTLY IF NOT EXISTS u_tenant_id_idx ON app.u (tenant_id);' AS statement");
    expect(indexPart.match(/^\\gexec$/gm)).toHaveLength(1);
    expect(statementKinds(script)).toEqual([
      'VariableSetStmt',
      'TransactionStmt',
      ...['DropStmt:OBJECT_POLICY', 'CreatePolicyStmt', 'AlterTableStmt', 'AlterTableStmt', 'DoStmt'],
      ...['DropStmt:OBJECT_POLICY', 'CreatePolicyStmt', 'DropStmt:OBJECT_POLICY', 'CreatePolicyStmt', 'AlterTableStmt', 'AlterTableStmt', 'DoStmt'],
      'TransactionStmt',
      'SelectStmt',
      'DoStmt',
    ]);
  });

  it('--transactional: no BEGIN/COMMIT of its own and no CONCURRENTLY, the indexes built in the same transaction', async () => {
    const model = await compileYaml(
      'schemas:\n  app:\n    tables:\n      t: shared\n      u: tenant\n',
      'version: 1\ntenant: { setting: app.org, type: text }\nroles: { app: [app_user] }\n',
    );
    const script = compileScript(model, { transactional: true });
    expect(script.split('\n').slice(0, 4)).toEqual([
      '-- Generated by rlsctl compile from p.yaml.',
      '-- Transactional (compile --transactional): no BEGIN/COMMIT of its own, every index built inside the transaction; run it in one transaction, as migration tools do (psql -1 -v ON_ERROR_STOP=1 -f FILE).',
      '-- Idempotent: run it any number of times; each run leaves the same catalog.',
      '-- Tenant setting app.org (text); app roles: app_user.',
    ]);
    expect(script).not.toContain('CONCURRENTLY');
    expect(
      script.endsWith(
        '\n-- Tenant indexes, built in this transaction (CREATE INDEX blocks writes to the table while it builds).\nCREATE INDEX IF NOT EXISTS u_tenant_id_idx ON app.u (tenant_id);\n',
      ),
    ).toBe(true);
    expect(statementKinds(script)).toEqual([
      'VariableSetStmt',
      ...['DropStmt:OBJECT_POLICY', 'CreatePolicyStmt', 'AlterTableStmt', 'AlterTableStmt', 'DoStmt'],
      ...['DropStmt:OBJECT_POLICY', 'CreatePolicyStmt', 'DropStmt:OBJECT_POLICY', 'CreatePolicyStmt', 'AlterTableStmt', 'AlterTableStmt', 'DoStmt'],
      'IndexStmt',
    ]);
    expect(compileStatements(model, { transactional: true }).every((s) => s.phase === 'transaction')).toBe(true);
  });

  it('is the same text every time', async () => {
    const model = await loadPolicy(path.join(ROOT, 'policies/saas.yaml'));
    const again = await loadPolicy(path.join(ROOT, 'policies/saas.yaml'));
    expect(compileScript(model)).toBe(compileScript(again));
  });

  it('keeps line breaks of an exempt reason inside the comment, so they cannot turn text into SQL', async () => {
    const model = await compileYaml(
      'schemas:\n  app:\n    tables:\n      log:\n        mode: exempt\n        reason: "holds no tenant rows\\nDROP TABLE app.customers; --\\rALTER ROLE app_user SUPERUSER;"\n',
    );
    const script = compileScript(model);
    expect(statementKinds(script)).toEqual(['VariableSetStmt', 'TransactionStmt', 'TransactionStmt']);
    expect(script).toContain('-- app.log: exempt (holds no tenant rows DROP TABLE app.customers; -- ALTER ROLE app_user SUPERUSER;); left as it is.\n');
  });

  it('keeps line breaks of a file name inside the header comment', async () => {
    const model = await parsePolicy([{ file: 'evil\nDROP TABLE x;.yaml', text: 'version: 1\nroles: { app: [a] }\n' }]);
    expect(statementKinds(compileScript(model))).toEqual(['VariableSetStmt', 'TransactionStmt', 'TransactionStmt']);
  });

  it.each([...readdirSync(path.join(ROOT, 'fixtures/policy/valid')).map((f) => `fixtures/policy/valid/${f}`), 'fixtures/policy/multi', 'policies/saas.yaml'])(
    'the script of %s is SQL that PostgreSQL parses, made only of the statements compile writes',
    async (fixture) => {
      const model = await loadPolicy(path.join(ROOT, fixture));
      const kinds = new Set(statementKinds(compileScript(model)));
      // tenant.membership adds the lookup function: CREATE FUNCTION, its owner (a DO block), REVOKE and GRANT EXECUTE.
      const membership = model.tenant.membership ? ['CreateFunctionStmt', 'GrantStmt'] : [];
      for (const kind of kinds)
        expect([
          'VariableSetStmt',
          'TransactionStmt',
          'DropStmt:OBJECT_POLICY',
          'CreatePolicyStmt',
          'AlterTableStmt',
          'DoStmt',
          'SelectStmt',
          ...membership,
        ]).toContain(kind);
      if (model.tenant.membership) expect([...kinds]).toEqual(expect.arrayContaining(membership));
    },
  );
});
