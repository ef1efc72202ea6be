import { scanSync } from 'libpg-query';

/**
 * sqlc's named parameters (docs/explain.md, "Query files"), translated to
 * the positional `$n` PostgreSQL plans: `@name`, `sqlc.arg(name)`,
 * `sqlc.narg(name)` and `sqlc.slice(name)` (the name an identifier or a
 * string constant). One name is one parameter, numbered in order of first
 * appearance after the highest `$n` the text already holds, as sqlc numbers
 * them. Read with PostgreSQL's lexer, so nothing inside a string, a quoted
 * identifier or a comment is touched, and the translation only ever removes
 * those tokens and writes `$n` in their place: a name cannot carry SQL into
 * the text. Each replacement is padded with spaces to the length of what
 * it replaces, so that positions in the file (EXP004's line and column)
 * stay right. Called on the statements of SQL query files only (in a
 * pg_stat_statements export, `@x` is PostgreSQL's absolute-value operator).
 */
export function translateSqlcParams(text: string): string {
  if (!text.includes('@') && !/sqlc/i.test(text)) return text;
  let tokens: Array<{ text: string; tokenName: string; start: number; end: number }>;
  try {
    tokens = scanSync(text).tokens as typeof tokens;
  } catch {
    return text;
  }
  const bytes = Buffer.from(text, 'utf8');
  const isWord = (t: { text: string; tokenName: string } | undefined) =>
    t !== undefined && (t.tokenName === 'IDENT' || (t.tokenName === 'UNKNOWN' && /^[A-Za-z_][A-Za-z0-9_$]*$/.test(t.text)));
  const nameOf = (t: { text: string; tokenName: string }): string =>
    t.tokenName === 'SCONST'
      ? t.text.slice(1, -1).replace(/''/g, "'")
      : t.text.startsWith('"')
        ? t.text.slice(1, -1).replace(/""/g, '"')
        : t.text.toLowerCase();
  let next = tokens.reduce((max, t) => (t.tokenName === 'PARAM' ? Math.max(max, Number(t.text.slice(1))) : max), 0);
  const numbers = new Map<string, number>();
  const numberOf = (name: string) => {
    if (!numbers.has(name)) numbers.set(name, ++next);
    return numbers.get(name)!;
  };
  const edits: Array<{ start: number; end: number; param: number }> = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    const n = tokens[i + 1];
    if (t.text === '@' && isWord(n) && n.start === t.end) {
      edits.push({ start: t.start, end: n.end, param: numberOf(nameOf(n)) });
      i += 1;
      continue;
    }
    const [dot, fn, open, arg, close] = tokens.slice(i + 1, i + 6);
    if (
      t.text.toLowerCase() === 'sqlc' &&
      t.tokenName === 'IDENT' &&
      dot?.text === '.' &&
      /^(arg|narg|slice)$/i.test(fn?.text ?? '') &&
      open?.text === '(' &&
      arg !== undefined &&
      (isWord(arg) || arg.tokenName === 'SCONST') &&
      close?.text === ')'
    ) {
      edits.push({ start: t.start, end: close.end, param: numberOf(nameOf(arg)) });
      i += 5;
    }
  }
  if (edits.length === 0) return text;
  const parts: Buffer[] = [];
  let at = 0;
  for (const e of edits) {
    // Padded to the replaced text's characters and line breaks, so that every offset and line after it stays where it was.
    const replaced = bytes.subarray(e.start, e.end).toString('utf8');
    const param = `$${e.param}`;
    const pad = [...replaced]
      .slice(param.length)
      .map((ch) => (ch === '\n' ? '\n' : ' '))
      .join('');
    parts.push(bytes.subarray(at, e.start), Buffer.from(param + pad));
    at = e.end;
  }
  parts.push(bytes.subarray(at));
  return Buffer.concat(parts).toString('utf8');
}
