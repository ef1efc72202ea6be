import type pg from 'pg';
import { UsageError } from '../errors.js';

/**
 * rlsctl checks the SQL of the policy file and of query files with
 * PostgreSQL's parser as it reads text with standard_conforming_strings on
 * (libpg-query; the default since PostgreSQL 9.1). With it off, a backslash
 * in a string literal that passed the check escapes the closing quote, the
 * literal ends elsewhere, and the text can split into other statements.
 */

/**
 * Every session rlsctl opens itself reads literals with the setting on,
 * whatever the server, database or role default. A session-level SET, not a
 * startup option: PgBouncer refuses unknown startup options but tracks this
 * parameter per client.
 */
export async function pinStandardStrings(client: pg.ClientBase): Promise<void> {
  await client.query('SET standard_conforming_strings = on');
}

/** A session the caller opened (the programmatic API): used as is, so refused when the setting is off. */
export async function requireStandardStrings(client: pg.ClientBase): Promise<void> {
  const { rows } = await client.query<{ standard_conforming_strings: string }>('SHOW standard_conforming_strings');
  if (rows[0]?.standard_conforming_strings !== 'on') {
    throw new UsageError(
      'standard_conforming_strings is off on this connection: rlsctl checks SQL as PostgreSQL reads it with the setting on, and will not send it to a session that reads it otherwise',
      {
        hint: 'run SET standard_conforming_strings = on on the connection first (connections rlsctl opens itself set it on their own)',
      },
    );
  }
}
