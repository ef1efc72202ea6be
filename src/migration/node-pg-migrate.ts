import { GENERATED, LOCK_TIMEOUT, OUTSIDE, bare, jsComment, jsStatements, stamp, type MigrationFile, type MigrationTool } from './render.js';

/**
 * node-pg-migrate (https://github.com/salsita/node-pg-migrate): a JavaScript
 * migration per phase, named with a 17-digit UTC prefix. Each `pgm.sql()` is
 * sent as its own query; `pgm.noTransaction()` takes the concurrent one out
 * of the transaction (with the default --single-transaction, node-pg-migrate
 * commits the migrations before it, runs it, and opens a new transaction).
 */
export const nodePgMigrateTool: MigrationTool = {
  name: 'node-pg-migrate',
  defaultDir: 'migrations',
  render({ name, now, transaction, concurrent }) {
    const files: MigrationFile[] = [];
    const call = (literal: string) => `pgm.sql(${literal});`;
    const file = (header: string[], lines: string[]) =>
      [
        jsComment(GENERATED, ...header),
        '',
        "/** @param {import('node-pg-migrate').MigrationBuilder} pgm */",
        'export const up = (pgm) => {',
        ...lines,
        '};',
        '',
        '// rlsctl writes no down migration: apply the earlier policy file with rlsctl instead.',
        'export const down = false;',
        '',
      ].join('\n');
    if (transaction.length > 0) {
      files.push({
        path: `${stamp(now)}000_${name}.js`,
        content: file(['Runs in the migration transaction.'], [`  ${call(JSON.stringify(bare(LOCK_TIMEOUT)))}`, jsStatements(transaction, '  ', call)]),
      });
    }
    if (concurrent.length > 0) {
      files.push({
        path: `${stamp(now)}001_${name}_concurrent.js`,
        content: file([OUTSIDE], ['  pgm.noTransaction();', jsStatements(concurrent, '  ', call)]),
      });
    }
    return files;
  },
};
