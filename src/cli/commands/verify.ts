import { Command } from 'commander';
import { openDatabase, resolveConnection } from '../../db/connection.js';
import { convergeDatabase } from '../../apply/converge.js';
import { factsFromModel, inferFacts, type FactOptions, type TenantFacts } from '../../facts/resolve-facts.js';
import { failsAt } from '../../report/finding.js';
import { formatFindingsJson } from '../../report/format-json.js';
import { formatSarif } from '../../report/format-sarif.js';
import { formatFindingsText, makeChalk } from '../../report/format-text.js';
import { runVerify, type VerifyResult } from '../../verify/run-verify.js';
import { seedThrowawayDatabase } from '../../verify/seed-database.js';
import { VERIFY_RULES } from '../../verify/registry.js';
import { VERSION } from '../../version.js';
import { quoteIdent } from '../../compile/quote.js';
import { choosePolicyModel } from '../choose-policy.js';
import { chooseAppRoles, describeAppRole, type AppRoleChoice } from '../app-role-member.js';
import { parseDuration } from '../duration.js';
import { splitSchemaOption } from '../schema-option.js';
import { createProgress } from '../progress.js';
import { addCommonOptions, addFactOptions, addFailOn, failOnOf, formatOf, note, useColor, write, type CommonOptions } from '../common.js';
import { escapeTerminal } from '../../report/escape-terminal.js';

interface VerifyCliOptions extends CommonOptions {
  schema?: string[];
  tenantColumn?: string;
  tenantSetting?: string;
  appRole?: string[];
  bypassRole?: string[];
  failOn?: string;
  tenant?: string[];
  statementTimeout: number;
  showValues?: boolean;
  strict?: boolean;
}

