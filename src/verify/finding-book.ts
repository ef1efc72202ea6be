import type { TenantFacts } from '../facts/resolve-facts.js';
import { fingerprintOf, type Finding, type FindingObject } from '../report/finding.js';
import type { SeedFailure } from './seed-tenants.js';
import { labelOf, objectOf, type Target } from './target.js';
import type { VerifyCatalog } from './verify-catalog.js';
import { rowSecurityHelp } from './row-security-help.js';
import { LEAK_RULES, verifyRule } from './registry.js';
import type { Evidence, VerifyRuleCode } from './rule.js';

/**
 * The finding book: what the probes found, one entry per rule, object and role
 * (a second way of breaking the same rule adds a detail to the entry), and the
 * probes that did not run or could not decide. It turns the entries into findings.
 */

/** A probe that did not run or could not decide. */
export interface VerifySkip {
  schema: string;
  name: string;
  kind: FindingObject['kind'];
  role?: string;
  /** read, insert, update, move, delete, no-context, rows. */
  probe: string;
  /** The tenant it would have acted as (or written a row for). */
  tenant?: string;
  reason: string;
}

interface Hit extends Evidence {
  rule: VerifyRuleCode;
  object: FindingObject;
  target?: Target;
  /** Distinguishes findings of the same rule, object and role (VER010). */
  extra?: string;
}

export class FindingBook {
  private hits = new Map<string, Hit>();
  readonly skips: VerifySkip[] = [];

  /** A probe that did not run or could not decide: counted in the summary (and `--strict` fails on it). */
  skip(target: Target, role: string | undefined, probe: string, tenant: string | undefined, reason: string): void {
    const { kind, schema, name } = objectOf(target);
    this.skips.push({ schema: schema ?? '', name, kind, ...(role ? { role } : {}), probe, ...(tenant ? { tenant } : {}), reason });
  }

  /** A leak (VER001, VER002, VER004-VER006) was found on the target. */
  hasLeak(target: Target): boolean {
    const object = objectOf(target);
    return [...this.hits.values()].some(
      (h) => LEAK_RULES.has(h.rule) && h.object.kind === object.kind && h.object.schema === object.schema && h.object.name === object.name,
    );
  }

  constructor(private readonly catalog: VerifyCatalog) {}
  private seedFailures = new Map<number, SeedFailure[]>();

  seedFailure(failure: SeedFailure): void {
    const list = this.seedFailures.get(failure.relation.oid) ?? [];
    list.push(failure);
    this.seedFailures.set(failure.relation.oid, list);
    const target: Target = { kind: 'relation', rel: failure.relation };
    this.add(
      'VER010',
      target,
      undefined,
      'rows',
      `rows:${failure.tenant}`,
      `verify could not write a row of tenant ${failure.tenant} into it, so the probes that need one were skipped: ${failure.reason}`,
    );
  }

  hasSeedFailure(oid: number): boolean {
    return this.seedFailures.has(oid);
  }

  /** Record that `rule` was broken; the first detail of each `way` is kept. */
  add(rule: VerifyRuleCode, target: Target, role: string | undefined, extra: string | undefined, way: string, detail: string, statement?: string): Hit {
    const object = objectOf(target);
    const key = fingerprintOf(rule, object, [role, extra].filter(Boolean).join(':') || undefined);
    let hit = this.hits.get(key);
    if (!hit) {
      hit = { rule, object, target, role, extra, details: new Map(), states: [], statement, errors: new Map() };
      this.hits.set(key, hit);
    }
    if (!hit.details.has(way)) hit.details.set(way, statement ? `${detail}: ${statement}` : detail);
    return hit;
  }

  noContext(rule: 'VER002' | 'VER003', target: Target, role: string, state: string, statement: string, error?: string): void {
    const hit = this.add(rule, target, role, undefined, 'no-context', '', statement);
    if (!hit.states.includes(state)) hit.states.push(state);
    hit.statement = statement;
    if (error && !hit.errors.has(state)) hit.errors.set(state, error);
  }

  /** A leak of a role that row security does not hold (it bypasses it, or a view reads as the role): that fix first. */
  private rowSecurityHelp(hit: Hit): string | undefined {
    if (!LEAK_RULES.has(hit.rule) || hit.target?.kind !== 'relation' || !hit.role) return undefined;
    return rowSecurityHelp(this.catalog, hit.target.rel, this.catalog.subjects.get(hit.role), this.catalog.serverMajor);
  }

  findings(setting: string, facts: TenantFacts): Finding[] {
    return [...this.hits.values()].map((hit) => {
      const meta = verifyRule(hit.rule);
      const label = hit.target ? labelOf(hit.target, this.catalog) : hit.object.name;
      const message = meta.message(hit, label);
      const finding: Finding = {
        rule: meta.code,
        name: meta.name,
        severity: meta.severity,
        message,
        object: hit.object,
        fingerprint: fingerprintOf(hit.rule, hit.object, [hit.role, hit.extra].filter(Boolean).join(':') || undefined),
      };
      const help = hit.target
        ? (this.rowSecurityHelp(hit) ?? meta.help({ target: hit.target, role: hit.role, setting, facts, catalog: this.catalog }))
        : undefined;
      if (help) finding.help = help;
      return finding;
    });
  }
}
