import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeInput, firstInvalidUtf8, readInputFile } from '../../../src/input/read-input-file.js';

const dir = mkdtempSync(path.join(tmpdir(), 'rlsctl-read-input-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('strict UTF-8 input', () => {
  it('finds the first byte of an ill-formed sequence: overlong, surrogate, above U+10FFFF, stray continuation, cut short', () => {
    expect(firstInvalidUtf8(Buffer.from('ok é ✓ 😀'))).toBe(Buffer.byteLength('ok é ✓ 😀'));
    expect(firstInvalidUtf8(Buffer.from([0x61, 0xc0, 0xaf]))).toBe(1); // overlong '/'
    expect(firstInvalidUtf8(Buffer.from([0x61, 0xe0, 0x80, 0xaf]))).toBe(1); // overlong, 3 bytes
    expect(firstInvalidUtf8(Buffer.from([0x61, 0x62, 0xed, 0xa0, 0x80]))).toBe(2); // a UTF-16 surrogate
    expect(firstInvalidUtf8(Buffer.from([0xf4, 0x90, 0x80, 0x80]))).toBe(0); // above U+10FFFF
    expect(firstInvalidUtf8(Buffer.from([0x61, 0x80]))).toBe(1); // a continuation byte alone
    expect(firstInvalidUtf8(Buffer.from([0x61, 0xf0, 0x9f, 0x98]))).toBe(1); // cut short at the end
  });

  it('decodes valid text as readFile would, byte-order mark included', () => {
    expect(decodeInput('f', 'the file', Buffer.from('\uFEFFversion: 1\n'))).toBe('\uFEFFversion: 1\n');
  });

  it('names a folder and a missing file plainly', async () => {
    await expect(readInputFile(dir, { what: 'the query file' })).rejects.toThrow(`cannot read the query file ${dir}: it is a folder`);
    await expect(readInputFile(path.join(dir, 'nope.sql'), { what: 'the query file', missingHint: 'h' })).rejects.toThrow('no such file');
  });

  it('reads a file of exactly the limit, and refuses one byte more', async () => {
    const at = path.join(dir, 'at.sql');
    writeFileSync(at, Buffer.alloc(16 * 1024 * 1024, 0x20));
    expect((await readInputFile(at, { what: 'the query file' })).length).toBe(16 * 1024 * 1024);
    const over = path.join(dir, 'over.sql');
    writeFileSync(over, Buffer.alloc(16 * 1024 * 1024 + 1, 0x20));
    await expect(readInputFile(over, { what: 'the query file' })).rejects.toThrow('rlsctl reads input files of at most 16 MiB');
  });
});
