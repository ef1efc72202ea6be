/**
 * The precision corpus: for audit rules, SQL that must give findings and
 * near misses that must not (typescript-eslint's RuleTester style). Each
 * case runs on top of SUPABASE_AUTH (a stub of Supabase's auth schema as
 * Supabase defines it) in a transaction of its own, audited with inferred
 * facts: schema `app`, tenant column `org_id`, app roles {{anon}} and
 * {{authenticated}} (role names unique to the run). `expect` gives, per
 * rule, how many findings it must report; a rule that is not named may
 * report anything.
 */

export interface PrecisionCase {
  name: string;
  sql: string;
  expect: Record<string, number>;
  /** The severity every finding of a rule must have, where it depends on the case. */
  severity?: Record<string, 'error' | 'warning' | 'info'>;
  /**
   * The claim proven on the server: `sql` run as {{authenticated}} (a signed-in user's claims set) must
   * fail with `error`, or succeed when `error` is absent.
   */
  probe?: { sql: string; error?: RegExp };
  /** Run the `help` of this rule's findings, audit again: the rule must then report nothing. */
  applyHelp?: string;
}

/**
 * auth.uid(), auth.role(), auth.jwt() as Supabase defines them: SQL functions
 * that read the JWT claims from `request.jwt.claims` (and the older
 * per-claim settings); auth.users with its user-editable raw_user_meta_data.
 */
export const SUPABASE_AUTH = `
CREATE SCHEMA auth;
CREATE TABLE auth.users (id uuid PRIMARY KEY, email text, raw_app_meta_data jsonb, raw_user_meta_data jsonb);
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
  select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''), (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid
$$;
CREATE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS $$
  select coalesce(nullif(current_setting('request.jwt.claim.role', true), ''), (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'))::text
$$;
CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$
  select coalesce(nullif(current_setting('request.jwt.claim', true), ''), nullif(current_setting('request.jwt.claims', true), ''))::jsonb
$$;
GRANT USAGE ON SCHEMA auth TO {{anon}}, {{authenticated}};
CREATE SCHEMA app;
GRANT USAGE ON SCHEMA app TO {{anon}}, {{authenticated}};
CREATE SCHEMA private;
`;

/** A tenant table of the corpus, RLS enabled and forced, readable and writable by {{authenticated}}; `policies` follow. */
function table(
  name: string,
  policies: string,
  columns = 'org_id uuid NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(), name text, PRIMARY KEY (org_id, id)',
): string {
  return `
CREATE TABLE app.${name} (${columns});
ALTER TABLE app.${name} ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.${name} FORCE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE, DELETE ON app.${name} TO {{authenticated}};
${policies}`;
}

const MEMBERS = `
CREATE TABLE private.members (org_id uuid NOT NULL, user_id uuid NOT NULL, PRIMARY KEY (org_id, user_id));
CREATE FUNCTION private.user_org_ids() RETURNS SETOF uuid LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
  SELECT org_id FROM private.members WHERE user_id = auth.uid()
$$;`;

