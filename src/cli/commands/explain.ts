import { Command } from 'commander';
import { openDatabase, resolveConnection } from '../../db/connection.js';
import { factsFromModel, inferFacts, type TenantFacts } from '../../facts/resolve-facts.js';
import type { PolicyModel } from '../../policy/model.js';
import { convergeDatabase } from '../../apply/converge.js';
import { failsAt } from '../../report/finding.js';
import { formatFindingsJson } from '../../report/format-json.js';
import { formatSarif } from '../../report/format-sarif.js';
import { VERSION } from '../../version.js';
import { readQueryFiles } from '../../explain/read-query-file.js';
import { runExplain } from '../../explain/run-explain.js';
import { EXPLAIN_RULES } from '../../explain/rules/registry.js';
import { formatExplainText } from '../../explain/format-explain-text.js';
import { choosePolicyModel } from '../choose-policy.js';
import { chooseAppRoles, describeAppRole } from '../app-role-member.js';
import { splitSchemaOption } from '../schema-option.js';
import { addCommonOptions, addFactOptions, addFailOn, failOnOf, formatOf, note, useColor, write, type CommonOptions } from '../common.js';

interface ExplainCliOptions extends CommonOptions {
  schema?: string[];
  tenantColumn?: string;
  tenantSetting?: string;
  appRole?: string[];
  bypassRole?: string[];
  tenant?: string[];
  failOn?: string;
}

export function explainCommand(): Command {
  const collect = (value: string, previous: string[] = []) => [...previous, value];
  return addFailOn(addFactOptions(addCommonOptions(new Command('explain'), ['text', 'json', 'sarif'])))
    .description('plan the queries in FILE as an app role with a tenant set; flag tenant filters that are not index conditions')
    .argument('<file...>', 'SQL query files (or pg_stat_statements exports as .csv or .json)')
    .option('--tenant <value>', 'the tenant to act as (repeatable; explain uses the first; default: a well-formed value of the tenant type)', collect)
    .addHelpText(
      'after',
      [
        '',
        'Each query is planned inside a READ ONLY transaction that is rolled back, after SET LOCAL ROLE to the',
        'first app role (or the first --app-role) and set_config(<tenant setting>, <tenant>, true); twice: as is,',
        'and with enable_seqscan = off. Parameters ($1, $2, ...) get the generic plan on every major.',
        '',
        'Examples:',
        '  rlsctl explain --db "$DATABASE_URL" db/queries/*.sql',
        '  rlsctl explain --policies policies/saas.yaml --schema fixtures/demo/schema.sql fixtures/demo/queries.sql',
        '  rlsctl explain --db "$DATABASE_URL" --app-role app_user --tenant-setting app.tenant_id pg_stat_statements.csv --format sarif',
        '',
      ].join('\n'),
    )
    .action(async (files: string[], options: ExplainCliOptions, command: Command) => {
      // Input first: a bad query file or policy file is exit 2 before any server starts.
      const read = await readQueryFiles(files);
      const embedded = resolveConnection(options.db).kind === 'embedded';
      // --schema is schema names on a named database, SQL to load without one (shared with audit and verify).
      const { names, sqlPath } = splitSchemaOption(options.schema, embedded);
      const model: PolicyModel | undefined = await choosePolicyModel(options, command, names, 'explain', true);
      if (read.skipped > 0)
        note(options, `skipped ${read.skipped} statement${read.skipped === 1 ? '' : 's'} of the pg_stat_statements export that are not queries`);
      const tenants = options.tenant ?? [];
      if (tenants.length > 1) note(options, `explain plans as the first --tenant (${tenants[0]}): generic plans do not depend on the tenant value`);

      const db = await openDatabase({
        db: options.db,
        schema: sqlPath,
        prepareEmbedded: model ? (database) => convergeDatabase(database, model) : undefined,
      });
      try {
        if (db.embedded)
          note(
            options,
            `no database named: planning on ${db.label}${sqlPath ? ` loaded from ${sqlPath}` : ''}${model ? ', with the policy file applied' : ''}`,
          );
        const facts: TenantFacts = model
          ? factsFromModel(model)
          : await inferFacts(
              {
                schema: names,
                tenantColumn: options.tenantColumn,
                tenantSetting: options.tenantSetting,
                appRole: options.appRole,
                bypassRole: options.bypassRole,
              },
              db.pool,
            );
        for (const line of facts.inferred) note(options, `inferred ${line}`);
        // With a policy file, --app-role still chooses whom to plan as (the facts keep the file's roles):
        // a declared app role, or a member of one, checked against the file as that app role.
        const chosen = model && options.appRole ? (await chooseAppRoles(db.pool, facts.appRoles, options.appRole.slice(0, 1)))[0] : undefined;
        if (chosen?.membership === 'set') note(options, `planning as ${describeAppRole(chosen)}`);
        const result = await runExplain(db, facts, read.queries, {
          role: chosen ? chosen.actAs : options.appRole?.[0],
          policyRole: chosen?.appRole,
          tenant: tenants[0],
          problems: read.problems,
        });
        const format = formatOf(options);
        if (format === 'json') {
          write(
            formatFindingsJson('explain', result.findings, {
              context: {
                role: result.context.role,
                ...(result.context.policyRole !== result.context.role ? { appRole: result.context.policyRole } : {}),
                tenant: result.context.tenant,
                setting: result.context.setting,
                serverVersion: result.context.serverVersion,
                hypopg: result.context.hypopg.used
                  ? 'used'
                  : result.context.hypopg.installed
                    ? 'installed'
                    : result.context.hypopg.available
                      ? 'available'
                      : 'not available',
              },
              queries: { total: result.queries.length, planned: result.queries.filter((q) => q.planned).length },
            }),
          );
        } else if (format === 'sarif') {
          write(formatSarif(result.findings, EXPLAIN_RULES, VERSION));
        } else {
          write(formatExplainText(result.findings, result.queries, result.context, { color: useColor(options) }));
        }
        if (failsAt(result.findings, failOnOf(options))) process.exitCode = 1;
      } finally {
        await db.close();
      }
    });
}
