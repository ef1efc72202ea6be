import type { PolicyModel } from '../policy/model.js';
import { embedExpression } from '../policy/expression.js';
import { desiredState, staleGeneratedPolicySql, viaAliasSql, type DesiredTable, type IndexSpec, type PolicySpec } from './desired-state.js';
import type { Statement } from './statement.js';
import { describeMembership, memberFunctionStatement, membershipIndexes } from './membership.js';
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
  return indexStatement(index, { ...options, on: qualify(index.schema, index.table), name: index.name });
}

/** CREATE [UNIQUE] INDEX on `on` (SQL text of the relation); without a name, PostgreSQL picks a free one. */
function indexStatement(
  index: Pick<IndexSpec, 'columns' | 'unique'>,
  options: { concurrently?: boolean; ifNotExists?: boolean; only?: boolean; name?: string; on: string },
): string {
  return (
    `CREATE ${index.unique ? 'UNIQUE ' : ''}INDEX ${options.concurrently ? 'CONCURRENTLY ' : ''}${options.ifNotExists ? 'IF NOT EXISTS ' : ''}` +
    `${options.name === undefined ? '' : `${quoteIdent(options.name)} `}ON ${options.only ? 'ONLY ' : ''}${options.on} (${index.columns.map(quoteIdent).join(', ')});`
  );
}

/**
 * The idempotent script of `rlsctl compile`: every policy dropped if it
 * exists and created again, RLS enabled and forced, all in one transaction;
 * partitions found at run time get the same; then the tenant indexes,
 * CONCURRENTLY and IF NOT EXISTS, outside the transaction because CREATE
 * INDEX CONCURRENTLY cannot run inside a transaction block (compileScript
 * writes them for psql, partitioned tables included: psqlIndexSql). With
 * `transactional`, the indexes are plain CREATE INDEX IF NOT EXISTS in the
 * transaction.
 */
export interface CompileOptions {
  /**
   * For migration tools that run each file in one transaction: no
   * CONCURRENTLY anywhere (a plain CREATE INDEX IF NOT EXISTS, which on a
   * partitioned table builds the index of every partition too) and no
   * BEGIN/COMMIT of its own (the tool, or `psql -1`, wraps it).
   */
  transactional?: boolean;
}

export function compileStatements(model: PolicyModel, options: CompileOptions = {}): Statement[] {
  // The membership lookup first: the policies call it.
  const statements: Statement[] = model.tenant.membership ? [memberFunctionStatement(model)] : [];
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
      summary: `rlsctl policies the file no longer produces dropped, and the same for every partition of ${table.schema}.${table.name}`,
    });
  }
  for (const table of [...desiredState(model).tables, { indexes: membershipIndexes(model) }]) {
    for (const index of table.indexes) {
      statements.push({
        sql: createIndexSql(index, { concurrently: !options.transactional, ifNotExists: true }),
        target: { kind: 'index', schema: index.schema, table: index.table, name: index.name },
        hazards: options.transactional ? ['INDEX_BUILD', 'TABLE_LOCK'] : ['INDEX_BUILD'],
        phase: options.transactional ? 'transaction' : 'concurrent',
        summary: `index ${index.name} on ${index.schema}.${index.table} (${index.columns.join(', ')})`,
      });
    }
  }
  return statements;
}

// format() placeholders used in partition templates: %1$s the partition as a
// regclass (schema-qualified and quoted as needed), %2$I its bare name, %3$I
// the alias of a `via` parent, which must differ from the partition's name.
const SELF = '\u0001SELF\u0001';
const NAME = '\u0001NAME\u0001';
const ALIAS = '\u0001ALIAS\u0001';

/**
 * The statements that protect one partition like its declared table, as a
 * pg_catalog.format() template: %1$s the partition as a regclass, %2$I its
 * bare name, %3$I the alias of a `via` parent (viaAliasArgument gives it).
 * Shared by the compiled script and the partition event trigger
 * (src/compile/partition-trigger.ts).
 */
