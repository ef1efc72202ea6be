import { GENERATED, LOCK_TIMEOUT, OUTSIDE, bare, jsComment, jsStatements, stamp, type MigrationFile, type MigrationTool } from './render.js';
import type { Statement } from '../compile/statement.js';

/**
 * Kysely's Migrator (https://kysely.dev/docs/migrations): a TypeScript module
 * exporting `up(db)`. The Migrator runs every pending migration in one
 * transaction on PostgreSQL, unless it is created with
 * `disableTransactions: true`; then no migration gets one. So the
 * transactional file opens its own transaction when it is not given one, and
 * the concurrent file refuses to run inside one, saying which option it needs.
 */
export const kyselyTool: MigrationTool = {
  name: 'kysely',
  defaultDir: 'migrations',
  concurrentNote: 'the _concurrent migration needs a Migrator created with disableTransactions: true',
  render({ name, now, transaction, concurrent }) {
    const files: MigrationFile[] = [];
    if (transaction.length > 0) {
      files.push({
        path: `${stamp(now)}_${name}.ts`,
        content: file(['Runs in the Migrator transaction, or in a transaction of its own under disableTransactions: true.'], transaction, [
          '  const run = async (trx: Kysely<any>) => {',
          `    await sql.raw(${JSON.stringify(bare(LOCK_TIMEOUT))}).execute(trx);`,
          '    for (const statement of statements) await sql.raw(statement).execute(trx);',
          '  };',
          '  if (db.isTransaction) await run(db);',
          '  else await db.transaction().execute(run);',
        ]),
      });
    }
    if (concurrent.length > 0) {
      const refusal =
        'this migration runs CREATE INDEX CONCURRENTLY, which cannot run inside a transaction: run it with a Migrator created with disableTransactions: true';
      files.push({
        path: `${stamp(now, 1)}_${name}_concurrent.ts`,
        content: file([OUTSIDE, 'Needs a Migrator created with disableTransactions: true.'], concurrent, [
          `  if (db.isTransaction) throw new Error(${JSON.stringify(refusal)});`,
          '  for (const statement of statements) await sql.raw(statement).execute(db);',
        ]),
      });
    }
    return files;
  },
};

function file(header: string[], statements: Statement[], body: string[]): string {
  return [
    jsComment(GENERATED, ...header),
    '/* eslint-disable @typescript-eslint/no-explicit-any */',
    "import { type Kysely, sql } from 'kysely';",
    '',
    'const statements: string[] = [',
    jsStatements(statements, '  ', (literal) => `${literal},`),
    '];',
    '',
    'export async function up(db: Kysely<any>): Promise<void> {',
    ...body,
    '}',
    '',
  ].join('\n');
}