export function verifyCommand(): Command {
  const collect = (value: string, previous: string[] = []) => [...previous, value];
  return addFailOn(addFactOptions(addCommonOptions(new Command('verify'), ['text', 'json', 'sarif'])))
    .description('probe isolation for real, as each app role, inside transactions that are rolled back')
    .option('--tenant <value>', 'a tenant to act as (repeatable; default: two tenants that own rows)', collect)
    .option('--statement-timeout <duration>', 'time limit of each probe statement (30s, 500ms, 2min; a bare number is seconds)', parseDuration, 10_000)
    .option('--show-values', 'findings quote the values of the rows verify used (text and JSON; never SARIF)')
    .option('--strict', 'exit 1 when any probe was skipped (verify could not make a row, or a probe could not decide)')
    .addHelpText(
      'after',
      [
        '',
        'As each app role, with a tenant set and with none, verify tries to read, insert, update, move and',
        'delete rows across the tenant boundary in every tenant table, partition, view, materialized view and',
        'SECURITY DEFINER function the role can reach. Everything runs in one transaction that is rolled back:',
        'nothing is ever left behind. It connects as a role that bypasses RLS (a superuser, the migration role)',
        'and can SET ROLE to the app roles. Exit 1 on any leak (see docs/verify.md); with --strict, also when a',
        'probe was skipped (the summary line counts them: N relations, M probes, K leaks, S skipped).',
        '',
        "Findings name tables, columns and types, never the values of rows (real tenants' data): a statement",
        'shows a value as $1::type. --show-values quotes them in text and JSON, never in SARIF.',
        '',
        '--schema: with a database named, schema names (repeatable). With none named, a .sql file or a folder',
        'of them: the pre-merge mode builds a throwaway embedded database from it, applies the policy file,',
        'writes two synthetic tenants and probes everything.',
        '',
        'Examples:',
        '  rlsctl verify --db "$DATABASE_URL"',
        '  rlsctl verify --db "$DATABASE_URL" --tenant 7f0c… --tenant 91ab… --format sarif > verify.sarif',
        '  rlsctl verify --schema db/migrations --policies policies/      # pre-merge, no database server needed',
        '',
      ].join('\n'),
    )
    .action(async (options: VerifyCliOptions, command: Command) => {
      const format = formatOf(options);
      // SARIF is uploaded to code scanning (action.yml): values never go there.
      const showValues = Boolean(options.showValues) && format !== 'sarif';
      if (options.showValues && !showValues)
        note(options, 'note: --show-values is ignored with --format sarif: SARIF goes to code scanning, and values of rows never do');
      const timeout = options.statementTimeout;
      const embedded = resolveConnection(options.db).kind === 'embedded';
      // --schema is schema names on a named database, SQL to load without one (shared with audit).
      const { names, sqlPath } = splitSchemaOption(options.schema, embedded);
      const factOptions: FactOptions = {
        policies: options.policies,
        schema: names,
        tenantColumn: options.tenantColumn,
        tenantSetting: options.tenantSetting,
        appRole: options.appRole,
        bypassRole: options.bypassRole,
      };
      const model = await choosePolicyModel(options, command, names, 'verify', true);

      let facts: TenantFacts | undefined = model ? factsFromModel(model) : undefined;
      let seededTenants: string[] | undefined;
      const db = await openDatabase({
        db: options.db,
        schema: sqlPath,
        // Pre-merge: the throwaway database gets the policy file applied and two synthetic tenants, committed.
        prepareEmbedded: async (database) => {
          if (model) await convergeDatabase(database, model);
          facts ??= await inferFacts(factOptions, database.pool);
          const seeded = await seedThrowawayDatabase(database, facts);
          seededTenants = seeded.tenants;
        },
      });
      let result: VerifyResult;
      let chosen: AppRoleChoice[] | undefined;
      // The start line (roles, tenants) is a note everywhere; the relations done of total only on a terminal.
      const progress = createProgress({ quiet: options.quiet });
      try {
        if (db.embedded) {
          note(
            options,
            `no database named: verifying ${db.label}${sqlPath ? ` built from ${sqlPath}` : ''}${model ? ', with the policy file applied' : ''} and two synthetic tenants seeded`,
          );
        }
        facts ??= await inferFacts(factOptions, db.pool);
        if (model && options.appRole) {
          // --app-role beside --policies: a declared app role or a member of one, checked against the file as it.
          chosen = await chooseAppRoles(db.pool, facts.appRoles, options.appRole);
          facts = { ...facts, appRoles: [...new Set(chosen.map((c) => c.actAs))] };
        }
        result = await runVerify(db, facts, {
          tenants: options.tenant ?? seededTenants,
          tenantsAreSynthetic: !options.tenant && seededTenants !== undefined,
          statementTimeoutMs: timeout,
          showValues,
          onProgress: (line, event) => (event.kind === 'start' ? progress.note(line) : progress.update(line)),
        });
      } finally {
        progress.done();
        await db.close();
      }

      for (const line of unreachableNotes(result)) note(options, line);
      const summary = `${result.relations} relation${result.relations === 1 ? '' : 's'}, ${result.probes} probe${result.probes === 1 ? '' : 's'}, ${result.leaks} leak${result.leaks === 1 ? '' : 's'}, ${result.skipped} skipped`;
      const rate = result.durationMs > 0 ? Math.round((result.probes * 1000) / result.durationMs) : result.probes;
      note(options, `verify: ${summary} in ${(result.durationMs / 1000).toFixed(1)} s (${rate} probes/s)`);
      if (format === 'json') {
        write(
          formatFindingsJson('verify', result.findings, {
            stats: {
              relations: result.relations,
              probes: result.probes,
              leaks: result.leaks,
              tenants: result.tenants,
              roles: result.roles,
              seeded: result.seeded,
              skipped: result.skipped,
              skippedProbes: result.skips,
              unprobedViews: result.unprobedViews,
              connectingRole: result.connectingRole,
              triggers: result.triggers,
              ...(chosen ? { appRoles: chosen.map((c) => ({ role: c.role, appRole: c.appRole, membership: c.membership })) } : {}),
            },
          }),
        );
      } else if (format === 'sarif') {
        write(formatSarif(result.findings, [...VERIFY_RULES], VERSION));
      } else {
        const c = makeChalk(useColor(options));
        const header = [
          c.bold(escapeTerminal(`rlsctl verify of ${db.label}`)),
          c.dim(
            `as ${escapeTerminal(chosen ? chosen.map(describeAppRole).join(', ') : result.roles.join(', '))}; tenants ${result.tenants.map((t, i) => `${escapeTerminal(t)} (${result.tenantOrigin[i] === 'data' ? 'owns rows' : result.tenantOrigin[i]})`).join(' and ')}`,
          ),
          ...triggerLines(result).map((l) => c.yellow(l)),
          ...unprobedViewLines(result).map((l) => c.yellow(l)),
          '',
        ];
        write(formatFindingsText(result.findings, { color: useColor(options), header }));
        write(`${result.leaks > 0 ? c.red.bold(summary) : c.green(summary)}\n`);
      }
      if (failsAt(result.findings, failOnOf(options))) process.exitCode = 1;
      if (options.strict && result.skipped > 0) {
        // Said even with --quiet: it is why the run failed.
        process.stderr.write(
          `rlsctl: verify --strict: ${result.skipped} probe${result.skipped === 1 ? ' was' : 's were'} skipped, so isolation is not proven everywhere (the VER010 findings say why; JSON stats.skippedProbes lists them)\n`,
        );
        process.exitCode = 1;
      }
    });
}

