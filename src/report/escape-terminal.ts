/**
 * Names come from the catalog and from files, and a name may hold any
 * character: a terminal must show them, never obey them. Every text that
 * reaches the terminal goes through one of these functions, which render
 * control characters visibly escaped:
 *
 * - C0 controls as `\n`, `\r`, `\t` or `\xHH` (ESC is `\x1b`);
 * - DEL and C1 controls as `\u007f` ... `\u009f`;
 * - the bidirectional overrides and isolates U+202A–U+202E and U+2066–U+2069
 *   as `\u202e` and so on, so a name cannot reorder what follows it.
 *
 * The `\u` forms are valid JSON escapes, so `escapeTerminalOutput` can run
 * over JSON and SARIF documents too: they stay the same JSON value.
 */

const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const CONTROL_BUT_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
/** A colour or style sequence as chalk writes it (SGR), and any other character to escape. */
const CONTROL_BUT_LINES_AND_STYLE = /\u001b\[[0-9;]*m|[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
/**
 * A double-quoted identifier, as quoteIdent writes it (`""` inside), standing as a token of its own:
 * not glued to a word on either side. A lone `"` inside a name printed unquoted (`ix.No"tes`) is not
 * the start of one, so it cannot pair with a quote lines later and swallow the line breaks between.
 */
const QUOTED = /(?<![\p{L}\p{N}_$"])"(?:[^"]|"")*"(?![\p{L}\p{N}_$])/gu;

const NAMED = new Map([
  ['\n', '\\n'],
  ['\r', '\\r'],
  ['\t', '\\t'],
]);

function escapeChar(ch: string): string {
  const named = NAMED.get(ch);
  if (named) return named;
  const code = ch.charCodeAt(0);
  return code < 0x20 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** One line of text (a name, a message): every control character escaped, line breaks included. */
export function escapeTerminal(text: string): string {
  return text.replace(CONTROL, escapeChar);
}

/**
 * Text of several lines (SQL, a hint, a fix): line breaks and tabs stay, every
 * other control character is escaped, and so is everything inside a
 * double-quoted identifier, line breaks included: a quoted name in SQL stays
 * on its line.
 */
export function escapeTerminalBlock(text: string): string {
  return text.replace(QUOTED, escapeTerminal).replace(CONTROL_BUT_LINES, escapeChar);
}

/**
 * The last pass over what a command writes to stdout or stderr: line breaks,
 * tabs and rlsctl's own colours stay, every other control character is
 * escaped. The formatters escape names field by field before they colour
 * them; this catches whatever text reaches the terminal some other way.
 */
export function escapeTerminalOutput(text: string): string {
  return text.replace(CONTROL_BUT_LINES_AND_STYLE, (m) => (m.length > 1 ? m : escapeChar(m)));
}
