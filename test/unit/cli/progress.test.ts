import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createProgress, type ProgressStream } from '../../../src/cli/progress.js';

/** The shared progress line: drawn only on a terminal, throttled, erased when done. */

function fakeStream(isTTY: boolean, columns = 80): ProgressStream & { out: string } {
  const stream = {
    isTTY,
    columns,
    out: '',
    write(text: string) {
      stream.out += text;
      return true;
    },
  };
  return stream;
}

const CLEAR = '\r\x1b[2K';

describe('createProgress', () => {
  let clock = 0;
  beforeEach(() => {
    vi.useFakeTimers();
    clock = 0;
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  const now = () => clock;
  const advance = (ms: number) => {
    clock += ms;
    vi.advanceTimersByTime(ms);
  };

  it('writes nothing when stderr is not a terminal, but notes still print', () => {
    const stream = fakeStream(false);
    const progress = createProgress({ stream, now });
    expect(progress.active).toBe(false);
    progress.update('step 1');
    advance(1000);
    progress.update('step 2');
    progress.note('a note');
    progress.done();
    expect(stream.out).toBe('a note\n');
  });

  it('writes nothing at all with --quiet, on a terminal too', () => {
    const stream = fakeStream(true);
    const progress = createProgress({ stream, quiet: true, now });
    expect(progress.active).toBe(false);
    progress.update('step 1');
    progress.note('a note');
    progress.done();
    expect(stream.out).toBe('');
  });

  it('draws the first update at once and rewrites the same line with \\r', () => {
    const stream = fakeStream(true);
    const progress = createProgress({ stream, now });
    progress.update('step 1');
    expect(stream.out).toBe(`${CLEAR}step 1`);
    advance(150);
    progress.update('step 2');
    expect(stream.out).toBe(`${CLEAR}step 1${CLEAR}step 2`);
    expect(stream.out).not.toContain('\n');
  });

  it('throttles a burst to one draw of the newest text when the interval ends', () => {
    const stream = fakeStream(true);
    const progress = createProgress({ stream, now, intervalMs: 100 });
    progress.update('1');
    for (let i = 2; i <= 50; i++) progress.update(String(i));
    expect(stream.out).toBe(`${CLEAR}1`);
    advance(99);
    expect(stream.out).toBe(`${CLEAR}1`);
    advance(1);
    expect(stream.out).toBe(`${CLEAR}1${CLEAR}50`);
  });

  it('done erases the line and drops an update still pending', () => {
    const stream = fakeStream(true);
    const progress = createProgress({ stream, now });
    progress.update('building');
    progress.update('pending');
    progress.done();
    advance(1000);
    expect(stream.out).toBe(`${CLEAR}building${CLEAR}`);
    progress.update('after done');
    expect(stream.out).toBe(`${CLEAR}building${CLEAR}`);
  });

  it('a note goes above the progress line, which is drawn again below it', () => {
    const stream = fakeStream(true);
    const progress = createProgress({ stream, now });
    progress.update('3 of 9');
    progress.note('waiting for another rlsctl apply');
    expect(stream.out).toBe(`${CLEAR}3 of 9${CLEAR}waiting for another rlsctl apply\n3 of 9`);
  });

  it('keeps the line to one row of the terminal, and to 80 columns when the size is unknown', () => {
    const narrow = fakeStream(true, 30);
    createProgress({ stream: narrow, now }).update('x'.repeat(100));
    expect(narrow.out).toBe(`${CLEAR}${'x'.repeat(28)}…`);
    const unknown = fakeStream(true, 0);
    createProgress({ stream: unknown, now }).update(`two\nlines ${'y'.repeat(100)}`);
    expect(unknown.out.length).toBe(CLEAR.length + 79);
    // A line break (a name may hold one) is shown escaped, never drawn: the line stays one row.
    expect(unknown.out).toMatch(/^\r\x1b\[2Ktwo\\nlines y+…$/);
  });
});
