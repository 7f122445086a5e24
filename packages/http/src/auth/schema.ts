/**
 * The tables the auth module keeps in its service's own database, as a named
 * migration set: `openStore({ ..., migrations: { [module]: own, auth: authMigrations } })`.
 *
 * - `auth_users`: one row per user; `username` is stored normalised (NFKC,
 *   lower case) and unique; `password_hash` holds the scrypt string with its parameters.
 * - `auth_token_families`: one row per sign-in. Every refresh token issued
 *   from that sign-in belongs to the family; revoking it (logout, reuse
 *   detected) ends them all.
 * - `auth_refresh_tokens`: the SHA-256 of each refresh token (never the token
 *   itself), its family, expiry, and when it was used (rotated).
 */
import type { Migration } from '@bulwark/store';

export const authMigrations: readonly Migration[] = [
  {
    id: '20261201T1000_auth_users_and_tokens',
    up: async (db) => {
      await db.schema
        .createTable('auth_users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('username', 'text', (c) => c.notNull().unique())
        .addColumn('password_hash', 'text', (c) => c.notNull())
        .addColumn('roles', 'text', (c) => c.notNull())
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('auth_token_families')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('auth_users.id'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .addColumn('revoked_reason', 'text')
        .execute();
      await db.schema.createIndex('auth_token_families_user').on('auth_token_families').column('user_id').execute();
      await db.schema
        .createTable('auth_refresh_tokens')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('family_id', 'text', (c) => c.notNull().references('auth_token_families.id'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('used_at', 'bigint')
        .execute();
      await db.schema.createIndex('auth_refresh_tokens_family').on('auth_refresh_tokens').column('family_id').execute();
      await db.schema.createIndex('auth_refresh_tokens_expires').on('auth_refresh_tokens').column('expires_at').execute();
    },
  },
];

/** Row types of the auth tables, for Kysely. */
export interface AuthTables {
  auth_users: { id: string; username: string; password_hash: string; roles: string; scopes: string; created_at: number };
  auth_token_families: { id: string; user_id: string; created_at: number; revoked_at: number | null; revoked_reason: string | null };
  auth_refresh_tokens: { token_hash: string; family_id: string; created_at: number; expires_at: number; used_at: number | null };
}
