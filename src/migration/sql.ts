import { OUTSIDE, sqlFile, stamp, type MigrationTool } from './render.js';

/** Plain SQL files for psql or any runner: `<version>_<name>.sql`, then `<version>_<name>_concurrent.sql`. */
export const sqlTool: MigrationTool = {
  name: 'sql',
  defaultDir: 'migrations',
  concurrentNote: 'run the _concurrent.sql file after the other, outside any transaction (psql -f, never --single-transaction)',
  render({ name, now, transaction, concurrent }) {
    const version = stamp(now);
    const files = [];
    if (transaction.length > 0) {
      files.push({
        path: `${version}_${name}.sql`,
        content: sqlFile(['One transaction, all or nothing: run with psql -v ON_ERROR_STOP=1 -f FILE.'], transaction, 'explicit'),
      });
    }
    if (concurrent.length > 0) {
      files.push({
        path: `${version}_${name}_concurrent.sql`,
        content: sqlFile(
          [OUTSIDE, 'Run with psql -v ON_ERROR_STOP=1 -f FILE (psql sends each statement on its own), never with --single-transaction.'],
          concurrent,
          'none',
        ),
      });
    }
    return files;
  },
};
