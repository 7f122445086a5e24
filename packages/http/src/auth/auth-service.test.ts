/**
 * The auth module end to end on real SQLite and PostgreSQL: routes through
 * Fastify, tokens verified by `JwtVerifier` against the module's own JWKS
 * endpoint served on a real socket.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify';
import { decodeProtectedHeader } from 'jose';
import { openStore, type Store } from '@bulwark/store';
import { testDatabase, type TestDatabase } from '@bulwark/store/testing';
import { VirtualClock } from '@bulwark/resilience/testing';
import { authMigrations, type AuthTables } from './schema.js';
import { createAuthService, type AuthService, type TokenSet } from './auth-service.js';
import { authRoutes } from './auth-routes.js';
import { SigningKeyRing } from './signing-keys.js';
import { JwtVerifier } from './jwt-verifier.js';
import { bearerAuth } from './bearer-auth.js';
import { PasswordHasher } from './password.js';
import { AuthConfigError, InvalidRefreshTokenError } from './errors.js';
import { problemErrorHandler } from './testing.js';

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`auth module on ${engine}`, () => {
    let db: TestDatabase;
    let store: Store<AuthTables>;
    let clock: VirtualClock;
    let keys: SigningKeyRing;
    let service: AuthService;
    let hasher: PasswordHasher;
    let app: FastifyInstance;
    let api: FastifyInstance;
    let verifier: JwtVerifier;

    before(async () => {
      db = await testDatabase(engine, 'auth');
      store = await openStore<AuthTables>({ module: db.module, url: db.url, migrations: { auth: authMigrations } });
      clock = new VirtualClock(Date.now());
      keys = await SigningKeyRing.generate({ alg: engine === 'sqlite' ? 'EdDSA' : 'ES256', retainMs: 600_000, clock });
      hasher = new PasswordHasher({ params: { logN: 10 } });
      // The auth service listens on a real socket; another service (`api`) verifies its tokens through the JWKS it serves.
      app = Fastify();
      app.setErrorHandler(problemErrorHandler);
      service = createAuthService({ store, issuer: 'https://auth.test', audience: 'shop', keys, passwords: hasher, accessTokenTtlSec: 300, refreshTokenTtlSec: 3_600, defaultScopes: ['orders:read'], clock });
      await app.register(authRoutes, { service });
      await app.listen({ port: 0, host: '127.0.0.1' });
      const jwksUri = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/.well-known/jwks.json`;
      verifier = new JwtVerifier({ issuers: [{ issuer: 'https://auth.test', audience: 'shop', jwksUri, typ: 'at+jwt', jwksCooldownMs: 1_000 }], clock });
      api = Fastify();
      api.setErrorHandler(problemErrorHandler);
      await api.register(bearerAuth, { verifier });
      api.get('/me', (request) => ({ sub: request.user?.sub, scopes: request.user?.scopes }));
      await api.ready();
    });

    after(async () => {
      await api.close();
      await app.close();
      await store.close();
      await db.cleanup();
    });

    const post = (url: string, payload?: unknown) => app.inject({ method: 'POST', url, payload: payload as object });
    const me = (token: string) => api.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${token}` } });

    function assertProblem(res: LightMyRequestResponse, status: number, slug: string, reason?: string): Record<string, unknown> {
      assert.equal(res.statusCode, status, res.body);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      const body = res.json<Record<string, unknown>>();
      assert.equal(body.type, `https://bulwark.dev/problems/${slug}`);
      if (reason !== undefined) assert.equal(body.reason, reason);
      return body;
    }

    async function signIn(username: string, password = 'password-123'): Promise<TokenSet> {
      const res = await post('/auth/token', { username, password });
      assert.equal(res.statusCode, 200, res.body);
      return res.json<TokenSet>();
    }

    it('register, log in, and call a protected route with the access token (verified via the JWKS endpoint)', async () => {
      const reg = await post('/auth/register', { username: 'Ada.Lovelace', password: 'password-123' });
      assert.equal(reg.statusCode, 201, reg.body);
      const user = reg.json<{ id: string; username: string; scopes: string[] }>();
      assert.equal(user.username, 'ada.lovelace');
      assert.deepEqual(user.scopes, ['orders:read']);
      const res = await post('/auth/token', { username: 'ada.lovelace', password: 'password-123' });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.headers['cache-control'], 'no-store');
      const tokens = res.json<TokenSet>();
      assert.equal(tokens.token_type, 'Bearer');
      assert.equal(tokens.expires_in, 300);
      assert.equal(decodeProtectedHeader(tokens.access_token).typ, 'at+jwt');
      assert.equal(decodeProtectedHeader(tokens.access_token).alg, engine === 'sqlite' ? 'EdDSA' : 'ES256');
      const call = await me(tokens.access_token);
      assert.equal(call.statusCode, 200, call.body);
      assert.deepEqual(call.json(), { sub: user.id, scopes: ['orders:read'] });
      const jwks = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
      assert.equal(jwks.statusCode, 200);
      const set = jwks.json<{ keys: Record<string, unknown>[] }>();
      assert.equal(set.keys.length, 1);
      for (const key of set.keys) assert.equal(key.d, undefined, 'no private parts in the JWKS');
    });

    it('a duplicate username (any case) is 409; malformed bodies are 400 problems', async () => {
      await post('/auth/register', { username: 'grace', password: 'password-123' });
      assertProblem(await post('/auth/register', { username: 'GRACE', password: 'password-456' }), 409, 'username-taken');
      assertProblem(await post('/auth/register', { username: 'grace2', password: 'short' }), 400, 'invalid-request');
      assertProblem(await post('/auth/register', { username: 'no spaces allowed', password: 'password-123' }), 400, 'invalid-request');
      assert.equal(assertProblem(await post('/auth/register', { password: 'password-123' }), 400, 'invalid-request').field, 'username');
      assertProblem(await post('/auth/token', { username: 'grace', password: { $gt: '' } }), 400, 'invalid-request');
      assertProblem(await post('/auth/token', [1, 2]), 400, 'invalid-request');
      assertProblem(await post('/auth/refresh', { refresh_token: 'rt_short' }), 401, 'invalid-refresh-token', 'malformed');
      assertProblem(await post('/auth/refresh', {}), 400, 'invalid-request');
      const broken = await app.inject({ method: 'POST', url: '/auth/token', headers: { 'content-type': 'application/json' }, payload: '{"username":' });
      assert.equal(broken.statusCode, 400);
      assert.match(String(broken.headers['content-type']), /^application\/problem\+json/);
      const count = await store.db.selectFrom('auth_users').select((eb) => eb.fn.countAll().as('n')).where('username', 'like', 'grace%').executeTakeFirstOrThrow();
      assert.equal(Number(count.n), 1, 'nothing was written by the refused requests');
    });

    it('wrong password and unknown user get the same response after the same scrypt work', async () => {
      await post('/auth/register', { username: 'alan', password: 'password-123' });
      const calls: string[] = [];
      const verify = hasher.verify.bind(hasher);
      const dummy = hasher.verifyAgainstDummy.bind(hasher);
      hasher.verify = (p, s) => (calls.push('verify'), verify(p, s));
      hasher.verifyAgainstDummy = (p) => (calls.push('dummy'), dummy(p));
      try {
        const wrong = await post('/auth/token', { username: 'alan', password: 'password-124' });
        const unknown = await post('/auth/token', { username: 'nobody-here', password: 'password-123' });
        assertProblem(wrong, 401, 'invalid-credentials');
        assert.equal(wrong.body, unknown.body);
        assert.equal(wrong.statusCode, unknown.statusCode);
        assert.deepEqual(calls, ['verify', 'dummy'], 'one scrypt derivation on each path');
      } finally {
        hasher.verify = verify;
        hasher.verifyAgainstDummy = dummy;
      }
    });

    it('refresh rotates; the used token presented again revokes the whole family', async () => {
      await post('/auth/register', { username: 'barbara', password: 'password-123' });
      const first = await signIn('barbara');
      const r1 = await post('/auth/refresh', { refresh_token: first.refresh_token });
      assert.equal(r1.statusCode, 200, r1.body);
      const second = r1.json<TokenSet>();
      assert.notEqual(second.refresh_token, first.refresh_token);
      assert.equal((await me(second.access_token)).statusCode, 200);
      // Replay of the used token: reuse detected, family revoked.
      assertProblem(await post('/auth/refresh', { refresh_token: first.refresh_token }), 401, 'invalid-refresh-token', 'reused');
      assertProblem(await post('/auth/refresh', { refresh_token: second.refresh_token }), 401, 'invalid-refresh-token', 'revoked');
      // Other sign-ins of the same user are other families and unaffected.
      const other = await signIn('barbara');
      assert.equal((await post('/auth/refresh', { refresh_token: other.refresh_token })).statusCode, 200);
    });

    it('concurrent refreshes with one token: exactly one wins, the family is then revoked', async () => {
      await post('/auth/register', { username: 'edsger', password: 'password-123' });
      const tokens = await signIn('edsger');
      const results = await Promise.allSettled(Array.from({ length: 2 }, () => service.refresh(tokens.refresh_token)));
      const won = results.filter((r): r is PromiseFulfilledResult<TokenSet> => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      assert.equal(won.length, 1, 'exactly one refresh wins');
      assert.equal(lost.length, 1);
      assert.ok(lost[0]!.reason instanceof InvalidRefreshTokenError);
      assert.equal((lost[0]!.reason).reason, 'reused');
      await assert.rejects(service.refresh(won[0]!.value.refresh_token), (e: unknown) => e instanceof InvalidRefreshTokenError && e.reason === 'revoked');
      const rows = await store.db.selectFrom('auth_refresh_tokens').innerJoin('auth_token_families', 'auth_token_families.id', 'auth_refresh_tokens.family_id').select(['used_at', 'revoked_reason']).where('auth_refresh_tokens.token_hash', '=', sha256(tokens.refresh_token)).executeTakeFirstOrThrow();
      assert.notEqual(rows.used_at, null);
      assert.equal(rows.revoked_reason, 'reuse');
    });

    it('many concurrent refreshes with one token: still exactly one wins', async () => {
      await post('/auth/register', { username: 'tony', password: 'password-123' });
      const tokens = await signIn('tony');
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => post('/auth/refresh', { refresh_token: tokens.refresh_token })));
      const statuses = results.map((r) => (r.status === 'fulfilled' ? r.value.statusCode : 0));
      assert.equal(statuses.filter((s) => s === 200).length, 1, String(statuses));
      assert.equal(statuses.filter((s) => s === 401).length, 7, String(statuses));
    });

    it('logout revokes the family; logging out again (or an unknown token) is still 204', async () => {
      await post('/auth/register', { username: 'niklaus', password: 'password-123' });
      const tokens = await signIn('niklaus');
      const rotated = (await post('/auth/refresh', { refresh_token: tokens.refresh_token })).json<TokenSet>();
      assert.equal((await post('/auth/logout', { refresh_token: rotated.refresh_token })).statusCode, 204);
      assertProblem(await post('/auth/refresh', { refresh_token: rotated.refresh_token }), 401, 'invalid-refresh-token', 'revoked');
      assert.equal((await post('/auth/logout', { refresh_token: rotated.refresh_token })).statusCode, 204);
      assert.equal((await post('/auth/logout', { refresh_token: 'rt_' + 'A'.repeat(43) })).statusCode, 204);
      assertProblem(await post('/auth/refresh', { refresh_token: 'rt_' + 'A'.repeat(43) }), 401, 'invalid-refresh-token', 'unknown');
    });

    it('refresh tokens are stored only as their SHA-256, and expire', async () => {
      await post('/auth/register', { username: 'barbara.l', password: 'password-123' });
      const tokens = await signIn('barbara.l');
      const rows = await store.db.selectFrom('auth_refresh_tokens').selectAll().execute();
      assert.ok(rows.length > 0);
      assert.ok(rows.every((r) => /^[0-9a-f]{64}$/.test(r.token_hash) && r.token_hash !== tokens.refresh_token));
      assert.ok(rows.some((r) => r.token_hash === sha256(tokens.refresh_token)));
      const users = await store.db.selectFrom('auth_users').select('password_hash').execute();
      assert.ok(users.every((u) => u.password_hash.startsWith('scrypt$') && !u.password_hash.includes('password-123')));
      await clock.advance(3_600_001);
      assertProblem(await post('/auth/refresh', { refresh_token: tokens.refresh_token }), 401, 'invalid-refresh-token', 'expired');
      assert.ok((await service.purgeExpired(0)) >= 1);
      assertProblem(await post('/auth/refresh', { refresh_token: tokens.refresh_token }), 401, 'invalid-refresh-token', 'unknown');
    });

    it('signing-key rotation: new tokens use the new kid, old tokens keep verifying until the old key is retired', async () => {
      await post('/auth/register', { username: 'donald', password: 'password-123' });
      const before = await signIn('donald');
      const oldKid = decodeProtectedHeader(before.access_token).kid;
      const newKid = await keys.rotate();
      await clock.advance(1_000); // past the verifier's JWKS cooldown
      const after = await signIn('donald');
      assert.equal(decodeProtectedHeader(after.access_token).kid, newKid);
      assert.notEqual(newKid, oldKid);
      assert.equal((await me(after.access_token)).statusCode, 200, 'new kid fetched after rotation');
      assert.equal((await me(before.access_token)).statusCode, 200, 'old kid still published');
      const kids = () => service.jwks().keys.map((k) => k.kid);
      assert.deepEqual(kids(), [oldKid, newKid]);
      await clock.advance(600_000);
      assert.deepEqual(kids(), [newKid], 'retired after retainMs');
      assert.ok(verifier.jwksStats()['https://auth.test']!.fetches >= 2);
    });

    it('refuses an unusable configuration', () => {
      assert.throws(() => createAuthService({ store, issuer: '', audience: 'a', keys }), AuthConfigError);
      assert.throws(() => createAuthService({ store, issuer: 'i', audience: 'a', keys, accessTokenTtlSec: 86_400 }), AuthConfigError);
      assert.throws(() => createAuthService({ store, issuer: 'i', audience: 'a', keys, accessTokenTtlSec: 900, refreshTokenTtlSec: 60 }), AuthConfigError);
    });
  });
}

function sha256(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}