export function partitionTemplate(table: DesiredTable): string {
  return [
    // The statements keep their line breaks: a hand-written expression may end
    // in a `--` comment, and joined onto one line that comment would swallow
    // the rest of the template; a string literal in it may hold a line break.
    ...table.policies.map((p) => `${dropPolicySql(SELF, p.name, true)}\n${createPolicySql(SELF, p, p.forRelation(NAME, ALIAS))}`),
    `ALTER TABLE ${SELF} ENABLE ROW LEVEL SECURITY;\nALTER TABLE ${SELF} FORCE ROW LEVEL SECURITY;`,
  ]
    .join('\n')
    .replace(/%/g, '%%')
    .replaceAll(SELF, '%1$s')
    .replaceAll(`${quoteIdent(NAME)}.`, '%2$I.')
    .replaceAll(quoteIdent(ALIAS), '%3$I');
}

/**
 * The format() argument for %3$I of a partition template, as SQL over `partOid` (the partition's
 * oid or regclass): the `via` parent's alias, which must differ from the partition's own name and is
 * known only when the SQL runs. Empty when the template names no alias.
 */
export function viaAliasArgument(template: string, partOid: string): string {
  const relname = `(SELECT relname FROM pg_catalog.pg_class WHERE oid = ${partOid})`;
  return template.includes('%3$I') ? `, ${viaAliasSql(relname)}` : '';
}

/**
 * Partitions of a partitioned table are protected like their parent, so a
 * query that reads a partition directly sees only its tenant's rows too. The
 * partitions are found when the script runs (pg_partition_tree, PostgreSQL
 * 12+), so partitions added since compile are covered by the next run.
 *
 * First, the policies rlsctl generated that the file no longer produces
 * (the table narrowed to fewer commands, tenant turned shared) are dropped
 * from the table and its partitions, by the rule `plan` uses
 * (staleGeneratedPolicySql in desired-state.ts): the script converges as
 * `apply` does, and an old permissive policy cannot keep granting what the
 * file took away.
 */
function partitionBlock(table: DesiredTable): string {
  const template = partitionTemplate(table);
  const regclass = quoteLiteral(qualify(table.schema, table.name));
  const wanted = table.policies.map((p) => p.name);
  const relname = '(SELECT relname FROM pg_catalog.pg_class WHERE oid = part)';
  // The partition's name is known only when the script runs: viaAlias() in SQL.
  const alias = viaAliasArgument(template, 'part');
  return doBlock(
    [
      'DECLARE',
      '  part regclass;',
      '  stale record;',
      'BEGIN',
      '  FOR stale IN',
      '    SELECT p.polrelid::regclass AS rel, p.polname FROM pg_catalog.pg_policy p',
      // pg_partition_tree lists nothing for a table that is not partitioned.
      `    WHERE (p.polrelid = ${regclass}::regclass OR p.polrelid IN (SELECT relid FROM pg_catalog.pg_partition_tree(${regclass}::regclass)))`,
      `      AND ${staleGeneratedPolicySql('p.polname', wanted)}`,
      '  LOOP',
      "    EXECUTE pg_catalog.format('DROP POLICY %I ON %s', stale.polname, stale.rel);",
      '  END LOOP;',
      '  FOR part IN',
      `    SELECT relid FROM pg_catalog.pg_partition_tree(${regclass}::regclass)`,
      `    WHERE relid <> ${regclass}::regclass`,
      '  LOOP',
      `    EXECUTE pg_catalog.format(${quoteLiteral(template)}, part, ${relname}${alias});`,
      '  END LOOP;',
      'END',
    ].join('\n'),
  );
}

/**
 * `DO $tag$ body $tag$;` with a tag that does not occur in the body. The body
 * holds names and hand-written expressions from the policy file; with a fixed
 * tag, a string literal or a name holding it would end the block early and
 * what follows would run as top-level statements (psql goes on after an
 * error unless ON_ERROR_STOP is set).
 */
