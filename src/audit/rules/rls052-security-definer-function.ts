import { quoteIdent } from '../../compile/quote.js';
import type { Finding } from '../../report/finding.js';
import { findingOf } from '../audit-context.js';
import { defineRule } from '../rule.js';
import { sqlFix } from '../fix.js';

export const rls052 = defineRule({
  code: 'RLS052',
  name: 'security-definer-function',
  severity: 'warning',
  title: 'SECURITY DEFINER function, executable by app roles, owned by a role that bypasses RLS',
  description:
    "A SECURITY DEFINER function runs with its owner's rights. When the owner is a superuser, has BYPASSRLS, or owns tenant tables that do not force RLS, any query the function runs on those tables sees every tenant's rows, and the app roles can call it. The catalog cannot tell what the body reads: review it.",
  remediation:
    "Make the function SECURITY INVOKER if it does not need its owner's rights; otherwise give it to an owner the policies apply to, pin its search_path, and revoke EXECUTE from PUBLIC and the app roles where they do not need it.",
  check(ctx) {
    const findings: Finding[] = [];
    // Per owner: the tenant tables it bypasses as their owner (or with the owner's privileges), not forced.
    const tables = [...ctx.protectedTables.values()];
    const ownedOf = new Map<string, string[]>();
    const owned = (owner: string) => {
      let list = ownedOf.get(owner);
      if (!list) {
        list = tables
          .filter((t) => {
            const code = ctx.rowSecurity(owner, t.rel).reason.code;
            return code === 'owner' || code === 'owner-privileges';
          })
          .map((t) => ctx.label(t.rel));
        ownedOf.set(owner, list);
      }
      return list;
    };
    for (const fn of ctx.catalog.functions) {
      // Like every rule, about the schemas audited (--schema, or the policy file's): a function elsewhere
      // (an auth or private helper schema) is reported when its schema is audited.
      if (fn.executableBy.length === 0 || !ctx.scopeSchemas.has(fn.schema)) continue;
      const attr = ctx.bypassesByAttribute(fn.owner);
      const bypassed = attr ? [] : owned(fn.owner);
      if (!attr && bypassed.length === 0) continue;
      const why = attr
        ? `its owner ${fn.owner} is ${attr === 'superuser' ? 'a superuser' : 'BYPASSRLS'}`
        : `its owner ${fn.owner} owns ${bypassed.length <= 3 ? bypassed.join(', ') : `${bypassed.slice(0, 3).join(', ')} and ${bypassed.length - 3} more`} without FORCE ROW LEVEL SECURITY`;
      const signature = `${quoteIdent(fn.schema)}.${quoteIdent(fn.name)}(${fn.args})`;
      findings.push(
        findingOf(
          rls052,
          { kind: 'function', schema: fn.schema, name: `${fn.name}(${fn.args})` },
          `SECURITY DEFINER function ${fn.schema}.${fn.name}(${fn.args}) can be executed by ${fn.executableBy.join(', ')} and ${why}: what it reads of tenant tables, it reads for every tenant`,
          sqlFix([`ALTER FUNCTION ${signature} SECURITY INVOKER;`], {
            alternatives: [`keep it SECURITY DEFINER and give it (ALTER FUNCTION ${signature} OWNER TO ...) to an owner the policies apply to`],
          }),
        ),
      );
    }
    return findings;
  },
});
