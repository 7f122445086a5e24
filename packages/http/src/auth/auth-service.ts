/**
 * The auth module: users with scrypt-hashed passwords, short-lived signed
 * access tokens (JWT, EdDSA or ES256, from a rotating `SigningKeyRing`) and
 * opaque rotating refresh tokens in token families, all in the service's own
 * database (`authMigrations`, SQLite or PostgreSQL).
 *
 * Refresh-token rotation with reuse detection (OAuth 2.0 Security BCP §4.14):
 * every refresh marks the presented token used and issues a new one in the
 * same family. A used token presented again means two parties hold it — the
 * client and a thief — so the whole family is revoked and both must sign in
 * again. The check and the rotation happen in one transaction with the token
 * row locked, so of two concurrent refreshes with the same token exactly one
 * gets new tokens; the other is a reuse and revokes the family (a client that
 * races itself signs in again: the safe side of the trade-off).
 *
 * Access tokens are not revocable before they expire (that is what keeps them
 * verifiable without a database); keep `accessTokenTtlSec` short.
 *
 * @example
 * ```ts
 * const store = await openStore<OwnTables & AuthTables>({ module: 'users', url, migrations: { users: own, auth: authMigrations } });
 * const auth = createAuthService({ store, issuer: 'https://auth.shop.local', audience: 'shop', keys: await SigningKeyRing.generate() });
 * const tokens = await auth.login('ada', 'correct horse battery staple');
 * ```
 */
import { randomUUID } from 'node:crypto';
import { SignJWT, type JSONWebKeySet } from 'jose';
import type { Store } from '@bulwark/store';
import { systemWallClock, type WallClock } from './clock.js';
import { AuthConfigError, InvalidAuthRequestError, InvalidCredentialsError, InvalidRefreshTokenError, UsernameTakenError, type RefreshFailureReason } from './errors.js';
import { PasswordHasher, type PasswordHasherOptions } from './password.js';
import { hashRefreshToken, isRefreshTokenShape, newRefreshToken } from './refresh-token.js';
import type { AuthTables } from './schema.js';
import type { SigningKeyRing } from './signing-keys.js';

export interface AuthServiceOptions<DB extends AuthTables> {
  /** The service's store, opened with `authMigrations` in its migration sets. */
  store: Store<DB>;
  /** `iss` of the access tokens. */
  issuer: string;
  /** `aud` of the access tokens. */
  audience: string | string[];
  keys: SigningKeyRing;
  /** Access-token lifetime. Default 300 s; at most 3 600 s. */
  accessTokenTtlSec?: number;
  /** Refresh-token lifetime (each rotation starts a new one). Default 30 days. */
  refreshTokenTtlSec?: number;
  /** A hasher, or options for one. */
  passwords?: PasswordHasher | PasswordHasherOptions;
  /** Roles and scopes a newly registered user gets. Default none: clients never choose their own. */
  defaultRoles?: readonly string[];
  defaultScopes?: readonly string[];
  clock?: WallClock;
}

/** What a successful login or refresh returns (RFC 6749 §5.1 field names). */
export interface TokenSet {
  access_token: string;
  token_type: 'Bearer';
  /** Seconds until the access token expires. */
  expires_in: number;
  refresh_token: string;
  /** Seconds until the refresh token expires. */
  refresh_expires_in: number;
  scope: string;
}

/** A registered user, without secrets. */
export interface RegisteredUser {
  id: string;
  username: string;
  roles: string[];
  scopes: string[];
}

const USERNAME = /^[\p{L}\p{N}._@+-]{3,64}$/u;
const MIN_PASSWORD = 8;
const MAX_PASSWORD = 256;

type UserRow = AuthTables['auth_users'];

export class AuthService {
  readonly issuer: string;
  readonly audience: string | string[];
  readonly accessTokenTtlSec: number;
  readonly refreshTokenTtlSec: number;
  readonly passwords: PasswordHasher;
  private readonly store: Store<AuthTables>;
  private readonly keys: SigningKeyRing;
  private readonly defaultRoles: string[];
  private readonly defaultScopes: string[];
  private readonly clock: WallClock;