function doBlock(body: string): string {
  let tag = '$rlsctl$';
  for (let n = 1; body.includes(tag); n++) tag = `$rlsctl_${n}$`;
  return `DO ${tag}\n${body}\n${tag};`;
}

/**
 * The index shape ALTER INDEX ... ATTACH PARTITION accepts (attachable() in
 * src/plan/plan-indexes.ts): btree, key columns exactly these, no predicate,
 * expression or INCLUDE column, unique as wanted. `i` is a pg_index row.
 */
function indexShapeSql(i: string, index: IndexSpec): string {
  const n = index.columns.length;
  return [
    `${i}.indisunique = ${index.unique}`,
    `${i}.indpred IS NULL AND ${i}.indexprs IS NULL AND ${i}.indnatts = ${n} AND ${i}.indnkeyatts = ${n}`,
    `(SELECT am.amname FROM pg_catalog.pg_class ic JOIN pg_catalog.pg_am am ON am.oid = ic.relam WHERE ic.oid = ${i}.indexrelid) = 'btree'`,
    `ARRAY(SELECT pg_catalog.pg_get_indexdef(${i}.indexrelid, k, true) FROM pg_catalog.generate_series(1, ${n}) AS k ORDER BY k)` +
      ` = ARRAY[${index.columns.map((c) => `pg_catalog.quote_ident(${quoteLiteral(c)})`).join(', ')}]::text[]`,
  ].join('\n     AND ');
}

/** A format() template of `sql` where the relation is `%s`. */
function formatTemplate(build: (on: string) => string): string {
  return quoteLiteral(build(SELF).replace(/%/g, '%%').replaceAll(SELF, '%s'));
}

/**
 * The index of `rlsctl compile` for psql, which decides at run time what
 * `compile` cannot know offline: whether the table is partitioned.
 *
 * A table that is not: CREATE INDEX CONCURRENTLY IF NOT EXISTS, as ever. A
 * partitioned table cannot be indexed CONCURRENTLY (PostgreSQL 11 to 18), so
 * the rule of `rlsctl apply` (src/plan/plan-indexes.ts): each leaf partition
 * that has no index of the shape gets one built CONCURRENTLY, then the parent
 * gets CREATE INDEX ... ON ONLY (instant), each sub-partitioned partition the
 * same, and every partition's index is attached (ALTER INDEX ... ATTACH
 * PARTITION), after which PostgreSQL marks the parent's index valid by itself.
 *
 * The partitions are known only when the script runs, and CREATE INDEX
 * CONCURRENTLY cannot run inside a DO block (a transaction): a query lists the
 * concurrent builds and psql's \gexec runs each as a statement of its own
 * (with ON_ERROR_STOP, the first error stops the script). The ON ONLY indexes
 * and attachments need no concurrency: a DO block, which also builds, with a
 * plain CREATE INDEX, the index of a partition added after the query ran.
 */
