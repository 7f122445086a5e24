/**
 * The tables `@bulwark/http` keeps in a module's own database, as a
 * migration set of their own: include them with
 * `openStore({ ..., migrations: { [module]: own, http: httpMigrations } })`.
 *
 * - `http_idempotency`: one row per (caller, route, Idempotency-Key): the
 *   request's fingerprint, whether it is in progress (with the claim's token
 *   and lock expiry) or completed (with the response to replay), and when the
 *   record expires.
 */
import type { Migration } from '@bulwark/store';

export const httpMigrations: readonly Migration[] = [
  {
    id: '20261123T2000_idempotency',
    up: async (db) => {
      await db.schema
        .createTable('http_idempotency')
        .addColumn('scope', 'text', (c) => c.notNull())
        .addColumn('route', 'text', (c) => c.notNull())
        .addColumn('idem_key', 'text', (c) => c.notNull())
        .addColumn('fingerprint', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('claim', 'text', (c) => c.notNull())
        .addColumn('locked_until', 'bigint', (c) => c.notNull())
        .addColumn('status', 'integer')
        .addColumn('headers', 'text')
        .addColumn('body', 'text')
        .addColumn('body_encoding', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('http_idempotency_pk', ['scope', 'route', 'idem_key'])
        .execute();
      await db.schema.createIndex('http_idempotency_expires').on('http_idempotency').column('expires_at').execute();
    },
  },
];

/** Row types of the http tables, for Kysely. Times are epoch milliseconds. */
export interface HttpTables {
  http_idempotency: {
    scope: string;
    route: string;
    idem_key: string;
    fingerprint: string;
    state: 'in_progress' | 'completed';
    claim: string;
    locked_until: number;
    status: number | null;
    headers: string | null;
    body: string | null;
    body_encoding: 'utf8' | 'base64' | null;
    created_at: number;
    expires_at: number;
  };
}