  constructor(options: AuthServiceOptions<AuthTables>) {
    if (options.store === undefined) throw new AuthConfigError('store', 'a Store opened with authMigrations');
    if (typeof options.issuer !== 'string' || options.issuer === '') throw new AuthConfigError('issuer', 'a non-empty string');
    if (options.keys === undefined || typeof options.keys.current !== 'function') throw new AuthConfigError('keys', 'a SigningKeyRing');
    this.store = options.store;
    this.issuer = options.issuer;
    this.audience = options.audience;
    this.keys = options.keys;
    this.accessTokenTtlSec = options.accessTokenTtlSec ?? 300;
    if (!Number.isInteger(this.accessTokenTtlSec) || this.accessTokenTtlSec < 1 || this.accessTokenTtlSec > 3_600) throw new AuthConfigError('accessTokenTtlSec', 'an integer between 1 and 3600');
    this.refreshTokenTtlSec = options.refreshTokenTtlSec ?? 30 * 86_400;
    if (!Number.isInteger(this.refreshTokenTtlSec) || this.refreshTokenTtlSec < this.accessTokenTtlSec) throw new AuthConfigError('refreshTokenTtlSec', 'an integer >= accessTokenTtlSec');
    if (this.keys.retainMs < this.accessTokenTtlSec * 1000) throw new AuthConfigError('keys.retainMs', 'at least the access-token lifetime, so rotated keys outlive the tokens they signed');
    this.passwords = options.passwords instanceof PasswordHasher ? options.passwords : new PasswordHasher(options.passwords);
    this.defaultRoles = [...(options.defaultRoles ?? [])];
    this.defaultScopes = [...(options.defaultScopes ?? [])];
    this.clock = options.clock ?? systemWallClock;
  }

  /** Registers a user. Throws `UsernameTakenError` (409) or `InvalidAuthRequestError` (400). */
  async register(username: unknown, password: unknown): Promise<RegisteredUser> {
    const name = normalizeUsername(username);
    const secret = checkPassword(password);
    const hash = await this.passwords.hash(secret);
    const user: UserRow = {
      id: randomUUID(),
      username: name,
      password_hash: hash,
      roles: JSON.stringify(this.defaultRoles),
      scopes: JSON.stringify(this.defaultScopes),
      created_at: this.clock.now(),
    };
    try {
      await this.store.db.insertInto('auth_users').values(user).execute();
    } catch (error) {
      if (isUniqueViolation(error)) throw new UsernameTakenError();
      throw error;
    }
    return { id: user.id, username: name, roles: [...this.defaultRoles], scopes: [...this.defaultScopes] };
  }

  /**
   * Password login: a new token family. An unknown user and a wrong password
   * both throw `InvalidCredentialsError` after the same scrypt work.
   */
  async login(username: unknown, password: unknown): Promise<TokenSet> {
    const name = normalizeUsername(username);
    const secret = checkPassword(password);
    const user = await this.store.db.selectFrom('auth_users').selectAll().where('username', '=', name).executeTakeFirst();
    if (user === undefined) {
      await this.passwords.verifyAgainstDummy(secret);
      throw new InvalidCredentialsError();
    }
    if (!(await this.passwords.verify(secret, user.password_hash))) throw new InvalidCredentialsError();
    if (this.passwords.needsRehash(user.password_hash)) {
      const rehashed = await this.passwords.hash(secret);
      await this.store.db.updateTable('auth_users').set({ password_hash: rehashed }).where('id', '=', user.id).execute();
    }
    const now = this.clock.now();
    const familyId = randomUUID();
    const refreshToken = newRefreshToken();
    await this.store.transaction(async (tx) => {
      await tx.db.insertInto('auth_token_families').values({ id: familyId, user_id: user.id, created_at: now, revoked_at: null, revoked_reason: null }).execute();
      await tx.db.insertInto('auth_refresh_tokens').values(this.refreshRow(refreshToken, familyId, now)).execute();
    });
    return this.tokenSet(user, familyId, refreshToken, now);
  }

  /**
   * Rotates a refresh token: the presented one is marked used and a new one
   * issued in its family. Throws `InvalidRefreshTokenError` with reason
   * `malformed`, `unknown`, `expired`, `revoked`, or `reused` (the family is
   * revoked as a result).
   */
  async refresh(refreshToken: unknown): Promise<TokenSet> {
    if (!isRefreshTokenShape(refreshToken)) throw new InvalidRefreshTokenError('malformed');
    const hash = hashRefreshToken(refreshToken);
    const next = newRefreshToken();
    const now = this.clock.now();
    const outcome = await this.store.transaction(async (tx): Promise<{ failed: RefreshFailureReason } | { user: UserRow; familyId: string }> => {
      const row = await tx.forUpdate(tx.db.selectFrom('auth_refresh_tokens').selectAll().where('token_hash', '=', hash)).executeTakeFirst();
      if (row === undefined) return { failed: 'unknown' };
      const family = await tx.forUpdate(tx.db.selectFrom('auth_token_families').selectAll().where('id', '=', row.family_id)).executeTakeFirstOrThrow();
      if (family.revoked_at !== null) return { failed: 'revoked' };
      const revoke = async (): Promise<{ failed: 'reused' }> => {
        await tx.db.updateTable('auth_token_families').set({ revoked_at: now, revoked_reason: 'reuse' }).where('id', '=', family.id).execute();
        return { failed: 'reused' };
      };
      if (row.used_at !== null) return revoke();
      if (Number(row.expires_at) <= now) return { failed: 'expired' };
      const marked = await tx.db.updateTable('auth_refresh_tokens').set({ used_at: now }).where('token_hash', '=', hash).where('used_at', 'is', null).executeTakeFirst();
      if (Number(marked.numUpdatedRows) !== 1) return revoke(); // someone used it between our read and write
      await tx.db.insertInto('auth_refresh_tokens').values(this.refreshRow(next, family.id, now)).execute();
      const user = await tx.db.selectFrom('auth_users').selectAll().where('id', '=', family.user_id).executeTakeFirstOrThrow();
      return { user, familyId: family.id };
    });
    if ('failed' in outcome) throw new InvalidRefreshTokenError(outcome.failed);
    return this.tokenSet(outcome.user, outcome.familyId, next, now);
  }

