/**
 * Users and auth: the kit's `AuthService` (register, token, refresh, logout,
 * JWKS) on the module's own store. The signing key is kept in the same store,
 * so tokens survive a restart of the monolith.
 *
 * Routes (`/api/users`): `POST /register`, `POST /token`, `POST /refresh`,
 * `POST /logout`, `GET /.well-known/jwks.json`. (`authRoutes`' own `prefix`
 * option is also Fastify's register prefix, so it is left empty and the
 * module's mount point is the prefix.)
 */
import { authMigrations, authRoutes, createAuthService, SigningKeyRing, UsernameTakenError, type AuthService, type AuthTables } from '@bulwark/http/auth';
import type { Migration } from '@bulwark/store';
import { openModuleStore } from '../../platform.js';
import type { ModuleContext, ShopModule } from '../module.js';

interface KeyTables {
  users_signing_keys: { kid: string; private_jwk: string; created_at: number };
}
type UsersDb = AuthTables & KeyTables;

const migrations: Migration[] = [
  {
    id: '20261201T1200_users_signing_keys',
    up: (db) =>
      db.schema
        .createTable('users_signing_keys')
        .addColumn('kid', 'text', (c) => c.primaryKey())
        .addColumn('private_jwk', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute(),
  },
];

/** Scopes every shop customer gets. */
export const CUSTOMER_SCOPES = ['orders:read', 'orders:write'];

export interface UsersModule extends ShopModule {
  readonly auth: AuthService;
  /** Registers `username` unless it exists. */
  ensureUser(username: string, password: string): Promise<void>;
}

export async function createUsersModule(ctx: ModuleContext): Promise<UsersModule> {
  const { config } = ctx;
  const store = await openModuleStore<UsersDb>(config, 'users', { users: migrations, auth: authMigrations });
  const retainMs = Math.max(3_600_000, config.auth.accessTokenTtlSec * 1_000);
  const saved = await store.db.selectFrom('users_signing_keys').select(['private_jwk']).orderBy('created_at').execute();
  let keys: SigningKeyRing;
  if (saved.length > 0) {
    keys = await SigningKeyRing.fromPrivateJwks(
      saved.map((r) => JSON.parse(r.private_jwk) as Parameters<typeof SigningKeyRing.fromPrivateJwks>[0][number]),
      { alg: 'EdDSA', retainMs },
    );
  } else {
    keys = await SigningKeyRing.generate({ alg: 'EdDSA', retainMs });
    const jwk = await keys.exportActivePrivateJwk();
    await store.db
      .insertInto('users_signing_keys')
      .values({ kid: String(jwk.kid), private_jwk: JSON.stringify(jwk), created_at: Date.now() })
      .onConflict((oc) => oc.doNothing())
      .execute();
  }
  const auth = createAuthService({
    store,
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    keys,
    accessTokenTtlSec: config.auth.accessTokenTtlSec,
    defaultScopes: CUSTOMER_SCOPES,
  });

  return {
    name: 'users',
    auth,
    async ensureUser(username, password) {
      try {
        await auth.register(username, password);
      } catch (error) {
        if (!(error instanceof UsernameTakenError)) throw error;
      }
    },
    async routes(app) {
      await app.register(authRoutes, { service: auth, prefix: '' });
    },
    ready: () => store.db.selectFrom('users_signing_keys').select('kid').limit(1).execute(),
    close: () => store.close(),
  };
}
