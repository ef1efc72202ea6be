#!/usr/bin/env node
// `npm run demo`: the whole rlsctl story on a throwaway embedded PostgreSQL,
// with the example policy file (policies/) and the demo schema (fixtures/demo/).
// Every step runs the real CLI against the same server, as a CI job would.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startEmbeddedServer } from '../dist/embedded/embedded-server.js';
import { runScript } from '../dist/db/run-script.js';
import { redactUrl } from '../dist/db/connection.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin/rlsctl.js');

/** [title, args, exit codes that are a success for this step] */
/** @type {Array<[string, string[], number[]]>} */
const steps = [
  ['Validate the policy file', ['validate'], [0]],
  ['What apply would change (a fresh database: everything)', ['plan'], [0]],
  ['Apply it', ['apply'], [0]],
  ['Plan again: nothing left, the database matches the file', ['plan', '--check'], [0]],
  ['Audit the catalog (read-only)', ['audit'], [0, 1]],
  ["Check the application's queries are index seeks", ['explain', 'fixtures/demo/queries.sql'], [0, 1]],
  ['Try to cross tenant boundaries for real (rolled back)', ['verify'], [0]],
];

const server = await startEmbeddedServer();
let failed = 0;
try {
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query('CREATE DATABASE demo');
  await admin.end();
  const url = server.urlFor('demo');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  for (const file of ['fixtures/demo/schema.sql', 'fixtures/demo/seed.sql']) {
    await runScript(client, readFileSync(path.join(root, file), 'utf8'));
  }
  await client.end();
  process.stdout.write(`Embedded PostgreSQL ${server.major} on port ${server.port}, demo schema from fixtures/demo/ loaded.\n`);

  for (const [title, args, ok] of steps) {
    process.stdout.write(`\n== ${title}\n$ rlsctl ${args.join(' ')} --db ${redactUrl(url)}\n`);
    const result = spawnSync(process.execPath, [bin, ...args, '--db', url], { cwd: root, stdio: 'inherit', env: { ...process.env, DATABASE_URL: '' } });
    const code = result.status ?? 3;
    if (!ok.includes(code)) {
      process.stdout.write(`!! rlsctl ${args[0]} exited ${code}\n`);
      failed++;
    }
  }
} finally {
  await server.stop();
}
process.stdout.write(failed === 0 ? '\nDemo done: every step behaved as expected.\n' : `\nDemo: ${failed} step(s) failed.\n`);
process.exitCode = failed === 0 ? 0 : 1;
