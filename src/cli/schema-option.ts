import { existsSync, statSync } from 'node:fs';
import { UsageError } from '../errors.js';

/**
 * `--schema` means two things in the CLI spec: schema NAMES to scan on a
 * live database (audit, explain, verify: "--schema NAME, repeatable"), and
 * SQL to load into the embedded default ("--schema FILE|DIR"). A value is
 * SQL to load when it ends in `.sql`, holds a path separator, or, when no
 * database is named, is an existing folder; every other value is a schema
 * name. `./public` loads a folder; `public` names the schema, unless no
 * database is named and a folder `public/` exists here.
 */
export function splitSchemaOption(values: string | string[] | undefined, embedded: boolean): { names?: string[]; sqlPath?: string } {
  const list = values === undefined ? [] : Array.isArray(values) ? values : [values];
  const names: string[] = [];
  const paths: string[] = [];
  for (const value of list) {
    const looksLikePath = value.endsWith('.sql') || value.includes('/') || value.includes('\\');
    const isFolder = embedded && existsSync(value) && statSync(value).isDirectory();
    if (looksLikePath || isFolder) paths.push(value);
    else names.push(value);
  }
  if (paths.length > 1) {
    throw new UsageError(`--schema names ${paths.length} SQL files or folders (${paths.join(', ')}); the embedded database loads one`, {
      hint: 'put the migrations in one folder: its .sql files load in name order',
    });
  }
  if (paths.length === 1 && !embedded) {
    throw new UsageError(`--schema ${paths[0]} is SQL to load into the embedded PostgreSQL, but a database is named`, {
      hint: 'leave out --db, DATABASE_URL and the PG* variables to use the embedded default, or name schemas (not files) with --schema',
    });
  }
  return { names: names.length > 0 ? names : undefined, sqlPath: paths[0] };
}
