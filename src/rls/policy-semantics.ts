import { COMMANDS, type Command, type PolicyCommand } from '../policy/model.js';

/**
 * How PostgreSQL applies one policy to one command: the one place rlsctl writes
 * this down (docs/architecture.md, "The row-security model"). Sources: the
 * PostgreSQL manual's CREATE POLICY page ("Policies Applied by Command Type")
 * and src/backend/rewrite/rowsecurity.c.
 *
 * - SELECT and DELETE read existing rows with USING.
 * - INSERT checks new rows with WITH CHECK only (a USING clause is refused).
 * - UPDATE reads the rows it changes with USING and checks the new rows with
 *   WITH CHECK; a FOR UPDATE or FOR ALL policy without WITH CHECK uses its
 *   USING expression for the new rows too.
 * - FOR ALL applies to every command, each clause where that command uses it.
 * - A policy without the clause a command uses adds nothing: a permissive one
 *   admits no row through it (it is left out of the OR), a restrictive one
 *   limits nothing (it is left out of the AND).
 */

/** The parts of a policy that decide which rows it admits: catalog and policy-file shapes both fit. */
export interface PolicyShape {
  permissive: boolean;
  command: PolicyCommand;
  /** Role names, exact; `public` is the PUBLIC pseudo-role (every role). */
  roles: readonly string[];
  using?: string;
  check?: string;
}

export const TRUE_EXPRESSION = 'true';
export const FALSE_EXPRESSION = 'false';

/** The commands a policy applies to. */
export function commandsOf(command: PolicyCommand): Command[] {
  return command === 'all' ? [...COMMANDS] : [command];
}

/** Whether a policy for `policyCommand` applies to statements of `command`. */
export function appliesToCommand(policyCommand: PolicyCommand, command: Command): boolean {
  return policyCommand === 'all' || policyCommand === command;
}

/** Whether statements of a policy's command(s) read existing rows through USING. */
export function usesUsing(command: PolicyCommand): boolean {
  return command !== 'insert';
}

/** Whether statements of a policy's command(s) check new rows through WITH CHECK. */
export function usesCheck(command: PolicyCommand): boolean {
  return command === 'all' || command === 'insert' || command === 'update';
}

/** FOR ALL and FOR UPDATE without WITH CHECK check new rows with their USING expression. */
export function checkFollowsUsing(p: Pick<PolicyShape, 'command' | 'check'>): boolean {
  return p.check === undefined && (p.command === 'all' || p.command === 'update');
}

/** What an absent clause means: no row for a permissive policy, no limit for a restrictive one. */
export function absentClause(p: Pick<PolicyShape, 'permissive'>): string {
  return p.permissive ? FALSE_EXPRESSION : TRUE_EXPRESSION;
}

/** The expression that reads existing rows, with an absent one replaced by what it means. */
export function effectiveUsing(p: Pick<PolicyShape, 'permissive' | 'using'>): string {
  return p.using ?? absentClause(p);
}

/** The expression that checks new rows, with an absent one replaced by what it means. */
export function effectiveCheck(p: Pick<PolicyShape, 'permissive' | 'command' | 'using' | 'check'>): string {
  if (p.check !== undefined) return p.check;
  if (checkFollowsUsing(p)) return effectiveUsing(p);
  return absentClause(p);
}

/**
 * Role names as a set to compare. Names are exact, case included: `public` is
 * the PUBLIC pseudo-role in the policy file and in the catalog decoding
 * (PostgreSQL reserves that role name), while `Public` or `PUBLIC` are real
 * roles of those names.
 */
export function normalizeRoleList(roles: readonly string[]): string[] {
  return [...new Set(roles.map((r) => (isPublicRole(r) ? 'public' : r)))].sort();
}

/** The PUBLIC pseudo-role (every role), as policy files and the catalog decoding write it. */
export function isPublicRole(role: string): boolean {
  return role === 'public';
}

/** Whether the policy roles `outer` cover every role of `inner` (PUBLIC covers all). */
export function rolesCover(outer: readonly string[], inner: readonly string[]): boolean {
  const o = normalizeRoleList(outer);
  if (o.includes('public')) return true;
  return normalizeRoleList(inner).every((r) => o.includes(r));
}

export function sameRoleList(a: readonly string[], b: readonly string[]): boolean {
  const x = normalizeRoleList(a);
  const y = normalizeRoleList(b);
  return x.length === y.length && x.every((r, i) => r === y[i]);
}

export type Clause = 'using' | 'check';

/**
 * The expression a policy applies for one clause, as written, or undefined where it applies none:
 * USING is never applied to INSERT, WITH CHECK never to SELECT or DELETE, and FOR ALL / FOR UPDATE
 * policies without WITH CHECK check new rows with USING.
 */
export function clauseExpression(p: Pick<PolicyShape, 'command' | 'using' | 'check'>, clause: Clause): string | undefined {
  if (clause === 'using') return usesUsing(p.command) ? p.using : undefined;
  if (!usesCheck(p.command)) return undefined;
  return p.check ?? (checkFollowsUsing(p) ? p.using : undefined);
}

/** Which commands, and which clause of each, a policy takes part in: reads through USING, writes through WITH CHECK. */
export function clausesOf(p: Pick<PolicyShape, 'command'>): Array<{ command: Command; clause: Clause }> {
  const out: Array<{ command: Command; clause: Clause }> = [];
  for (const command of commandsOf(p.command)) {
    if (usesUsing(command)) out.push({ command, clause: 'using' });
    if (usesCheck(command)) out.push({ command, clause: 'check' });
  }
  return out;
}
