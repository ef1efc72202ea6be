import { appliesToCommand } from '../rls/policy-semantics.js';
import type { AuditContext } from './audit-context.js';

/**
 * The PostgreSQL security bugs that touch row level security, with the
 * minor release of each major that fixed them and the schema feature that
 * exposes a database to them. RLS070 compares server_version_num with this
 * table. Checked on 2026-11-26 against the PostgreSQL release notes
 * (postgresql.org/docs/release/) and the CVE records; see docs/rules/RLS070.md
 * for the source of each line. Add a line when a new one is published.
 */
export interface KnownCve {
  id: string;
  title: string;
  published: string;
  /** Major → first fixed minor. Majors newer than every key were released fixed. */
  fixedIn: Record<number, number>;
  /** The oldest affected major (10+ numbering; 9.5 is 905). */
  since: number;
  source: string;
  /** What in the schema exposes the database; the objects that do, or [] when none does. */
  exposure: { description: string; objects(ctx: AuditContext): string[] };
}

function rlsTablesWithPolicies(ctx: AuditContext): string[] {
  const out: string[] = [];
  for (const rel of ctx.catalog.relations) if (rel.rls && ctx.policiesOf(rel.oid).length > 0) out.push(ctx.label(rel));
  return out;
}

export const KNOWN_CVES: KnownCve[] = [
  {
    id: 'CVE-2019-10130',
    title: 'selectivity estimators can bypass row level security (leaky operators on pg_statistic data)',
    published: '2019-05-09',
    fixedIn: { 11: 3, 10: 8, 906: 13, 905: 17 },
    since: 905,
    source: 'https://www.postgresql.org/docs/release/11.3/',
    exposure: { description: 'a table with row level security and policies', objects: rlsTablesWithPolicies },
  },
  {
    id: 'CVE-2023-2455',
    title: 'row security policies disregard user ID changes after inlining a set-returning SQL function',
    published: '2023-05-11',
    fixedIn: { 15: 3, 14: 8, 13: 11, 12: 15, 11: 20 },
    since: 905,
    source: 'https://www.postgresql.org/docs/release/14.8/',
    exposure: {
      description: 'role-specific policies (TO a role other than PUBLIC)',
      objects: (ctx) => {
        const out: string[] = [];
        for (const p of ctx.catalog.policies) {
          const rel = ctx.relations.get(p.relOid);
          if (rel?.rls && p.roles.some((r) => r !== 'public')) out.push(`${ctx.label(rel)}.${p.name}`);
        }
        return out;
      },
    },
  },
  {
    id: 'CVE-2023-39418',
    title: 'MERGE does not enforce UPDATE or SELECT row security policies',
    published: '2023-08-10',
    fixedIn: { 15: 4 },
    since: 15,
    source: 'https://www.postgresql.org/docs/release/15.4/',
    exposure: {
      description: 'a table with row level security and an UPDATE or ALL policy',
      objects: (ctx) => {
        const out = new Set<string>();
        for (const p of ctx.catalog.policies) {
          const rel = ctx.relations.get(p.relOid);
          if (rel?.rls && appliesToCommand(p.command, 'update')) out.add(ctx.label(rel));
        }
        return [...out];
      },
    },
  },
  {
    id: 'CVE-2024-10976',
    title: 'row security below subqueries, WITH queries, security invoker views or SQL functions disregards user ID changes',
    published: '2024-11-14',
    fixedIn: { 17: 1, 16: 5, 15: 9, 14: 14, 13: 17, 12: 21 },
    since: 905,
    source: 'https://www.postgresql.org/support/security/CVE-2024-10976/',
    exposure: { description: 'a table with row level security and policies', objects: rlsTablesWithPolicies },
  },
  {
    id: 'CVE-2025-8713',
    title: 'optimizer statistics can expose rows that row security hides in partitioning or inheritance hierarchies',
    published: '2025-08-14',
    fixedIn: { 17: 6, 16: 10, 15: 14, 14: 19, 13: 22 },
    since: 905,
    source: 'https://www.postgresql.org/docs/release/14.19/',
    exposure: {
      description: 'a partitioned (or inheritance parent) table with row level security and policies',
      objects: (ctx) => {
        const parents = new Set<string>();
        for (const rel of ctx.catalog.relations) if (rel.parentOid) parents.add(rel.parentOid);
        const out: string[] = [];
        for (const rel of ctx.catalog.relations) {
          if ((rel.kind === 'p' || parents.has(rel.oid)) && rel.rls && ctx.policiesOf(rel.oid).length > 0) out.push(ctx.label(rel));
        }
        return out;
      },
    },
  },
];

/** `server_version_num` → [major, minor]: 140013 → [14, 13]; 90613 → [906, 13]. */
export function splitVersion(versionNum: number): [number, number] {
  if (versionNum >= 100000) return [Math.floor(versionNum / 10000), versionNum % 10000];
  return [Math.floor(versionNum / 100), versionNum % 100];
}

export function versionLabel(major: number, minor: number): string {
  return major >= 100 ? `${Math.floor(major / 100)}.${major % 100}.${minor}` : `${major}.${minor}`;
}

/** Is this server version affected? Returns the fixed version of its major (undefined: no fix on that branch). */
export function affects(cve: KnownCve, versionNum: number): { affected: boolean; fixedIn?: string } {
  const [major, minor] = splitVersion(versionNum);
  // 9.6 is major 906 in this numbering: compare 9.06 with 14.
  const rank = (m: number) => (m >= 100 ? m / 100 : m);
  const newest = Math.max(...Object.keys(cve.fixedIn).map((m) => rank(Number(m))));
  if (rank(major) < rank(cve.since) || rank(major) > newest) return { affected: false };
  const fixed = cve.fixedIn[major];
  if (fixed === undefined) return { affected: true };
  return { affected: minor < fixed, fixedIn: versionLabel(major, fixed) };
}