function psqlIndexSql(index: IndexSpec): string {
  const table = quoteLiteral(qualify(index.schema, index.table));
  const suitable = (rel: string) =>
    [
      'EXISTS (SELECT FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid',
      `   WHERE i.indrelid = ${rel} AND i.indisvalid AND i.indisready`,
      `     AND ${indexShapeSql('i', index)}`,
      '     AND (NOT ic.relispartition OR EXISTS (SELECT FROM pg_catalog.pg_inherits h JOIN pg_catalog.pg_index pi ON pi.indexrelid = h.inhparent',
      `                                           WHERE h.inhrelid = i.indexrelid AND ${indexShapeSql('pi', index).replaceAll('\n', ' ')})))`,
    ].join('\n');
  const query = [
    'SELECT statement FROM (',
    `  SELECT 0 AS k, ${quoteLiteral(createIndexSql(index, { concurrently: true, ifNotExists: true }))} AS statement`,
    `   WHERE (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = ${table}::regclass) <> 'p'`,
    '  UNION ALL',
    `  SELECT 1, pg_catalog.format(${formatTemplate((on) => indexStatement(index, { concurrently: true, on }))}, p.relid)`,
    `    FROM pg_catalog.pg_partition_tree(${table}::regclass) p JOIN pg_catalog.pg_class c ON c.oid = p.relid`,
    `   WHERE p.level > 0 AND p.isleaf AND c.relkind = 'r' AND NOT ${suitable('p.relid')}`,
    ') AS s ORDER BY k, statement',
    '\\gexec',
  ].join('\n');
  const attachable = (leafOnly: boolean) =>
    [
      '      SELECT i.indexrelid::regclass INTO child_index FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid',
      `       WHERE i.indrelid = rel.relid AND NOT ic.relispartition${leafOnly ? ' AND (NOT rel.isleaf OR (i.indisvalid AND i.indisready))' : ''}`,
      `         AND ${indexShapeSql('i', index)}`,
      '       ORDER BY ic.relname LIMIT 1;',
    ].join('\n');
  const block = doBlock(
    [
      'DECLARE',
      `  t regclass := ${table}::regclass;`,
      '  rel record;',
      '  parent_index regclass;',
      '  child_index regclass;',
      '  rels regclass[];',
      '  targets regclass[];',
      'BEGIN',
      "  IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t) <> 'p' THEN RETURN; END IF;",
      `  ${indexStatement(index, { ifNotExists: true, only: true, name: index.name, on: qualify(index.schema, index.table) })}`,
      '  SELECT i.indexrelid::regclass INTO parent_index FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid',
      `   WHERE i.indrelid = t AND ic.relname = ${quoteLiteral(index.name)} AND ${indexShapeSql('i', index)};`,
      '  IF parent_index IS NULL THEN',
      `    RAISE EXCEPTION 'rlsctl: the name % is taken by another relation or another index shape; rlsctl apply replaces it', ${quoteLiteral(qualify(index.schema, index.name))};`,
      '  END IF;',
      '  rels := ARRAY[t];',
      '  targets := ARRAY[parent_index];',
      '  FOR rel IN',
      '    SELECT p.relid, p.parentrelid, p.isleaf FROM pg_catalog.pg_partition_tree(t) p JOIN pg_catalog.pg_class c ON c.oid = p.relid',
      "     WHERE p.level > 0 AND c.relkind IN ('r', 'p') ORDER BY p.level, p.relid::text",
      '  LOOP',
      '    parent_index := targets[pg_catalog.array_position(rels, rel.parentrelid)];',
      '    SELECT i.indexrelid::regclass INTO child_index FROM pg_catalog.pg_index i JOIN pg_catalog.pg_inherits h ON h.inhrelid = i.indexrelid',
      '     WHERE i.indrelid = rel.relid AND h.inhparent = parent_index;',
      '    IF child_index IS NULL THEN',
      attachable(true),
      '      IF child_index IS NULL THEN',
      '        IF rel.isleaf THEN',
      `          EXECUTE pg_catalog.format(${formatTemplate((on) => indexStatement(index, { on }))}, rel.relid);`,
      '        ELSE',
      `          EXECUTE pg_catalog.format(${formatTemplate((on) => indexStatement(index, { only: true, on }))}, rel.relid);`,
      '        END IF;',
      attachable(false),
      '      END IF;',
      "      EXECUTE pg_catalog.format('ALTER INDEX %s ATTACH PARTITION %s', parent_index, child_index);",
      '    END IF;',
      '    rels := rels || rel.relid;',
      '    targets := targets || child_index;',
      '  END LOOP;',
      'END',
    ].join('\n'),
  );
  return `${query}\n${block}`;
}

