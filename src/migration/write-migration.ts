import { lstat, mkdir, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Plan } from '../plan/plan.js';
import { UsageError } from '../errors.js';
import { migrationTool } from './registry.js';
import { checkMigrationName } from './render.js';
import { writeFileAtomic } from '../report/write-file-atomic.js';

export interface WriteMigrationOptions {
  /** A name of MIGRATION_TOOLS (registry.ts). */
  tool: string;
  /** The migration folder; created if missing. Default: the tool's own default folder. */
  dir?: string;
  /** A slug used in file names; default `rlsctl_policies`. */
  name?: string;
  /** Default: now. */
  now?: Date;
}

export interface WrittenMigration {
  tool: string;
  dir: string;
  /** The files written, as paths under `dir`; empty when the plan has no statement. */
  files: string[];
  /** A step beyond the tool's usual command, when there is one (see docs/migrations.md). */
  note?: string;
}

/**
 * Write a plan's statements as a migration for `tool`. Writes nothing for an
 * empty plan. Never overwrites a file (exit 2, and nothing is written), except
 * the one a tool keeps up to date itself (drizzle's journal).
 */
export async function writeMigration(plan: Pick<Plan, 'statements'>, options: WriteMigrationOptions): Promise<WrittenMigration> {
  const tool = migrationTool(options.tool);
  const name = checkMigrationName(options.name ?? 'rlsctl_policies');
  const dir = options.dir ?? tool.defaultDir;
  if (plan.statements.length === 0) return { tool: tool.name, dir, files: [] };
  const files = tool.render({
    name,
    now: options.now ?? new Date(),
    transaction: plan.statements.filter((s) => s.phase === 'transaction'),
    concurrent: plan.statements.filter((s) => s.phase === 'concurrent'),
    readExisting: (relative) => {
      try {
        return readFileSync(path.join(dir, relative), 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw fsError('cannot read', path.join(dir, relative), error);
      }
    },
  });
  for (const file of files) {
    if (!file.replaces && (await exists(path.join(dir, file.path)))) {
      throw new UsageError(`${path.join(dir, file.path)} already exists; no migration was written`, {
        hint: 'choose another --name or --dir; rlsctl never overwrites a migration',
      });
    }
  }
  // New files first, exclusively (a file made meanwhile is not overwritten either); a replaced file (a journal) last, atomically.
  for (const file of [...files.filter((f) => !f.replaces), ...files.filter((f) => f.replaces)]) {
    const target = path.join(dir, file.path);
    try {
      await mkdir(path.dirname(target), { recursive: true });
      if (file.replaces) await writeFileAtomic(target, file.content);
      else await writeFile(target, file.content, { encoding: 'utf8', flag: 'wx' });
    } catch (error) {
      throw fsError('cannot write', target, error);
    }
  }
  const note = tool.concurrentNote && plan.statements.some((s) => s.phase === 'concurrent') ? tool.concurrentNote : undefined;
  return { tool: tool.name, dir, files: files.map((f) => f.path), ...(note ? { note } : {}) };
}

async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch (error) {
    // ENOTDIR: a part of the path is a file; mkdir says so below.
    if (['ENOENT', 'ENOTDIR'].includes((error as NodeJS.ErrnoException).code ?? '')) return false;
    throw fsError('cannot read', file, error);
  }
}

function fsError(verb: string, file: string, error: unknown): UsageError {
  if (error instanceof UsageError) return error;
  return new UsageError(`${verb} ${file}: ${(error as Error).message}`, { hint: 'check that --dir is a folder you can write to', cause: error });
}
