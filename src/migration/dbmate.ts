import { OUTSIDE, refuseMarker, sqlFile, stamp, type MigrationFile, type MigrationTool } from './render.js';

/**
 * dbmate (https://github.com/amacneil/dbmate): `<version>_<name>.sql` with a
 * `-- migrate:up` block that dbmate runs in a transaction. A block marked
 * `transaction:false` is sent to the server as one query string, and the
 * server runs a multi-statement string as one implicit transaction: so each
 * CREATE INDEX CONCURRENTLY gets a migration of its own.
 */
export const dbmateTool: MigrationTool = {
  name: 'dbmate',
  defaultDir: 'db/migrations',
  render({ name, now, transaction, concurrent }) {
    refuseMarker('dbmate', [...transaction, ...concurrent], /^\s*-- migrate:/m, 'a line starting with `-- migrate:`');
    const files: MigrationFile[] = [];
    const down = '-- migrate:down\n';
    if (transaction.length > 0) {
      files.push({ path: `${stamp(now)}_${name}.sql`, content: `-- migrate:up\n${sqlFile([], transaction, 'tool')}\n${down}` });
    }
    concurrent.forEach((statement, i) => {
      const suffix = concurrent.length === 1 ? 'concurrent' : `concurrent_${i + 1}`;
      files.push({
        path: `${stamp(now, i + 1)}_${name}_${suffix}.sql`,
        content: `-- migrate:up transaction:false\n${sqlFile([OUTSIDE], [statement], 'none')}\n${down}`,
      });
    });
    return files;
  },
};