/** Views whose probes as each tenant proved nothing: a relation they read has no row of a tenant verify could write. */
function unprobedViewLines(result: VerifyResult): string[] {
  if (result.unprobedViews.length === 0) return [];
  return [
    `views not probed as each tenant: ${result.unprobedViews.map((v) => escapeTerminal(`${v.schema}.${v.name} (reads ${v.tables.join(', ')})`)).join(', ')}`,
    '  verify could not write rows of both tenants into the tables they read, so a clean result proves nothing there',
  ];
}

/**
 * The rows verify writes for the tenants are inserted as the connecting role,
 * which bypasses row level security: a user trigger on those tables runs with
 * its rights (docs/verify.md, "Triggers"). Say which tables have one.
 */
function triggerLines(result: VerifyResult): string[] {
  if (result.triggers.length === 0) return [];
  const shown = result.triggers.map((t) => escapeTerminal(`${t.schema}.${t.name} (${t.triggers.join(', ')})`));
  return [
    `triggers: ${shown.join(', ')}`,
    `  verify inserts the tenants' rows into these tables as ${escapeTerminal(result.connectingRole)}, a role that bypasses row level security, so their triggers run with its rights (the probes' writes fire them as the app role); everything is rolled back, effects outside the database are not`,
  ];
}

/**
 * A role granted privileges on tables of a schema it has no USAGE on reaches
 * none of them: verify has nothing to probe there and would pass in silence,
 * while every query of the application fails with `permission denied for
 * schema`. Say so, with the grant that fixes it.
 */
function unreachableNotes(result: VerifyResult): string[] {
  const bySchemaRole = new Map<string, { schema: string; role: string; names: string[] }>();
  for (const u of result.unreachable) {
    const key = JSON.stringify([u.schema, u.role]);
    const entry = bySchemaRole.get(key) ?? { schema: u.schema, role: u.role, names: [] };
    entry.names.push(`${u.schema}.${u.name}`);
    bySchemaRole.set(key, entry);
  }
  const lines: string[] = [];
  for (const { schema, role, names } of bySchemaRole.values()) {
    const shown = names.length > 5 ? `${names.slice(0, 5).join(', ')} and ${names.length - 5} more` : names.join(', ');
    lines.push(
      `note: ${role} holds privileges on ${shown} but not USAGE on the schema ${schema}: verify could not probe ${names.length === 1 ? 'it' : 'them'}, and the application's queries there fail with "permission denied for schema ${schema}"`,
      `  hint: GRANT USAGE ON SCHEMA ${quoteIdent(schema)} TO ${quoteIdent(role)};`,
    );
  }
  if (result.relations === 0 && lines.length === 0) {
    lines.push(
      `note: verify probed nothing: ${result.roles.join(', ')} can reach no tenant table, view or function`,
      '  hint: check roles.app in the policy file (or --app-role) and the GRANTs to the app roles',
    );
  }
  return lines;
}

/**
 * Where the facts come from, as for audit: a policy file named with
 * --policies is the source, and fact flags beside it contradict it (exit 2);
 * fact flags alone mean "this database, these facts" and the default
 * policies/ folder is not read; neither: policies/ if it exists, else the
 * catalog.
 */