export const CASES: PrecisionCase[] = [
  // RLS022: fail-open branches, on any tenant source.
  {
    name: 'RLS022 fires on OR auth.uid() IS NULL',
    sql:
      MEMBERS +
      table(
        'notes',
        `CREATE POLICY notes_own ON app.notes FOR ALL TO {{authenticated}} USING (org_id IN (SELECT private.user_org_ids()) OR auth.uid() IS NULL);`,
      ),
    expect: { RLS022: 1 },
  },
  {
    name: "RLS022 fires on OR current_setting('x', true) = ''",
    sql: table(
      'notes',
      `CREATE POLICY notes_own ON app.notes FOR ALL TO {{authenticated}} USING (org_id = (SELECT nullif(current_setting('app.org', true), '')::uuid) OR current_setting('app.org', true) = '');`,
    ),
    expect: { RLS022: 1 },
  },
  {
    name: 'RLS022 fires on COALESCE(<tenant test>, true)',
    sql: table(
      'notes',
      `CREATE POLICY notes_own ON app.notes FOR ALL TO {{authenticated}} USING (coalesce(org_id = ((SELECT auth.jwt()) ->> 'org_id')::uuid, true));`,
    ),
    expect: { RLS022: 1 },
  },
  {
    name: 'RLS022 fires on a SQL helper that reads the claims, OR helper() IS NULL',
    sql:
      `CREATE FUNCTION private.current_org() RETURNS uuid LANGUAGE sql STABLE AS $$ SELECT (auth.jwt() -> 'app_metadata' ->> 'org_id')::uuid $$;` +
      table(
        'notes',
        `CREATE POLICY notes_own ON app.notes FOR ALL TO {{authenticated}} USING (org_id = private.current_org() OR private.current_org() IS NULL);`,
      ),
    expect: { RLS022: 1 },
  },
  {
    name: 'RLS022 near miss: a null test of a row column, and of a helper that reads no tenant source',
    sql:
      `CREATE FUNCTION private.default_org() RETURNS uuid LANGUAGE sql IMMUTABLE AS $$ SELECT '00000000-0000-0000-0000-000000000000'::uuid $$;` +
      MEMBERS +
      table(
        'notes',
        `CREATE POLICY notes_own ON app.notes FOR ALL TO {{authenticated}} USING ((org_id IN (SELECT private.user_org_ids()) AND (name IS NULL OR name <> '')) OR private.default_org() IS NULL);`,
      ),
    expect: { RLS022: 0 },
  },

  // RLS024: the tenant from a claim the user can edit.
  {
    name: "RLS024 fires on auth.jwt() -> 'user_metadata' ->> 'org_id'",
    sql: table(
      'notes',
      `CREATE POLICY notes_org ON app.notes FOR ALL TO {{authenticated}} USING (org_id = ((SELECT auth.jwt()) -> 'user_metadata' ->> 'org_id')::uuid);`,
    ),
    expect: { RLS024: 1 },
  },
  {
    name: 'RLS024 fires on a helper that reads auth.users.raw_user_meta_data',
    sql:
      `CREATE FUNCTION private.meta_org() RETURNS uuid LANGUAGE sql STABLE SECURITY DEFINER AS $$ SELECT (raw_user_meta_data ->> 'org_id')::uuid FROM auth.users WHERE id = auth.uid() $$;` +
      table('notes', `CREATE POLICY notes_org ON app.notes FOR ALL TO {{authenticated}} USING (org_id = (SELECT private.meta_org()));`),
    expect: { RLS024: 1 },
  },
  {
    name: 'RLS024 near miss: app_metadata (only the server sets it), and a membership lookup',
    sql:
      table(
        'notes',
        `CREATE POLICY notes_org ON app.notes FOR ALL TO {{authenticated}} USING (org_id = ((SELECT auth.jwt()) -> 'app_metadata' ->> 'org_id')::uuid);`,
      ) +
      MEMBERS +
      table('tasks', `CREATE POLICY tasks_org ON app.tasks FOR ALL TO {{authenticated}} USING (org_id IN (SELECT private.user_org_ids()));`),
    expect: { RLS024: 0 },
  },

  // RLS030: always true.
  {
    name: 'RLS030 fires (error) on USING (true) for SELECT on a tenant table',
    sql: table('notes', `CREATE POLICY notes_all ON app.notes FOR SELECT TO {{authenticated}} USING (true);`),
    expect: { RLS030: 1 },
    severity: { RLS030: 'error' },
  },
  {
    name: 'RLS030 reports a public read (warning) on USING (true) for SELECT on a table without a tenant column',
    sql: table(
      'plans',
      `CREATE POLICY plans_read ON app.plans FOR SELECT TO {{anon}}, {{authenticated}} USING (true);`,
      'id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text',
    ),
    expect: { RLS030: 1 },
    severity: { RLS030: 'warning' },
  },
  {
    name: 'RLS030 near miss: a read policy with a real predicate on a table without a tenant column',
    sql: table(
      'plans',
      `CREATE POLICY plans_read ON app.plans FOR SELECT TO {{anon}} USING (name IS NOT NULL);`,
      'id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text',
    ),
    expect: { RLS030: 0 },
  },
  {
    name: 'RLS030 fires (error) on WITH CHECK (true) for INSERT on a table without a tenant column',
    sql: table(
      'plans',
      `CREATE POLICY plans_insert ON app.plans FOR INSERT TO {{authenticated}} WITH CHECK (true);`,
      'id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text',
    ),
    expect: { RLS030: 1 },
    severity: { RLS030: 'error' },
  },

  // RLS032: writes tied to the tenant inside a correlated sub-query.
  {
    name: 'RLS032 near miss: FOR ALL with a correlated EXISTS membership check',
    sql:
      MEMBERS +
      table(
        'notes',
        `CREATE POLICY notes_members ON app.notes FOR ALL TO {{authenticated}}
           USING (EXISTS (SELECT 1 FROM private.members m WHERE m.org_id = notes.org_id AND m.user_id = (SELECT auth.uid())));`,
      ),
    expect: { RLS032: 0 },
  },
  {
    name: 'RLS032 near miss: membership IN and the SECURITY DEFINER helper',
    sql:
      MEMBERS +
      table(
        'notes',
        `CREATE POLICY notes_members ON app.notes FOR ALL TO {{authenticated}} USING (org_id IN (SELECT m.org_id FROM private.members m WHERE m.user_id = (SELECT auth.uid())));`,
      ) +
      table('tasks', `CREATE POLICY tasks_members ON app.tasks FOR ALL TO {{authenticated}} USING (org_id IN (SELECT private.user_org_ids()));`),
    expect: { RLS032: 0 },
  },
  {
    name: 'RLS032 fires on an EXISTS that is not tied to the row (any member of any org)',
    sql:
      MEMBERS +
      table(
        'notes',
        `CREATE POLICY notes_read ON app.notes FOR SELECT TO {{authenticated}} USING (org_id IN (SELECT private.user_org_ids()));
         CREATE POLICY notes_write ON app.notes FOR INSERT TO {{authenticated}} WITH CHECK (EXISTS (SELECT 1 FROM private.members m WHERE m.user_id = (SELECT auth.uid())));`,
      ),
    expect: { RLS032: 1 },
  },

  // RLS034: read policies that only check that someone is logged in.
  {
    name: 'RLS034 fires on USING (auth.uid() IS NOT NULL)',
    sql: table('notes', `CREATE POLICY notes_read ON app.notes FOR SELECT TO {{authenticated}} USING ((SELECT auth.uid()) IS NOT NULL);`),
    expect: { RLS034: 1 },
  },
  {
    name: 'RLS034 fires beside a policy that checks the tenant for updates; its help holds that predicate for reads',
    sql:
      MEMBERS +
      table(
        'notes',
        `CREATE POLICY notes_read ON app.notes FOR SELECT TO {{authenticated}} USING ((SELECT auth.uid()) IS NOT NULL);
         CREATE POLICY notes_update ON app.notes FOR UPDATE TO {{authenticated}} USING (org_id IN (SELECT private.user_org_ids()));`,
      ),
    expect: { RLS034: 1 },
    applyHelp: 'RLS034',
  },
  {
    name: "RLS034 fires on USING (auth.role() = 'authenticated')",
    sql: table('notes', `CREATE POLICY notes_read ON app.notes FOR SELECT USING (auth.role() = 'authenticated');`),
    expect: { RLS034: 1 },
  },
  {
    name: 'RLS034 near miss: the membership check, a user column, a restrictive tenant guard beside a logged-in check',
    sql:
      MEMBERS +
      table('notes', `CREATE POLICY notes_read ON app.notes FOR SELECT TO {{authenticated}} USING (org_id IN (SELECT private.user_org_ids()));`) +
      table(
        'tasks',
        `CREATE POLICY tasks_read ON app.tasks FOR SELECT TO {{authenticated}} USING (owner_id = (SELECT auth.uid()));`,
        'org_id uuid NOT NULL, id uuid PRIMARY KEY DEFAULT gen_random_uuid(), owner_id uuid',
      ) +
      table(
        'files',
        `CREATE POLICY files_read ON app.files FOR SELECT TO {{authenticated}} USING ((SELECT auth.uid()) IS NOT NULL);
         CREATE POLICY files_guard ON app.files AS RESTRICTIVE FOR ALL TO {{authenticated}} USING (org_id IN (SELECT private.user_org_ids())) WITH CHECK (org_id IN (SELECT private.user_org_ids()));`,
      ),
    expect: { RLS034: 0 },
  },
  {
    name: 'RLS034 near miss: a staff rule through a sub-query or a boolean helper (may be meant to cross tenants)',
    sql:
      `CREATE TABLE private.admins (user_id uuid PRIMARY KEY);
       CREATE FUNCTION private.is_admin() RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$ SELECT EXISTS (SELECT 1 FROM private.admins WHERE user_id = auth.uid()) $$;` +
      table(
        'notes',
        `CREATE POLICY notes_staff ON app.notes FOR SELECT TO {{authenticated}} USING (EXISTS (SELECT 1 FROM private.admins a WHERE a.user_id = (SELECT auth.uid())));
         CREATE POLICY notes_admin ON app.notes FOR SELECT TO {{authenticated}} USING ((SELECT private.is_admin()));`,
      ),
    expect: { RLS034: 0 },
  },
  {
    name: 'RLS034 fires on an AND of sign-in tests, and on the role claim compared with a constant',
    sql: table(
      'notes',
      `CREATE POLICY notes_read ON app.notes FOR SELECT TO {{authenticated}} USING ((SELECT auth.uid()) IS NOT NULL AND (SELECT auth.jwt()) ->> 'role' = 'authenticated');`,
    ),
    expect: { RLS034: 1 },
  },

  // RLS035: policies that recurse.
  {
    name: 'RLS035 fires on a membership table whose policy reads itself',
    sql: table(
      'members',
      `CREATE POLICY members_read ON app.members FOR SELECT TO {{authenticated}} USING (org_id IN (SELECT m.org_id FROM app.members m WHERE m.user_id = (SELECT auth.uid())));`,
      'org_id uuid NOT NULL, user_id uuid NOT NULL, PRIMARY KEY (org_id, user_id)',
    ),
    expect: { RLS035: 1 },
    probe: { sql: 'SELECT count(*) FROM app.members', error: /infinite recursion detected in policy/ },
  },
  {
    name: 'RLS035 fires on two tables whose policies read each other',
    sql:
      table('projects', ``) +
      table(
        'members',
        `CREATE POLICY members_read ON app.members FOR SELECT TO {{authenticated}} USING (EXISTS (SELECT 1 FROM app.projects p WHERE p.org_id = members.org_id));`,
        'org_id uuid NOT NULL, user_id uuid NOT NULL, PRIMARY KEY (org_id, user_id)',
      ) +
      `CREATE POLICY projects_read ON app.projects FOR SELECT TO {{authenticated}} USING (org_id IN (SELECT m.org_id FROM app.members m WHERE m.user_id = (SELECT auth.uid())));`,
    expect: { RLS035: 2 },
    probe: { sql: 'SELECT count(*) FROM app.projects', error: /infinite recursion detected in policy/ },
  },
  {
    name: 'RLS035 near miss: the SECURITY DEFINER helper breaks the cycle; a table without RLS is no cycle',
    sql:
      table('members', ``, 'org_id uuid NOT NULL, user_id uuid NOT NULL, PRIMARY KEY (org_id, user_id)') +
      `CREATE FUNCTION private.my_orgs() RETURNS SETOF uuid LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$ SELECT org_id FROM app.members WHERE user_id = auth.uid() $$;
       CREATE POLICY members_read ON app.members FOR SELECT TO {{authenticated}} USING (org_id IN (SELECT private.my_orgs()));` +
      MEMBERS +
      table(
        'notes',
        `CREATE POLICY notes_read ON app.notes FOR SELECT TO {{authenticated}} USING (org_id IN (SELECT m.org_id FROM private.members m WHERE m.user_id = auth.uid()));`,
      ) +
      `GRANT USAGE ON SCHEMA private TO {{authenticated}}; GRANT SELECT ON private.members TO {{authenticated}};
       INSERT INTO app.members VALUES ('00000000-0000-4000-8000-00000000000a', '00000000-0000-4000-8000-000000000001');
       INSERT INTO private.members VALUES ('00000000-0000-4000-8000-00000000000a', '00000000-0000-4000-8000-000000000001');`,
    expect: { RLS035: 0 },
    probe: { sql: 'SELECT (SELECT count(*) FROM app.members) + (SELECT count(*) FROM app.notes)' },
  },
  {
    name: 'RLS035 fires through a helper that is not SECURITY DEFINER',
    sql: `CREATE TABLE app.members (org_id uuid NOT NULL, user_id uuid NOT NULL, PRIMARY KEY (org_id, user_id));
       CREATE FUNCTION private.my_orgs() RETURNS SETOF uuid LANGUAGE sql STABLE AS $$ SELECT org_id FROM app.members WHERE user_id = auth.uid() $$;
       ALTER TABLE app.members ENABLE ROW LEVEL SECURITY;
       GRANT SELECT ON app.members TO {{authenticated}};
       CREATE POLICY members_read ON app.members FOR SELECT TO {{authenticated}} USING (org_id IN (SELECT private.my_orgs()));
       GRANT USAGE ON SCHEMA private TO {{authenticated}};
       INSERT INTO app.members VALUES ('00000000-0000-4000-8000-00000000000a', '00000000-0000-4000-8000-000000000001');`,
    expect: { RLS035: 1 },
    probe: { sql: 'SELECT count(*) FROM app.members', error: /infinite recursion|stack depth limit exceeded/ },
  },

  // RLS061: unique keys that cannot collide across tenants, and lookup tokens.
  {
    name: 'RLS061 near miss: random UUID, identity and serial keys; a key led by a parent id; API tokens',
    sql:
      table('orgs_projects', ``, 'org_id uuid NOT NULL, id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text') +
      table('invoices', ``, 'org_id uuid NOT NULL, id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, serial_no bigserial UNIQUE') +
      table(
        'tasks',
        ``,
        'org_id uuid NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY, project_id uuid NOT NULL REFERENCES app.orgs_projects (id), position int NOT NULL, UNIQUE (project_id, position)',
      ) +
      table(
        'api_keys',
        ``,
        'org_id uuid NOT NULL, id uuid PRIMARY KEY DEFAULT gen_random_uuid(), token text NOT NULL UNIQUE, key_hash text NOT NULL UNIQUE, slug text NOT NULL UNIQUE',
      ),
    expect: { RLS061: 0 },
  },
  {
    name: 'RLS061 fires on a client-chosen number, and on a uuid without a generated default',
    sql: table('invoices', ``, 'org_id uuid NOT NULL, id uuid PRIMARY KEY, number int NOT NULL UNIQUE'),
    expect: { RLS061: 2 },
  },

  {
    name: 'RLS061 near miss: a key holding a foreign key paired with the tenant (as RLS060 fixes it) to a globally unique parent id',
    sql:
      table('plans', ``, 'org_id uuid NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY, UNIQUE (org_id, id)') +
      table(
        'charges',
        ``,
        'org_id uuid NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY, plan_id uuid NOT NULL, code text NOT NULL, FOREIGN KEY (org_id, plan_id) REFERENCES app.plans (org_id, id), UNIQUE (plan_id, code)',
      ),
    expect: { RLS061: 0 },
  },
  {
    name: 'RLS061 fires on a key holding a paired foreign key whose parent id is unique only per tenant',
    sql:
      table('plans', ``, 'org_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (org_id, id)') +
      table(
        'charges',
        ``,
        'org_id uuid NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY, plan_id uuid NOT NULL, code text NOT NULL, FOREIGN KEY (org_id, plan_id) REFERENCES app.plans (org_id, id), UNIQUE (plan_id, code)',
      ),
    expect: { RLS061: 1 },
  },
  {
    name: "RLS061 near miss: a token table's value column, an HMAC key, and a table of one row per tenant",
    sql:
      table('api_keys', ``, 'org_id uuid NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY, value text NOT NULL UNIQUE') +
      table('org_settings', ``, 'org_id uuid NOT NULL PRIMARY KEY, custom_domain text UNIQUE, invoice_prefix text UNIQUE') +
      table('webhooks', ``, 'org_id uuid NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY, hmac_key text NOT NULL UNIQUE'),
    expect: { RLS061: 0 },
  },
  {
    name: 'RLS061 still fires on a value column outside a token table',
    sql: table('prices', ``, 'org_id uuid NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY, value text NOT NULL UNIQUE'),
    expect: { RLS061: 1 },
  },

  // RLS001: without a policy file, a table the app role can read, whatever its columns.
  {
    name: 'RLS001 fires on a readable table without RLS and without a tenant column',
    sql: `CREATE TABLE app.settings (key text PRIMARY KEY, value text); GRANT SELECT ON app.settings TO {{anon}};`,
    expect: { RLS001: 1 },
  },
  {
    name: 'RLS001 fires on a table PUBLIC can read',
    sql: `CREATE TABLE app.settings (key text PRIMARY KEY, value text); GRANT SELECT ON app.settings TO PUBLIC;`,
    expect: { RLS001: 1 },
  },
  {
    name: 'RLS001 near miss: no grant; a schema the app roles have no USAGE on',
    sql: `CREATE TABLE app.internal (key text PRIMARY KEY);
          CREATE SCHEMA hidden; CREATE TABLE hidden.secrets (key text PRIMARY KEY); GRANT SELECT ON hidden.secrets TO {{anon}};`,
    expect: { RLS001: 0 },
  },

  // The setting and call rules on the Supabase idioms.
  {
    name: "RLS020 fires on current_setting('request.jwt.claims') without missing_ok; near miss with it",
    sql:
      table(
        'notes',
        `CREATE POLICY notes_org ON app.notes FOR ALL TO {{authenticated}} USING (org_id = (SELECT (nullif(current_setting('request.jwt.claims'), '')::jsonb ->> 'org_id')::uuid));`,
      ) +
      table(
        'tasks',
        `CREATE POLICY tasks_org ON app.tasks FOR ALL TO {{authenticated}} USING (org_id = (SELECT (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'org_id')::uuid));`,
      ),
    expect: { RLS020: 1 },
  },
  {
    name: "RLS021 fires on current_setting('request.jwt.claims', true)::jsonb (''::jsonb raises); near miss with NULLIF",
    sql:
      table(
        'notes',
        `CREATE POLICY notes_org ON app.notes FOR ALL TO {{authenticated}} USING (org_id = (SELECT (current_setting('request.jwt.claims', true)::jsonb ->> 'org_id')::uuid));`,
      ) +
      table(
        'tasks',
        `CREATE POLICY tasks_org ON app.tasks FOR ALL TO {{authenticated}} USING (org_id = (SELECT (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'org_id')::uuid));`,
      ),
    expect: { RLS021: 1 },
  },
  {
    name: 'RLS041 fires on auth.uid() called per row; near misses: (SELECT auth.uid()), IN (SELECT helper())',
    sql:
      MEMBERS +
      table(
        'notes',
        `CREATE POLICY notes_own ON app.notes FOR ALL TO {{authenticated}} USING (owner_id = auth.uid());`,
        'org_id uuid NOT NULL, id uuid PRIMARY KEY DEFAULT gen_random_uuid(), owner_id uuid',
      ) +
      table(
        'tasks',
        `CREATE POLICY tasks_own ON app.tasks FOR ALL TO {{authenticated}} USING (owner_id = (SELECT auth.uid()));
         CREATE POLICY tasks_org ON app.tasks AS RESTRICTIVE FOR ALL TO {{authenticated}} USING (org_id IN (SELECT private.user_org_ids()));`,
        'org_id uuid NOT NULL, id uuid PRIMARY KEY DEFAULT gen_random_uuid(), owner_id uuid',
      ),
    expect: { RLS041: 1 },
  },
  {
    name: "RLS042 fires on org_id::text compared with a claim; near miss: the claim cast to the column's type",
    sql:
      table(
        'notes',
        `CREATE POLICY notes_org ON app.notes FOR ALL TO {{authenticated}} USING (org_id::text = ((SELECT auth.jwt()) -> 'app_metadata' ->> 'org_id'));`,
      ) +
      table(
        'tasks',
        `CREATE POLICY tasks_org ON app.tasks FOR ALL TO {{authenticated}} USING (org_id = ((SELECT auth.jwt()) -> 'app_metadata' ->> 'org_id')::uuid);`,
      ),
    expect: { RLS042: 1 },
  },
  {
    name: 'RLS040 and RLS062 fire on a nullable tenant column no index leads with; near miss: the key leads with it',
    sql: table('notes', ``, 'org_id uuid, id uuid PRIMARY KEY DEFAULT gen_random_uuid()') + table('tasks', ``),
    expect: { RLS040: 1, RLS062: 1 },
  },
  {
    name: 'RLS002, RLS003 and RLS004: not forced, no policy, policies with RLS off; near miss: the corpus table',
    sql:
      table(
        'notes',
        `CREATE POLICY notes_org ON app.notes FOR ALL TO {{authenticated}} USING (org_id = ((SELECT auth.jwt()) -> 'app_metadata' ->> 'org_id')::uuid);`,
      ) +
      `ALTER TABLE app.notes NO FORCE ROW LEVEL SECURITY;` +
      table('tasks', ``) +
      table(
        'files',
        `CREATE POLICY files_org ON app.files FOR ALL TO {{authenticated}} USING (org_id = ((SELECT auth.jwt()) -> 'app_metadata' ->> 'org_id')::uuid);`,
      ) +
      `ALTER TABLE app.files DISABLE ROW LEVEL SECURITY;` +
      table(
        'clean',
        `CREATE POLICY clean_org ON app.clean FOR ALL TO {{authenticated}} USING (org_id = ((SELECT auth.jwt()) -> 'app_metadata' ->> 'org_id')::uuid);`,
      ),
    expect: { RLS002: 1, RLS003: 1, RLS004: 1 },
  },
  {
    name: 'RLS031 fires on two permissive SELECT policies for the same role; RLS064 on a grant to PUBLIC',
    sql: table(
      'notes',
      `CREATE POLICY notes_a ON app.notes FOR SELECT TO {{authenticated}} USING (org_id = ((SELECT auth.jwt()) -> 'app_metadata' ->> 'org_id')::uuid);
         CREATE POLICY notes_b ON app.notes FOR SELECT TO {{authenticated}} USING (name = 'x' AND org_id = ((SELECT auth.jwt()) -> 'app_metadata' ->> 'org_id')::uuid);
         GRANT SELECT ON app.notes TO PUBLIC;`,
    ),
    expect: { RLS031: 1, RLS064: 1 },
  },

  // Supabase idioms that are right: no error of any policy rule.
  {
    name: 'the Supabase idioms give no error: (select auth.uid()), membership IN / EXISTS, the SECURITY DEFINER helper',
    sql:
      MEMBERS +
      table(
        'notes',
        `CREATE POLICY notes_members ON app.notes FOR ALL TO {{authenticated}} USING (org_id IN (SELECT private.user_org_ids())) WITH CHECK (org_id IN (SELECT private.user_org_ids()));`,
      ) +
      table(
        'tasks',
        `CREATE POLICY tasks_members ON app.tasks FOR ALL TO {{authenticated}}
           USING (EXISTS (SELECT 1 FROM private.members m WHERE m.org_id = tasks.org_id AND m.user_id = (SELECT auth.uid())))
           WITH CHECK (EXISTS (SELECT 1 FROM private.members m WHERE m.org_id = tasks.org_id AND m.user_id = (SELECT auth.uid())));`,
      ),
    expect: { RLS020: 0, RLS021: 0, RLS022: 0, RLS024: 0, RLS030: 0, RLS032: 0, RLS034: 0, RLS035: 0, RLS041: 0 },
  },
];
