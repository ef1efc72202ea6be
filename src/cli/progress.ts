import { escapeTerminal, escapeTerminalOutput } from '../report/escape-terminal.js';

/**
 * One line of progress on stderr, rewritten in place (`\r`), for long work:
 * index builds in `apply`, relations in `verify`. Only on a terminal and not
 * with --quiet: in CI logs and pipes a rewritten line is noise, and stdout
 * (where --format json goes) is never touched. Elsewhere every method but
 * `note` does nothing.
 *
 * Throttled: the first update is drawn at once, later ones at most every
 * `intervalMs`; the newest text is drawn when the interval ends, so a burst of
 * updates costs one write and the line never lags behind by more than that.
 */

export interface ProgressReporter {
  /** Whether progress is drawn at all (stderr is a terminal and not --quiet). */
  readonly active: boolean;
  /** Replace the progress line with `text` (throttled). */
  update(text: string): void;
  /** A permanent line on stderr (unless --quiet, terminal or not), printed above the progress line. */
  note(text: string): void;
  /** Erase the progress line and stop; call it before anything else is written to stderr. */
  done(): void;
}

export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

export interface ProgressOptions {
  quiet?: boolean;
  /** Default: process.stderr. */
  stream?: ProgressStream;
  /** Minimum time between two draws; default 100 ms. */
  intervalMs?: number;
  /** For tests: the clock. */
  now?: () => number;
}

import { redactSecrets } from '../db/connection.js';

const CLEAR = '\r\x1b[2K';

export function createProgress(options: ProgressOptions = {}): ProgressReporter {
  const target = options.stream ?? process.stderr;
  // Every line drawn or noted: never a password (see redactSecrets).
  const stream: ProgressStream = {
    isTTY: target.isTTY,
    get columns() {
      return target.columns;
    },
    write: (text: string) => target.write(redactSecrets(text)),
  };
  const quiet = Boolean(options.quiet);
  const note = (text: string) => {
    if (!quiet) stream.write(escapeTerminalOutput(text.endsWith('\n') ? text : `${text}\n`));
  };
  if (quiet || !stream.isTTY) {
    return { active: false, update: () => undefined, note, done: () => undefined };
  }
  const interval = options.intervalMs ?? 100;
  const now = options.now ?? Date.now;
  let shown = '';
  let pending: string | undefined;
  let lastDraw = Number.NEGATIVE_INFINITY;
  let timer: NodeJS.Timeout | undefined;
  let finished = false;

  const fit = (text: string) => {
    // One physical line: a wrapped line cannot be erased with \r. A terminal of unknown size (0 columns) gets 80.
    const width = Math.max(20, (stream.columns || 80) - 1);
    const flat = escapeTerminal(text);
    return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat;
  };
  const draw = (text: string) => {
    shown = fit(text);
    lastDraw = now();
    stream.write(`${CLEAR}${shown}`);
  };
  const flush = () => {
    timer = undefined;
    if (pending !== undefined && !finished) {
      const text = pending;
      pending = undefined;
      draw(text);
    }
  };

  return {
    active: true,
    update(text: string) {
      if (finished) return;
      const wait = lastDraw + interval - now();
      if (wait <= 0 && timer === undefined) {
        draw(text);
        return;
      }
      pending = text;
      if (timer === undefined) {
        timer = setTimeout(flush, Math.max(0, wait));
        // A pending redraw must never keep the process alive.
        timer.unref?.();
      }
    },
    note(text: string) {
      if (finished || !shown) {
        note(text);
        return;
      }
      stream.write(CLEAR);
      note(text);
      stream.write(shown);
    },
    done() {
      if (finished) return;
      finished = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      pending = undefined;
      if (shown) stream.write(CLEAR);
      shown = '';
    },
  };
}
