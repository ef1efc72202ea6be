import { OUTSIDE, sqlFile, stamp, type MigrationFile, type MigrationTool } from './render.js';

/**
 * Prisma Migrate (https://www.prisma.io/docs/orm/prisma-migrate): a folder
 * `<version>_<name>/migration.sql` per migration. Prisma sends a
 * migration.sql as one script, which the server runs as one implicit
 * transaction; the file says BEGIN/COMMIT itself so that it stays one
 * transaction however it is sent. A script of a single statement runs
 * outside any transaction block: each CREATE INDEX CONCURRENTLY gets a
 * migration of its own.
 */
export const prismaTool: MigrationTool = {
  name: 'prisma',
  defaultDir: 'prisma/migrations',
  render({ name, now, transaction, concurrent }) {
    const files: MigrationFile[] = [];
    if (transaction.length > 0) {
      files.push({ path: `${stamp(now)}_${name}/migration.sql`, content: sqlFile(['One transaction, all or nothing.'], transaction, 'explicit') });
    }
    concurrent.forEach((statement, i) => {
      files.push({
        path: `${stamp(now, i + 1)}_${name}_concurrent_${i + 1}/migration.sql`,
        content: sqlFile([OUTSIDE, 'One statement per migration.'], [statement], 'none'),
      });
    });
    return files;
  },
};
