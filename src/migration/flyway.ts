import { OUTSIDE, refuseMarker, sqlFile, stamp, type MigrationFile, type MigrationTool } from './render.js';

/**
 * Flyway (https://documentation.red-gate.com/flyway): versioned migrations
 * `V<version>__<name>.sql`, each run in a transaction by default. The
 * concurrent one has a script configuration file next to it,
 * `V<version>__<name>_concurrent.sql.conf`, saying
 * `executeInTransaction=false`; Flyway runs its statements one by one.
 */
export const flywayTool: MigrationTool = {
  name: 'flyway',
  defaultDir: 'sql',
  render({ name, now, transaction, concurrent }) {
    // Flyway replaces ${...} placeholders in migrations by default.
    refuseMarker('flyway', [...transaction, ...concurrent], /\$\{/, 'a `${` placeholder');
    const files: MigrationFile[] = [];
    if (transaction.length > 0) {
      files.push({ path: `V${stamp(now)}__${name}.sql`, content: sqlFile(["Runs in Flyway's transaction for this migration."], transaction, 'tool') });
    }
    if (concurrent.length > 0) {
      const file = `V${stamp(now, 1)}__${name}_concurrent.sql`;
      files.push({ path: file, content: sqlFile([OUTSIDE, `${file}.conf sets executeInTransaction=false.`], concurrent, 'none') });
      files.push({ path: `${file}.conf`, content: 'executeInTransaction=false\n' });
    }
    return files;
  },
};
