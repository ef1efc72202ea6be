import type { PolicyModel } from '../policy/model.js';
import { embedExpression } from '../policy/expression.js';
import { desiredState, type DesiredTable, type IndexSpec, type PolicySpec } from './desired-state.js';
import type { Statement } from './statement.js';
import { qualify, quoteIdent, quoteLiteral } from './quote.js';

/** SQL text for the pieces of a desired state; shared by `compile` and `plan`. */

export function createPolicySql(tableSql: string, policy: PolicySpec, expressions: { using?: string; check?: string } = policy): string {
  const parts = [`CREATE POLICY ${quoteIdent(policy.name)} ON ${tableSql}`];
  parts.push(`  AS ${policy.permissive ? 'PERMISSIVE' : 'RESTRICTIVE'} FOR ${policy.command.toUpperCase()}`);
  parts.push(`  TO ${policy.roles.map(quoteRole).join(', ')}`);
  if (expressions.using !== undefined) parts.push(`  USING ${embedExpression(expressions.using)}`);
  if (expressions.check !== undefined) parts.push(`  WITH CHECK ${embedExpression(expressions.check)}`);
  return parts.join('\n') + ';';
}

export function dropPolicySql(tableSql: string, name: string, ifExists = false): string {
  return `DROP POLICY ${ifExists ? 'IF EXISTS ' : ''}${quoteIdent(name)} ON ${tableSql};`;
}

/** PUBLIC is a keyword in a role list, every other name an identifier. */
export function quoteRole(role: string): string {
  // Names in the policy file are exact, case included (as everywhere else):
  // `public` is the PUBLIC pseudo-role, `Public` a role of that name.
  return role === 'public' ? 'PUBLIC' : quoteIdent(role);
}

export function createIndexSql(index: IndexSpec, options: { concurrently: boolean; ifNotExists: boolean }): string {
  return (
    `CREATE ${index.unique ? 'UNIQUE ' : ''}INDEX ${options.concurrently ? 'CONCURRENTLY ' : ''}${options.ifNotExists ? 'IF NOT EXISTS ' : ''}` +
    `${quoteIdent(index.name)} ON ${qualify(index.schema, index.table)} (${index.columns.map(quoteIdent).join(', ')});`
  );
}

/**
 * The idempotent script of `rlsctl compile`: every policy dropped if it
 * exists and created again, RLS enabled and forced, all in one transaction;
 * partitions found at run time get the same; then the tenant indexes,
 * CONCURRENTLY and IF NOT EXISTS, outside the transaction because CREATE
 * INDEX CONCURRENTLY cannot run inside a transaction block.
 */
export function compileStatements(model: PolicyModel): Statement[] {
  const statements: Statement[] = [];
  for (const table of desiredState(model).tables) {
    if (!table.rls) continue;
    const tableSql = qualify(table.schema, table.name);
    const target = { kind: 'table' as const, schema: table.schema, name: table.name };
    for (const policy of table.policies) {
      statements.push({
        sql: `${dropPolicySql(tableSql, policy.name, true)}\n${createPolicySql(tableSql, policy)}`,
        target: { kind: 'policy', schema: table.schema, table: table.name, name: policy.name },
        hazards: ['TABLE_LOCK'],
        phase: 'transaction',
        summary: `policy ${policy.name} on ${table.schema}.${table.name}`,
      });
    }
    // Policies first, then RLS on: there is never a moment with RLS on and no policy.
    statements.push({
      sql: `ALTER TABLE ${tableSql} ENABLE ROW LEVEL SECURITY;\nALTER TABLE ${tableSql} FORCE ROW LEVEL SECURITY;`,
      target,
      hazards: ['TABLE_LOCK'],
      phase: 'transaction',
      summary: `row level security enabled and forced on ${table.schema}.${table.name}`,
    });
    statements.push({
      sql: partitionBlock(table),
      target,
      hazards: ['TABLE_LOCK'],
      phase: 'transaction',
      summary: `the same for every partition of ${table.schema}.${table.name}`,
    });
  }
  for (const table of desiredState(model).tables) {
    for (const index of table.indexes) {
      statements.push({
        sql: createIndexSql(index, { concurrently: true, ifNotExists: true }),
        target: { kind: 'index', schema: index.schema, table: index.table, name: index.name },
        hazards: ['INDEX_BUILD'],
        phase: 'concurrent',
        summary: `index ${index.name} on ${index.schema}.${index.table} (${index.columns.join(', ')})`,
      });
    }
  }
  return statements;
}

// format() placeholders used in partition templates: %1$s the partition as a
// regclass (schema-qualified and quoted as needed), %2$I its bare name.
const SELF = '\u0001SELF\u0001';
const NAME = '\u0001NAME\u0001';

