import { open } from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import { UsageError } from '../errors.js';

/**
 * Every file the CLI reads as input (policy files, query files, baselines,
 * --schema SQL files, policy files at a git revision) goes through here: at
 * most MAX_INPUT_BYTES, and strict UTF-8. A file that is not valid UTF-8 is
 * refused with the line and column of its first invalid byte instead of
 * being decoded with replacement characters (docs/policy-file.md,
 * "Limits on input").
 */
export const MAX_INPUT_BYTES = 16 * 1024 * 1024;

const MIB = 1024 * 1024;

export interface InputFileOptions {
  /** What the file is, for messages: "the policy file", "the query file", ... */
  what: string;
  /** The hint when the file cannot be opened at all. */
  missingHint?: string;
}

/** Read a file as strict UTF-8 text (a byte-order mark is kept, as readFile(file, 'utf8') keeps it). */
export async function readInputFile(file: string, options: InputFileOptions): Promise<string> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    throw unreadable(file, options, error);
  }
  try {
    const info = await handle.stat().catch((error: unknown) => {
      throw unreadable(file, options, error);
    });
    if (info.isDirectory()) throw unreadable(file, options, Object.assign(new Error('it is a folder'), { code: 'EISDIR' }));
    if (info.size > MAX_INPUT_BYTES) throw tooLarge(file, options.what, info.size);
    // Read at most one byte past the limit: a file that grows (or a FIFO) cannot make this read unbounded.
    const buffer = Buffer.alloc(Math.min(MAX_INPUT_BYTES + 1, Math.max(info.size, 64 * 1024)));
    let length = 0;
    for (;;) {
      if (length === buffer.length) break;
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > MAX_INPUT_BYTES) throw tooLarge(file, options.what, length);
    return decodeInput(file, options.what, buffer.subarray(0, length));
  } finally {
    await handle.close();
  }
}

/** Decode bytes read from `file` (or a git blob shown as `file`) with the same limit and strictness. */
export function decodeInput(file: string, what: string, bytes: Uint8Array): string {
  if (bytes.length > MAX_INPUT_BYTES) throw tooLarge(file, what, bytes.length);
  if (!isUtf8(bytes)) {
    // Both follow RFC 3629; the bound only keeps a disagreement from reading past the end.
    const at = Math.min(firstInvalidUtf8(bytes), bytes.length - 1);
    const { line, column } = lineColumnOfByte(bytes, at);
    throw new UsageError(`${file}:${line}:${column}: ${what} is not valid UTF-8 (byte 0x${bytes[at].toString(16).padStart(2, '0')} at offset ${at})`, {
      hint: 'save the file as UTF-8 (e.g. iconv -f LATIN1 -t UTF-8); rlsctl reads no other encoding and never guesses',
    });
  }
  return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
}

function tooLarge(file: string, what: string, size: number): UsageError {
  return new UsageError(`${file}:1:1: ${what} is ${(size / MIB).toFixed(1)} MiB; rlsctl reads input files of at most ${MAX_INPUT_BYTES / MIB} MiB`, {
    hint: 'split it into smaller files (policy folders and several --queries files are read as one)',
  });
}

function unreadable(file: string, options: InputFileOptions, error: unknown): UsageError {
  const code = (error as { code?: string }).code;
  const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : code === 'EACCES' ? 'permission denied' : (error as Error).message;
  return new UsageError(`cannot read ${options.what} ${file}: ${reason}`, { hint: options.missingHint, cause: error });
}

/** Offset of the first byte that does not belong to a well-formed UTF-8 sequence (RFC 3629: no overlongs, no surrogates, at most U+10FFFF). */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min = 0x80;
    let max = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) min = 0xa0;
      if (b === 0xed) max = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) min = 0x90;
      if (b === 0xf4) max = 0x8f;
    } else return i;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      // The first continuation byte has the narrower range; a sequence cut short is reported at its lead byte.
      if (c === undefined || c < (k === 1 ? min : 0x80) || c > (k === 1 ? max : 0xbf)) return i;
    }
    i += need + 1;
  }
  return bytes.length;
}

/** 1-based line and column (in characters) of a byte offset, counting only the valid text before it. */
function lineColumnOfByte(bytes: Uint8Array, offset: number): { line: number; column: number } {
  let lineStart = 0;
  let line = 1;
  for (let i = 0; i < offset; i++) {
    if (bytes[i] === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  const before = new TextDecoder('utf-8').decode(bytes.subarray(lineStart, offset));
  return { line, column: [...before].length + 1 };
}
