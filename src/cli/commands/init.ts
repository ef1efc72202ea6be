import { Command } from 'commander';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { asDatabaseError, openDatabase, resolveConnection } from '../../db/connection.js';
import { introspectCatalog } from '../../catalog/introspect-catalog.js';
import { commentText, draftPolicyFile } from '../../init/draft-policy-file.js';
import { readInitFacts } from '../../init/read-init-facts.js';
import { UsageError } from '../../errors.js';
import { addCommonOptions, note, write, writeFileAtomic, type CommonOptions } from '../common.js';
import { splitSchemaOption } from '../schema-option.js';

interface InitOptions extends CommonOptions {
  output: string;
  tenantColumn?: string[];
  tenantSetting?: string;
  appRole?: string[];
  schema?: string[];
  force?: boolean;
}

export function initCommand(): Command {
  return addCommonOptions(new Command('init'), ['text'])
    .description('write a starter policy file from an existing database')
    .option('-o, --output <file>', 'where to write the policy file (- for stdout)', 'policies/policies.yaml')
    .option(
      '--tenant-column <name>',
      'the tenant column to look for (repeatable when tables use different names: each table uses the first it has; default tenant_id)',
      (v: string, p: string[] = []) => [...p, v],
    )
    .option('--tenant-setting <name>', 'the setting that carries the current tenant (default: the one existing policies read, else app.tenant_id)')
    .option('--app-role <role>', 'a role application traffic runs as (repeatable)', (v: string, p: string[] = []) => [...p, v])
    .option(
      '--schema <name>',
      'a schema to include (repeatable; default every non-system schema); with no database named, a .sql file or folder to load into the embedded PostgreSQL',
      (v: string, p: string[] = []) => [...p, v],
    )
    .option('--force', 'overwrite an existing file')
    .addHelpText(
      'after',
      '\nExamples:\n  rlsctl init --db "$DATABASE_URL" --tenant-column org_id --app-role app_user\n  rlsctl init --schema db/migrations --schema app -o -     # embedded PostgreSQL, print the file\n',
    )
    .action(async (options: InitOptions) => {
      const embedded = resolveConnection(options.db).kind === 'embedded';
      const { names, sqlPath } = splitSchemaOption(options.schema, embedded);
      const toStdout = options.output === '-';
      // Refuse before connecting: a starter file must never replace a finished one by accident.
      if (!toStdout && existsSync(options.output) && !options.force) {
        throw new UsageError(`${options.output} exists already`, { hint: 'pass --force to overwrite it, or -o another file (-o - prints it)' });
      }
      const db = await openDatabase({ db: options.db, schema: sqlPath });
      try {
        if (db.embedded) note(options, `no database named: using ${db.label}${sqlPath ? `, loaded from ${sqlPath}` : ''}`);
        const read = async () => ({ catalog: await introspectCatalog(db.pool, { schemas: names }), facts: await readInitFacts(db.pool, names) });
        const { catalog, facts } = await read().catch((error) => {
          throw asDatabaseError(error, `reading the catalog of ${db.label}`);
        });
        const columns = options.tenantColumn ?? ['tenant_id'];
        const draft = draftPolicyFile(catalog, {
          tenantColumn: columns,
          facts,
          tenantSetting: options.tenantSetting,
          appRoles: options.appRole,
          source: db.embedded ? `an embedded PostgreSQL loaded from ${sqlPath ?? 'nothing'}` : db.label,
        });
        if (toStdout) write(draft.text);
        else {
          await mkdir(path.dirname(options.output), { recursive: true });
          await writeFileAtomic(options.output, draft.text);
        }
        for (const n of draft.notes) note(options, `note: ${n}`);
        note(
          options,
          `${toStdout ? 'printed' : `wrote ${options.output}`}: ${draft.tenantTables.length} tenant table${draft.tenantTables.length === 1 ? '' : 's'}` +
            (draft.undecidedTables.length > 0
              ? `; ${draft.undecidedTables.length} table${draft.undecidedTables.length === 1 ? '' : 's'} without ${columns.join(' or ')} to decide (listed in comments): ${commentText(draft.undecidedTables.join(', '))}`
              : ''),
        );
      } finally {
        await db.close();
      }
    });
}