  /** Revokes the family of `refreshToken` (every refresh token of that sign-in). Unknown tokens are ignored. */
  async logout(refreshToken: unknown): Promise<void> {
    if (!isRefreshTokenShape(refreshToken)) throw new InvalidRefreshTokenError('malformed');
    const hash = hashRefreshToken(refreshToken);
    const row = await this.store.db.selectFrom('auth_refresh_tokens').select('family_id').where('token_hash', '=', hash).executeTakeFirst();
    if (row === undefined) return;
    await this.store.db.updateTable('auth_token_families').set({ revoked_at: this.clock.now(), revoked_reason: 'logout' }).where('id', '=', row.family_id).where('revoked_at', 'is', null).execute();
  }

  /** Revokes every family of a user (password change, account lock). Returns how many were live. */
  async revokeAllForUser(userId: string): Promise<number> {
    const result = await this.store.db.updateTable('auth_token_families').set({ revoked_at: this.clock.now(), revoked_reason: 'revoke-all' }).where('user_id', '=', userId).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** Deletes refresh tokens expired for longer than `graceMs` (default a day). Returns how many. */
  async purgeExpired(graceMs = 86_400_000): Promise<number> {
    const result = await this.store.db.deleteFrom('auth_refresh_tokens').where('expires_at', '<', this.clock.now() - graceMs).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** The public keys to serve at `/.well-known/jwks.json`. */
  jwks(): JSONWebKeySet {
    return this.keys.jwks();
  }

  private refreshRow(token: string, familyId: string, now: number): AuthTables['auth_refresh_tokens'] {
    return { token_hash: hashRefreshToken(token), family_id: familyId, created_at: now, expires_at: now + this.refreshTokenTtlSec * 1000, used_at: null };
  }

  private async tokenSet(user: UserRow, familyId: string, refreshToken: string, nowMs: number): Promise<TokenSet> {
    const key = this.keys.current();
    const nowSec = Math.floor(nowMs / 1000);
    const scopes = parseList(user.scopes);
    const accessToken = await new SignJWT({ scope: scopes.join(' '), roles: parseList(user.roles), sid: familyId })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setSubject(user.id)
      .setIssuedAt(nowSec)
      .setExpirationTime(nowSec + this.accessTokenTtlSec)
      .setJti(randomUUID())
      .sign(key.privateKey);
    return {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: this.accessTokenTtlSec,
      refresh_token: refreshToken,
      refresh_expires_in: this.refreshTokenTtlSec,
      scope: scopes.join(' '),
    };
  }
}

/** Builds an `AuthService` over any store whose tables include the auth tables. */
export function createAuthService<DB extends AuthTables>(options: AuthServiceOptions<DB>): AuthService {
  return new AuthService(options as unknown as AuthServiceOptions<AuthTables>);
}

/** NFKC, trimmed, lower case; 3–64 letters, digits and `._@+-`. */
export function normalizeUsername(value: unknown): string {
  if (typeof value !== 'string') throw new InvalidAuthRequestError('username', 'username must be a string');
  const name = value.normalize('NFKC').trim().toLowerCase();
  if (!USERNAME.test(name)) throw new InvalidAuthRequestError('username', 'username must be 3 to 64 letters, digits or . _ @ + -');
  return name;
}

function checkPassword(value: unknown): string {
  if (typeof value !== 'string') throw new InvalidAuthRequestError('password', 'password must be a string');
  if (value.length < MIN_PASSWORD || value.length > MAX_PASSWORD) throw new InvalidAuthRequestError('password', `password must be ${MIN_PASSWORD} to ${MAX_PASSWORD} characters`);
  return value;
}

function parseList(json: string): string[] {
  try {
    const value: unknown = JSON.parse(json);
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
  } catch {
    return [];
  }
}

function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
