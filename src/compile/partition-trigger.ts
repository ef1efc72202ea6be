import type { PolicyModel } from '../policy/model.js';
import { desiredState, viaAliasSql } from './desired-state.js';
import { qualify, quoteIdent, quoteLiteral } from './quote.js';
import { partitionTemplate } from './render-sql.js';
import type { Statement } from './statement.js';
import type { PartitionTriggerState } from '../catalog/catalog-rows.js';

/**
 * `partitions: { protect_new: true }` in the policy file: an event trigger on
 * ddl_command_end for CREATE TABLE and ALTER TABLE (ATTACH PARTITION is an
 * ALTER TABLE) that gives each partition under a declared table the RLS flags
 * and policies of its nearest declared ancestor, in the same statement that
 * created or attached it. The function carries the declared tables and their
 * partition templates (the statements `compile` runs for existing partitions,
 * render-sql.ts partitionTemplate) as literals: apply replaces it when the
 * file changes, and nothing else tells it which tables are declared.
 *
 * Security: the function is SECURITY INVOKER (it runs as the role that ran
 * the DDL, who owns the new partition), its search_path is pinned to
 * pg_catalog, pg_temp, every name it builds is quoted by format() (%I, or a
 * regclass), and it must be owned by a superuser like the event trigger
 * itself, or its owner could run code as any superuser who runs DDL: plan
 * replaces a function or schema owned by another role.
 */

export const TRIGGER_SCHEMA = 'rlsctl';
export const TRIGGER_FUNCTION = 'protect_new_partitions';
export const EVENT_TRIGGER = 'rlsctl_protect_new_partitions';
/**
 * Set (transaction-local) while the trigger runs, so that its own ALTER TABLE does not fire it
 * again, and by apply, whose plan already covers every partition it knows.
 */
export const GUARD_SETTING = 'rlsctl.protecting_partitions';
const SEARCH_PATH = 'pg_catalog, pg_temp';
const TAGS = ['ALTER TABLE', 'CREATE TABLE'];

const functionSql = qualify(TRIGGER_SCHEMA, TRIGGER_FUNCTION);

/** The PL/pgSQL body of the trigger function for a policy file (deterministic: plan compares it with prosrc). */
export function triggerFunctionBody(model: PolicyModel): string {
  const rows = desiredState(model)
    .tables.filter((t) => t.rls)
    .map(
      (t) =>
        `      (${quoteLiteral(t.schema)}, ${quoteLiteral(t.name)}, ${quoteLiteral(partitionTemplate(t))}, ` +
        `ARRAY[${t.policies.map((p) => quoteLiteral(p.name)).join(', ')}]::pg_catalog.text[])`,
    );
  // A file with no protected table still gets a valid (empty) VALUES list.
  const declared =
    rows.length > 0
      ? `(VALUES\n${rows.join(',\n')}\n    )`
      : '(SELECT NULL::pg_catalog.text, NULL::pg_catalog.text, NULL::pg_catalog.text, NULL::pg_catalog.text[] WHERE false)';
  return [
    '',
    'DECLARE',
    '  part pg_catalog.oid;',
    '  root pg_catalog.oid;',
    '  tpl pg_catalog.text;',
    '  wanted pg_catalog.text[];',
    'BEGIN',
    `  IF pg_catalog.current_setting(${quoteLiteral(GUARD_SETTING)}, true) = 'on' THEN`,
    '    RETURN;',
    '  END IF;',
    `  PERFORM pg_catalog.set_config(${quoteLiteral(GUARD_SETTING)}, 'on', true);`,
    '  FOR part IN',
    '    SELECT DISTINCT t.relid',
    '      FROM pg_catalog.pg_event_trigger_ddl_commands() AS c',
    '      CROSS JOIN LATERAL pg_catalog.pg_partition_tree(c.objid) AS t',
    "     WHERE c.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND c.object_type = 'table'",
    '  LOOP',
    '    -- The nearest declared table at or above the relation: its own declaration wins.',
    '    SELECT a.relid, d.template, d.policies INTO root, tpl, wanted',
    '      FROM pg_catalog.pg_partition_ancestors(part) WITH ORDINALITY AS a(relid, depth)',
    '      JOIN pg_catalog.pg_class r ON r.oid = a.relid',
    '      JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace',
    `      JOIN ${declared} AS d(schema_name, table_name, template, policies)`,
    '        ON d.schema_name = n.nspname AND d.table_name = r.relname',
    '     ORDER BY a.depth',
    '     LIMIT 1;',
    '    CONTINUE WHEN root IS NULL OR root = part;',
    '    -- Already protected (apply ran, or an attached table carried them): left as it is.',
    '    CONTINUE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE oid = part AND relrowsecurity AND relforcerowsecurity)',
    '      AND (SELECT pg_catalog.count(*) FROM pg_catalog.pg_policy WHERE polrelid = part AND polname OPERATOR(pg_catalog.=) ANY (wanted)) = pg_catalog.cardinality(wanted);',
    // %3$I, the alias of a `via` parent, must differ from the partition's own name (format() ignores it where unused).
    `    EXECUTE pg_catalog.format(tpl, part::pg_catalog.regclass, (SELECT relname FROM pg_catalog.pg_class WHERE oid = part), ${viaAliasSql('(SELECT relname FROM pg_catalog.pg_class WHERE oid = part)')});`,
    '  END LOOP;',
    `  PERFORM pg_catalog.set_config(${quoteLiteral(GUARD_SETTING)}, 'off', true);`,
    'END',
    '',
  ].join('\n');
}

