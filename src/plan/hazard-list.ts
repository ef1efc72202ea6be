import type { Hazard } from '../compile/statement.js';

const ORDER: Hazard[] = ['AUTHZ_WIDENS', 'AUTHZ_NARROWS', 'DROP', 'INDEX_BUILD', 'TABLE_LOCK'];

/** Hazards without duplicates, in one fixed order (the most important first), so plans diff cleanly. */
export function hazardList(...hazards: Array<Hazard | Hazard[]>): Hazard[] {
  const set = new Set(hazards.flat());
  return ORDER.filter((h) => set.has(h));
}
