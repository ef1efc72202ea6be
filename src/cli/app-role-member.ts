import type pg from 'pg';
import { quoteIdent } from '../compile/quote.js';
import { UsageError } from '../errors.js';
import { readRoleReach } from '../catalog/read-catalog.js';

/**
 * `--app-role` beside `--policies` (explain and verify): the role the
 * application logs in as is often not the app role the policy file declares
 * but a member of it (`GRANT app_user TO app_login`). Such a role is checked
 * against the file as that app role:
 *
 * - a member with INHERIT (directly or through other roles) holds the app
 *   role's privileges and is subject to the policies `TO app_user` itself:
 *   explain and verify act as the login role;
 * - a member with SET only (PostgreSQL 16+: `WITH INHERIT FALSE`) holds
 *   nothing of its own: the application must `SET ROLE app_user`, so they
 *   act as the app role.
 *
 * A role that is neither declared nor such a member is exit 2, naming the
 * declared roles.
 */

export interface AppRoleChoice {
  /** The role named with --app-role. */
  role: string;
  /** The app role of the policy file it is checked as (itself when declared). */
  appRole: string;
  membership: 'declared' | 'inherit' | 'set';
  /** The role explain and verify SET ROLE to. */
  actAs: string;
}

export async function chooseAppRoles(pool: pg.Pool, declared: string[], given: string[]): Promise<AppRoleChoice[]> {
  const choices: AppRoleChoice[] = [];
  const { rows: version } = await pool.query<{ n: string }>(`SELECT pg_catalog.current_setting('server_version_num') AS n`);
  // The SET option of a membership exists from PostgreSQL 16; before, every membership allows SET ROLE.
  const rows = await readRoleReach(pool, given, declared, Number(version[0].n));
  for (const role of given) {
    if (choices.some((c) => c.role === role)) continue;
    if (declared.includes(role)) {
      choices.push({ role, appRole: role, membership: 'declared', actAs: role });
      continue;
    }
    const mine = rows.filter((r) => r.given === role);
    if (!mine[0]?.found) {
      throw new UsageError(`the role ${role} (--app-role) does not exist in this database`, { hint: 'create the role, or name one that exists' });
    }
    const inherit = mine.find((r) => r.app !== null && r.inherit);
    const setOnly = mine.find((r) => r.app !== null && r.set);
    if (inherit) choices.push({ role, appRole: inherit.app!, membership: 'inherit', actAs: role });
    else if (setOnly) choices.push({ role, appRole: setOnly.app!, membership: 'set', actAs: setOnly.app! });
    else {
      throw new UsageError(`--app-role ${role} is neither an app role of the policy file (${declared.join(', ')}) nor a member of one`, {
        hint: `name one of the declared roles, or grant the app role to it (GRANT ${quoteIdent(declared[0] ?? 'app_user')} TO ${quoteIdent(role)};), or leave out --app-role`,
      });
    }
  }
  return choices;
}

/** How a header names a role checked as an app role of the policy file. */
export function describeAppRole(choice: AppRoleChoice): string {
  if (choice.membership === 'declared') return choice.actAs;
  if (choice.membership === 'inherit') return `${choice.role} (a member of ${choice.appRole}, an app role of the policy file)`;
  return `${choice.appRole} (${choice.role} is a member of it with SET only, so it runs as the app role of the policy file)`;
}