/** A dollar-quote tag that does not occur in the text. */
function dollarTag(text: string): string {
  let tag = '$rlsctl_fn$';
  for (let i = 1; text.includes(tag); i++) tag = `$rlsctl_fn${i}$`;
  return tag;
}

export function createFunctionSql(model: PolicyModel): string {
  const body = triggerFunctionBody(model);
  const tag = dollarTag(body);
  return [
    `CREATE OR REPLACE FUNCTION ${functionSql}() RETURNS event_trigger`,
    `  LANGUAGE plpgsql SECURITY INVOKER SET search_path = ${SEARCH_PATH}`,
    `  AS ${tag}${body}${tag};`,
    `ALTER FUNCTION ${functionSql}() OWNER TO CURRENT_USER;`,
    `REVOKE ALL ON FUNCTION ${functionSql}() FROM PUBLIC;`,
  ].join('\n');
}

export function createEventTriggerSql(): string {
  return (
    `CREATE EVENT TRIGGER ${quoteIdent(EVENT_TRIGGER)} ON ddl_command_end\n` +
    `  WHEN TAG IN (${TAGS.map(quoteLiteral).join(', ')})\n` +
    `  EXECUTE FUNCTION ${functionSql}();`
  );
}

/** The statements that bring the trigger to what the file asks: installed and current, or gone. */
export function planPartitionTrigger(model: PolicyModel, state: PartitionTriggerState): Statement[] {
  const out: Statement[] = [];
  const schemaSql = quoteIdent(TRIGGER_SCHEMA);
  const fnTarget = { kind: 'function' as const, schema: TRIGGER_SCHEMA, name: TRIGGER_FUNCTION };
  const trgTarget = { kind: 'function' as const, schema: TRIGGER_SCHEMA, name: EVENT_TRIGGER };
  if (!model.partitions?.protectNew) {
    if (state.trigger) {
      out.push({
        sql: `DROP EVENT TRIGGER ${quoteIdent(EVENT_TRIGGER)};`,
        target: trgTarget,
        hazards: ['AUTHZ_WIDENS', 'DROP'],
        reasons: {
          AUTHZ_WIDENS: 'a partition created or attached later under a declared table is readable in full by a query that names it, until the next apply',
          DROP: `drops the event trigger ${EVENT_TRIGGER}: the policy file no longer sets partitions.protect_new`,
        },
        phase: 'transaction',
        summary: `drop event trigger ${EVENT_TRIGGER}: the policy file no longer sets partitions.protect_new`,
      });
    }
    if (state.fn) {
      out.push({
        sql: `DROP FUNCTION ${functionSql}();`,
        target: fnTarget,
        hazards: ['DROP'],
        phase: 'transaction',
        summary: `drop function ${TRIGGER_SCHEMA}.${TRIGGER_FUNCTION}() of the partition event trigger`,
      });
    }
    if (state.schema && state.schema.otherObjects === 0) {
      out.push({
        sql: `DROP SCHEMA ${schemaSql};`,
        target: { kind: 'function', schema: TRIGGER_SCHEMA, name: TRIGGER_SCHEMA },
        hazards: ['DROP'],
        reasons: { DROP: `drops the schema ${TRIGGER_SCHEMA}, which held only the partition trigger's function` },
        phase: 'transaction',
        summary: `drop schema ${TRIGGER_SCHEMA}, empty without the partition trigger's function`,
      });
    }
    return out;
  }
  if (!state.schema || !state.schema.ownerSuper) {
    out.push({
      sql: state.schema ? `ALTER SCHEMA ${schemaSql} OWNER TO CURRENT_USER;` : `CREATE SCHEMA ${schemaSql};\nREVOKE ALL ON SCHEMA ${schemaSql} FROM PUBLIC;`,
      target: { kind: 'function', schema: TRIGGER_SCHEMA, name: TRIGGER_SCHEMA },
      hazards: [],
      phase: 'transaction',
      summary: state.schema
        ? `give schema ${TRIGGER_SCHEMA} to the applying superuser: its owner is not a superuser`
        : `create schema ${TRIGGER_SCHEMA} for the partition event trigger's function`,
    });
  }
  const fn = state.fn;
  const fnCurrent =
    fn !== undefined &&
    fn.source === triggerFunctionBody(model) &&
    fn.config.length === 1 &&
    fn.config[0] === `search_path=${SEARCH_PATH}` &&
    !fn.securityDefiner &&
    fn.ownerSuper;
  if (!fnCurrent) {
    out.push({
      sql: createFunctionSql(model),
      target: fnTarget,
      hazards: ['AUTHZ_NARROWS'],
      reasons: {
        AUTHZ_NARROWS:
          "each partition created or attached later under a declared table gets its RLS flags and policies at once: a query that names it sees only its tenant's rows",
      },
      phase: 'transaction',
      summary: `${fn ? 'replace' : 'create'} function ${TRIGGER_SCHEMA}.${TRIGGER_FUNCTION}(): protects new partitions of the declared tables${fn ? ' (the declared tables or policies changed)' : ''}`,
    });
  }
  const t = state.trigger;
  const trgCurrent = t !== undefined && t.event === 'ddl_command_end' && t.enabled === 'O' && t.callsFunction && t.tags.join('|') === TAGS.join('|');
  if (!trgCurrent) {
    out.push({
      sql: `${t ? `DROP EVENT TRIGGER ${quoteIdent(EVENT_TRIGGER)};\n` : ''}${createEventTriggerSql()}`,
      target: trgTarget,
      hazards: t ? ['DROP'] : [],
      phase: 'transaction',
      summary: `${t ? 'replace' : 'create'} event trigger ${EVENT_TRIGGER} (partitions.protect_new): runs ${TRIGGER_SCHEMA}.${TRIGGER_FUNCTION}() after every CREATE TABLE and ALTER TABLE`,
    });
  }
  return out;
}

/**
 * The first statement of a plan that changes tables while the trigger is installed: the trigger
 * stands aside for the transaction, whose statements already cover every partition (a migration
 * file runs them without apply, which sets the same guard).
 */
export const GUARD_SQL = `SELECT pg_catalog.set_config(${quoteLiteral(GUARD_SETTING)}, 'on', true);`;

export function triggerGuardStatement(): Statement {
  return {
    sql: GUARD_SQL,
    target: { kind: 'function', schema: TRIGGER_SCHEMA, name: TRIGGER_FUNCTION },
    hazards: [],
    phase: 'transaction',
    summary: `the partition event trigger ${EVENT_TRIGGER} stands aside for this transaction: its statements cover every partition`,
  };
}

/** Why the plan cannot run, when its trigger statements need a superuser and the role is not one. */
export function partitionTriggerProblem(statements: Statement[], state: PartitionTriggerState): string | undefined {
  if (state.superuser || !statements.some((s) => s.target.kind === 'function')) return undefined;
  return `partitions.protect_new needs a superuser to create, replace or drop the event trigger ${EVENT_TRIGGER} (CREATE EVENT TRIGGER is reserved to superusers), and the current role is not one`;
}