export function compileScript(model: PolicyModel, options: CompileOptions = {}): string {
  const statements = compileStatements(model, options);
  const transactional = options.transactional === true;
  const lines: string[] = [
    `-- Generated by rlsctl compile from ${commentText(model.files.join(', '))}.`,
    transactional
      ? '-- Transactional (compile --transactional): no BEGIN/COMMIT of its own, every index built inside the transaction; run it in one transaction, as migration tools do (psql -1 -v ON_ERROR_STOP=1 -f FILE).'
      : '-- Concurrent index builds: run it with psql (psql -v ON_ERROR_STOP=1 -f FILE), not inside a transaction (compile --transactional writes a script for that).',
    '-- Idempotent: run it any number of times; each run leaves the same catalog.',
    `-- ${commentText(model.tenant.membership ? describeMembership(model) : `Tenant setting ${model.tenant.setting}${model.tenant.claim ? `, claim ${model.tenant.claim.join('.')}` : ''} (${model.tenant.type})${model.engine === 'citus' ? ', engine citus' : ''}`)}; app roles: ${model.roles.app.join(', ')}.`,
    ...(model.partitions?.protectNew
      ? ['-- partitions.protect_new: its event trigger is installed by rlsctl apply (as a superuser), not by this script.']
      : []),
    // rlsctl's checks read the policy file's SQL as PostgreSQL does with
    // standard_conforming_strings on; with it off, a backslash in a string
    // literal would read differently (and could end the literal early).
    'SET standard_conforming_strings = on;',
    '',
    ...(transactional ? [] : ['BEGIN;', '']),
  ];
  let current = '';
  for (const statement of statements.filter((s) => s.phase === 'transaction')) {
    const key = `${statement.target.schema}.${'table' in statement.target ? statement.target.table : statement.target.name}`;
    if (statement.target.kind === 'index') {
      // --transactional: the index builds come last, after every table's policies, as in the other kind.
      if (current !== '-- indexes') lines.push('-- Tenant indexes, built in this transaction (CREATE INDEX blocks writes to the table while it builds).');
      current = '-- indexes';
    } else if (key !== current) {
      const table = model.tables.find((t) => `${t.schema}.${t.name}` === key);
      lines.push(`-- ${commentText(`${key}: ${table ? describeTable(model, table) : statement.summary}`)}`);
      current = key;
    }
    lines.push(statement.sql, '');
  }
  for (const table of model.tables.filter((t) => t.mode === 'exempt')) {
    lines.push(`-- ${commentText(`${table.schema}.${table.name}: exempt (${table.mode === 'exempt' ? table.reason : ''}); left as it is.`)}`);
  }
  if (!transactional) lines.push('COMMIT;', '');
  const indexes = transactional ? [] : [...desiredState(model).tables.flatMap((t) => t.indexes), ...membershipIndexes(model)];
  if (indexes.length > 0) {
    lines.push(
      '-- Tenant indexes, built without blocking writes. CREATE INDEX CONCURRENTLY cannot run inside a',
      '-- transaction block, so each runs on its own, listed by a query that psql runs with \\gexec. A',
      '-- partitioned table cannot be indexed concurrently: its partitions are, then attached to an index',
      '-- created ON ONLY the parent (as `rlsctl apply` does).',
      ...indexes.map(
        (index) => `-- ${commentText(`index ${index.name} on ${index.schema}.${index.table} (${index.columns.join(', ')})`)}\n${psqlIndexSql(index)}\n`,
      ),
    );
  }
  return lines.join('\n');
}

function describeTable(model: PolicyModel, table: PolicyModel['tables'][number]): string {
  switch (table.mode) {
    case 'tenant':
      return table.via
        ? // compile reads no database: the key that keeps one parent row per child row is checked by plan and apply.
          `tenant, via ${table.via.parentSchema}.${table.via.parentName} (${table.via.columns.join(', ')}) -> (${table.via.references.join(', ')}), which must be a unique key of ${table.via.parentSchema}.${table.via.parentName}: compile cannot check it, plan and apply do`
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
export function commentText(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ');
}
