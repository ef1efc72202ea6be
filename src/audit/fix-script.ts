import { parseSync } from 'libpg-query';
import { objectLabel, sortFindings, type Finding } from '../report/finding.js';
import { commentLines } from './audit-context.js';

/**
 * `rlsctl audit --fix-script FILE`: every runnable fix of the findings at the
 * chosen severities, as one script to review and run with psql. Each fix's SQL
 * is split into statements by PostgreSQL's parser and each statement goes
 * where it can run:
 *
 * 1. in one transaction (BEGIN ... COMMIT), in the order of the findings
 *    (severity, rule, object): policy, role, grant and constraint changes;
 * 2. at the end of that transaction: ENABLE and FORCE ROW LEVEL SECURITY, so
 *    that a table's policies exist before they start to apply;
 * 3. after COMMIT: index builds and what cannot run in a transaction block
 *    (CREATE INDEX CONCURRENTLY, REINDEX, DROP INDEX CONCURRENTLY, ALTER
 *    SYSTEM), with the statements of the same fix that follow them.
 *
 * A statement two fixes share (the same ENABLE from RLS001 and RLS004, the same
 * rewritten policy from RLS020 and RLS021) is written once. Alternatives stay
 * comments; fixes that are not runnable are listed at the end as comments.
 */

export interface FixScript {
  text: string;
  /** Findings whose fix is in the script. */
  fixed: number;
  /** Findings at the chosen severities whose fix is not runnable. */
  manual: number;
}

type Phase = 'transaction' | 'enable' | 'after';

interface Stmt {
  sql: string;
  phase: Phase;
}

export function buildFixScript(findings: Finding[], options: { warnings: boolean; header?: string[] }): FixScript {
  const chosen = sortFindings(findings).filter((f) => f.severity === 'error' || (options.warnings && f.severity === 'warning'));
  // Per phase, one block of lines per finding: its title, its comments, its statements.
  const sections: Record<Phase, string[][]> = { transaction: [], enable: [], after: [] };
  const seen = new Set<string>();
  const manual: string[] = [];
  let fixed = 0;
  for (const f of chosen) {
    const fix = f.fix;
    const title = commentLines(`${f.rule} ${f.name} ${objectLabel(f.object)}: ${f.message}`);
    if (!fix || !fix.runnable || fix.sql === null) {
      manual.push(title, commentLines(`  to decide: ${fix?.note ?? f.help ?? 'see the rule page'}`));
      continue;
    }
    const split = splitStatements(fix.sql);
    if (!split || split.statements.length === 0) {
      manual.push(title, commentLines('  its SQL does not parse: not written'));
      continue;
    }
    fixed++;
    const blocks = new Map<Phase, string[]>();
    for (const s of split.statements) {
      if (seen.has(s.sql)) continue;
      seen.add(s.sql);
      let block = blocks.get(s.phase);
      if (!block) {
        block = [title];
        if (blocks.size === 0) block.push(...split.comments, ...(fix.note ? [commentLines(`note: ${fix.note}`)] : []));
        blocks.set(s.phase, block);
        sections[s.phase].push(block);
      }
      block.push(s.sql);
    }
  }
  const join = (blocks: string[][]) => blocks.flatMap((b) => [...b, '']);
  const lines = [
    ...(options.header ?? []).map(commentLines),
    '-- Review every statement before running it, then run it with psql -v ON_ERROR_STOP=1 -f FILE, not in a',
    '-- transaction of your own (the index builds after COMMIT cannot run in one). Each statement is the',
    '-- fail-closed choice; alternatives are comments. Audit again afterwards.',
    '',
  ];
  if (sections.transaction.length + sections.enable.length > 0) {
    lines.push('BEGIN;', '', ...join(sections.transaction));
    if (sections.enable.length > 0) lines.push('-- Row level security on, now that the policies exist:', '', ...join(sections.enable));
    lines.push('COMMIT;', '');
  }
  if (sections.after.length > 0) lines.push('-- After the transaction: index builds, and what cannot run in a transaction block.', '', ...join(sections.after));
  if (fixed === 0) lines.push('-- No runnable fix for the findings chosen.', '');
  if (manual.length > 0) lines.push('-- Not in this script (no safe SQL: a decision first):', ...manual, '');
  return { text: lines.join('\n'), fixed, manual: chosen.length - fixed };
}

/** The statements of a fix, each with where it runs, and its comment lines (the alternatives). */
export function splitStatements(sql: string): { statements: Stmt[]; comments: string[] } | undefined {
  let stmts: Array<{ stmt: Record<string, unknown>; stmt_location?: number; stmt_len?: number }>;
  try {
    stmts = (parseSync(sql) as { stmts?: typeof stmts }).stmts ?? [];
  } catch {
    return undefined;
  }
  const bytes = Buffer.from(sql, 'utf8');
  const statements: Stmt[] = [];
  const ranges: Array<[number, number]> = [];
  let after = false;
  for (const s of stmts) {
    const start = s.stmt_location ?? 0;
    const end = s.stmt_len ? start + s.stmt_len : bytes.length;
    ranges.push([start, end]);
    const text = bytes.subarray(start, end).toString('utf8').trim().replace(/;?$/, ';');
    const phase = phaseOf(s.stmt);
    if (phase === 'after') after = true;
    statements.push({ sql: text, phase: after ? 'after' : phase });
  }
  // Comments are the lines outside every statement.
  const comments: string[] = [];
  let from = 0;
  for (const [start, end] of [...ranges, [bytes.length, bytes.length] as [number, number]]) {
    const gap = bytes.subarray(from, start).toString('utf8');
    for (const line of gap.split(/\r\n|\r|\n/)) if (line.trim().startsWith('--')) comments.push(line.trim());
    from = Math.max(from, end + 1);
  }
  return { statements, comments };
}

function phaseOf(stmt: Record<string, unknown>): Phase {
  const [kind] = Object.keys(stmt);
  const body = stmt[kind] as Record<string, unknown>;
  if (kind === 'IndexStmt' || kind === 'ReindexStmt' || kind === 'AlterSystemStmt') return 'after';
  if (kind === 'DropStmt' && body.concurrent) return 'after';
  if (kind === 'AlterTableStmt') {
    const cmds = (body.cmds as Array<{ AlterTableCmd?: { subtype?: string } }> | undefined) ?? [];
    if (cmds.length > 0 && cmds.every((c) => c.AlterTableCmd?.subtype === 'AT_EnableRowSecurity' || c.AlterTableCmd?.subtype === 'AT_ForceRowSecurity'))
      return 'enable';
  }
  return 'transaction';
}
