import { createHash } from 'node:crypto';
import type { CatalogModel } from './catalog-model.js';

/**
 * A fingerprint of the relations a plan was made from (their flags, columns,
 * policies and indexes). `apply` compares it with a fresh read under its lock:
 * if another session changed the database since the plan was made, apply
 * plans again instead of running statements made for a state that is gone.
 */
export function hashCatalog(catalog: Pick<CatalogModel, 'tables'>): string {
  return createHash('sha256').update(JSON.stringify(catalog.tables)).digest('hex');
}
