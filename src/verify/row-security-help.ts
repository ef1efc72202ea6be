import { quoteIdent } from '../compile/quote.js';
import { effectiveRole, isSecurityInvoker, rowSecurityFor, type SubjectRole } from '../rls/row-security-subjects.js';
import type { VerifyCatalog, VerifyRelation } from './verify-catalog.js';

/**
 * What verify expects of a role on a relation it probes, from the row-security
 * model (src/rls/row-security-subjects.ts): a table or partition (probed by its
 * own name, so its own flags and owner count) whose row security the role
 * bypasses, or a view that reads as the role itself, needs another fix than a
 * better policy. Undefined: the usual help stands.
 */
export function rowSecurityHelp(catalog: VerifyCatalog, rel: VerifyRelation, role: SubjectRole | undefined, serverMajor: number): string | undefined {
  if (!role || !rel.security) return undefined;
  const { owner, rowSecurity, forceRowSecurity, options } = rel.security;
  if (rel.kind === 'view') {
    const via = { views: [{ owner: { name: owner, superuser: false, bypassRls: false }, securityInvoker: isSecurityInvoker(options) }], serverMajor };
    if (effectiveRole(role, via) !== role) return undefined;
    const reads = rel.reads.map((oid) => catalog.byOid.get(oid)).filter((r): r is VerifyRelation => r !== undefined && r.kind !== 'view');
    return `-- ${rel.sql} is security_invoker: it reads its tables as ${role.name}, under their policies for ${role.name}. Fix those${reads.length > 0 ? ` (${reads.map((r) => r.sql).join(', ')})` : ''}: run rlsctl audit for the hole and rlsctl apply to fix it.`;
  }
  if (rel.kind !== 'table' && rel.kind !== 'partition') return undefined;
  const verdict = rowSecurityFor({
    relation: { kind: rel.relkind, owner, rowSecurity, forceRowSecurity, isPartition: rel.kind === 'partition', label: rel.sql },
    role,
  });
  switch (verdict.reason.code) {
    case 'owner':
    case 'owner-privileges':
      return `-- ${verdict.reason.message}: no policy of it applies to ${role.name}\nALTER TABLE ${rel.sql} FORCE ROW LEVEL SECURITY;  -- and let the application run as a role that owns nothing`;
    case 'superuser':
    case 'bypassrls':
      return `-- ${verdict.reason.message}: no policy applies to it\nALTER ROLE ${quoteIdent(role.name)} ${verdict.reason.code === 'superuser' ? 'NOSUPERUSER' : 'NOBYPASSRLS'};`;
    case 'rls-disabled':
      return `-- ${verdict.reason.message}\nALTER TABLE ${rel.sql} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;  -- once its policies hold the tenant predicate (rlsctl apply does both)`;
    default:
      return undefined;
  }
}
