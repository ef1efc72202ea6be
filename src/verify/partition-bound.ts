/**
 * The bound of a partition, from the text pg_get_expr(relpartbound) prints:
 * `FOR VALUES FROM ('2026-10-01 00:00:00+00') TO ('2026-11-01 …')`,
 * `FOR VALUES IN ('a', 'b')`, `FOR VALUES WITH (modulus 4, remainder 0)` or
 * `DEFAULT`. Verify uses it to give a synthetic row a partition key value
 * that the partition accepts.
 */

export type BoundValue = { kind: 'value'; text: string } | { kind: 'null' } | { kind: 'minvalue' } | { kind: 'maxvalue' };

export type PartitionBound =
  { kind: 'range'; from: BoundValue[]; to: BoundValue[] } | { kind: 'list'; values: BoundValue[] } | { kind: 'hash' } | { kind: 'default' };

export function parsePartitionBound(text: string): PartitionBound | undefined {
  const t = text.trim();
  if (/^DEFAULT$/i.test(t)) return { kind: 'default' };
  if (/^FOR VALUES WITH\s*\(/i.test(t)) return { kind: 'hash' };
  const list = /^FOR VALUES IN\s*\(([\s\S]*)\)$/i.exec(t);
  if (list) return { kind: 'list', values: splitValues(list[1]).map(parseValue) };
  const range = /^FOR VALUES FROM\s*\(([\s\S]*?)\)\s*TO\s*\(([\s\S]*)\)$/i.exec(t);
  if (range) return { kind: 'range', from: splitValues(range[1]).map(parseValue), to: splitValues(range[2]).map(parseValue) };
  return undefined;
}

/** Split `'a, b', 1, MINVALUE` at the top-level commas (not inside quotes or parentheses). */
function splitValues(text: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      current += ch;
      if (ch === "'") {
        if (text[i + 1] === "'") {
          current += "'";
          i++;
        } else quoted = false;
      }
      continue;
    }
    if (ch === "'") quoted = true;
    else if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === ',' && depth === 0) {
      parts.push(current.trim());
      current = '';
      continue;
    }
    current += ch;
  }
  if (current.trim() !== '') parts.push(current.trim());
  return parts;
}

function parseValue(raw: string): BoundValue {
  let text = raw.trim();
  // A constant may print with a cast (`'1'::bigint`) or in parentheses (`(-1)`).
  while (text.startsWith('(') && text.endsWith(')')) text = text.slice(1, -1).trim();
  if (/^MINVALUE$/i.test(text)) return { kind: 'minvalue' };
  if (/^MAXVALUE$/i.test(text)) return { kind: 'maxvalue' };
  if (/^NULL$/i.test(text)) return { kind: 'null' };
  const quoted = /^E?'((?:[^']|'')*)'(?:::[\w\s."[\]()]+)?$/.exec(text);
  if (quoted) return { kind: 'value', text: quoted[1].replace(/''/g, "'") };
  return { kind: 'value', text: text.replace(/::[\w\s."[\]()]+$/, '') };
}
