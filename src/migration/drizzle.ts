import { UsageError } from '../errors.js';
import { GENERATED, LOCK_TIMEOUT, OUTSIDE, refuseMarker, sqlComment, sqlFile, sqlStatements, type MigrationFile, type MigrationTool } from './render.js';

const BREAKPOINT = '--> statement-breakpoint';
const JOURNAL = 'meta/_journal.json';

interface Journal {
  version: string;
  dialect: string;
  entries: Array<{ idx: number; version: string; when: number; tag: string; breakpoints: boolean }>;
}

/**
 * drizzle (https://orm.drizzle.team/docs/kit-custom-migrations): a custom SQL
 * migration `<idx>_<name>.sql`, its statements separated by
 * `--> statement-breakpoint`, and its entry in `meta/_journal.json` (the
 * migrator reads only the journal's entries). drizzle's migrator runs every
 * pending migration in ONE transaction, with no way out: the concurrent
 * statements go to a plain SQL file next to it, outside the journal, to run
 * after `drizzle-kit migrate` (psql -f).
 */
export const drizzleTool: MigrationTool = {
  name: 'drizzle',
  defaultDir: 'drizzle',
  concurrentNote: 'drizzle runs its migrations in one transaction: run the _concurrent.sql file with psql after drizzle-kit migrate',
  render({ name, now, transaction, concurrent, readExisting }) {
    refuseMarker('drizzle', [...transaction, ...concurrent], /--> statement-breakpoint/, '`--> statement-breakpoint`');
    const journal = readJournal(readExisting(JOURNAL));
    const last = journal.entries.at(-1);
    const idx = last ? last.idx + 1 : 0;
    const tag = `${String(idx).padStart(4, '0')}_${name}`;
    const files: MigrationFile[] = [];
    if (transaction.length > 0) {
      // One statement per part: drizzle sends each part between breakpoints as its own query.
      const separator = `\n${BREAKPOINT}\n`;
      const content = [
        sqlComment(GENERATED, "A drizzle custom migration; runs in drizzle-kit migrate's transaction."),
        '',
        LOCK_TIMEOUT,
        BREAKPOINT,
        sqlStatements(transaction, separator),
      ].join('\n');
      files.push({ path: `${tag}.sql`, content: `${content}\n` });
      journal.entries.push({ idx, version: '7', when: Math.max(now.getTime(), (last?.when ?? 0) + 1), tag, breakpoints: true });
      files.push({ path: JOURNAL, content: JSON.stringify(journal, null, 2) + '\n', replaces: true });
    }
    if (concurrent.length > 0) {
      files.push({
        path: `${tag}_concurrent.sql`,
        content: sqlFile(
          [
            OUTSIDE,
            'NOT a drizzle migration (drizzle runs its migrations in one transaction): run it after drizzle-kit migrate with psql -v ON_ERROR_STOP=1 -f FILE.',
          ],
          concurrent,
          'none',
        ),
      });
    }
    return files;
  },
};

function readJournal(text: string | undefined): Journal {
  if (text === undefined) return { version: '7', dialect: 'postgresql', entries: [] };
  let journal: Journal;
  try {
    journal = JSON.parse(text) as Journal;
  } catch (error) {
    throw new UsageError(`${JOURNAL} is not valid JSON: ${(error as Error).message}; no migration was written`, { cause: error });
  }
  if (!journal || !Array.isArray(journal.entries) || (journal.dialect !== undefined && journal.dialect !== 'postgresql')) {
    throw new UsageError(`${JOURNAL} is not a drizzle journal for PostgreSQL; no migration was written`, {
      hint: 'point --dir at the `out` folder of drizzle.config',
    });
  }
  return journal;
}