/**
 * The statements that protect one partition like its declared table, as a
 * pg_catalog.format() template: %1$s the partition as a regclass, %2$I its
 * bare name. Shared by the compiled script and the partition event trigger
 * (src/compile/partition-trigger.ts).
 */
export function partitionTemplate(table: DesiredTable): string {
  return [
    // The statements keep their line breaks: a hand-written expression may end
    // in a `--` comment, and joined onto one line that comment would swallow
    // the rest of the template; a string literal in it may hold a line break.
    ...table.policies.map((p) => `${dropPolicySql(SELF, p.name, true)}\n${createPolicySql(SELF, p, p.forRelation(NAME))}`),
    `ALTER TABLE ${SELF} ENABLE ROW LEVEL SECURITY;\nALTER TABLE ${SELF} FORCE ROW LEVEL SECURITY;`,
  ]
    .join('\n')
    .replace(/%/g, '%%')
    .replaceAll(SELF, '%1$s')
    .replaceAll(`${quoteIdent(NAME)}.`, '%2$I.');
}

/**
 * Partitions of a partitioned table are protected like their parent, so a
 * query that reads a partition directly sees only its tenant's rows too. The
 * partitions are found when the script runs (pg_partition_tree, PostgreSQL
 * 12+), so partitions added since compile are covered by the next run.
 */
function partitionBlock(table: DesiredTable): string {
  const template = partitionTemplate(table);
  const regclass = quoteLiteral(qualify(table.schema, table.name));
  return [
    'DO $rlsctl$',
    'DECLARE',
    '  part regclass;',
    'BEGIN',
    '  FOR part IN',
    `    SELECT relid FROM pg_catalog.pg_partition_tree(${regclass}::regclass)`,
    `    WHERE relid <> ${regclass}::regclass`,
    '  LOOP',
    `    EXECUTE pg_catalog.format(${quoteLiteral(template)}, part, (SELECT relname FROM pg_catalog.pg_class WHERE oid = part));`,
    '  END LOOP;',
    'END',
    '$rlsctl$;',
  ].join('\n');
}

export function compileScript(model: PolicyModel): string {
  const statements = compileStatements(model);
  const lines: string[] = [
    `-- Generated by rlsctl compile from ${commentText(model.files.join(', '))}.`,
    '-- Idempotent: run it any number of times (psql -v ON_ERROR_STOP=1 -f FILE); each run leaves the same catalog.',
    `-- Tenant setting ${model.tenant.setting} (${model.tenant.type}); app roles: ${model.roles.app.join(', ')}.`,
    ...(model.partitions?.protectNew ? ['-- partitions.protect_new: its event trigger is installed by rlsctl apply (as a superuser), not by this script.'] : []),
    '',
    'BEGIN;',
    '',
  ];
  let current = '';
  for (const statement of statements.filter((s) => s.phase === 'transaction')) {
    const key = `${statement.target.schema}.${'table' in statement.target ? statement.target.table : statement.target.name}`;
    if (key !== current) {
      const table = model.tables.find((t) => `${t.schema}.${t.name}` === key);
      lines.push(`-- ${commentText(`${key}: ${table ? describeTable(model, table) : ''}`)}`);
      current = key;
    }
    lines.push(statement.sql, '');
  }
  for (const table of model.tables.filter((t) => t.mode === 'exempt')) {
    lines.push(`-- ${commentText(`${table.schema}.${table.name}: exempt (${table.mode === 'exempt' ? table.reason : ''}); left as it is.`)}`);
  }
  lines.push('COMMIT;', '');
  const indexes = statements.filter((s) => s.phase === 'concurrent');
  if (indexes.length > 0) {
    lines.push(
      '-- Tenant indexes, built without blocking writes. CREATE INDEX CONCURRENTLY cannot run inside a',
      '-- transaction block, so each runs on its own. PostgreSQL cannot build an index on a partitioned',
      '-- table concurrently: for those, `rlsctl apply` builds the index partition by partition.',
      ...indexes.map((s) => s.sql),
      '',
    );
  }
  return lines.join('\n');
}

function describeTable(model: PolicyModel, table: PolicyModel['tables'][number]): string {
  switch (table.mode) {
    case 'tenant':
      return table.via
        ? `tenant, via ${table.via.parentSchema}.${table.via.parentName} (${table.via.columns.join(', ')})`
        : `tenant (${table.column ?? model.tenant.column}), ${table.commands.join(', ')}`;
    case 'shared':
      return 'shared: every tenant reads, no app role writes';
    case 'exempt':
      return `exempt: ${table.reason}`;
  }
}

/**
 * Text for a `--` comment of the script. A line break (PostgreSQL's lexer
 * ends a `--` comment at \n or \r) in an exempt reason or a file name would
 * otherwise turn the rest of that text into SQL that psql runs.
 */
function commentText(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ');
}
