/**
 * The JWT attack matrix, through Fastify `inject` against a real JWKS served
 * on loopback. Every refused request gets the right problem and never reaches
 * its handler.
 */
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify';
import { SignJWT, exportSPKI, generateKeyPair, base64url } from 'jose';
import { VirtualClock } from '@bulwark/resilience/testing';
import { bearerAuth, requireAuth } from './bearer-auth.js';
import { JwtVerifier } from './jwt-verifier.js';
import { TestIssuer, problemErrorHandler } from './testing.js';
import { AuthConfigError, InvalidTokenError, isAuthError } from './errors.js';

const AUDIENCE = 'orders-api';
const COOLDOWN_MS = 30_000;

describe('bearerAuth: the attack matrix', () => {
  let issuer: TestIssuer;
  let other: TestIssuer;
  let clock: VirtualClock;
  let app: FastifyInstance;
  let handled = 0;

  before(async () => {
    issuer = await TestIssuer.start();
    other = await TestIssuer.start();
    clock = new VirtualClock(Date.now());
    const verifier = new JwtVerifier({
      issuers: [{ issuer: issuer.issuer, audience: AUDIENCE, jwksUri: issuer.jwksUri, jwksCooldownMs: COOLDOWN_MS }],
      clockSkewSec: 30,
      clock,
    });
    app = Fastify();
    app.setErrorHandler(problemErrorHandler);
    await app.register(bearerAuth, { verifier });
    const ok = (request: { user: unknown }) => {
      handled++;
      return { user: request.user };
    };
    app.get('/me', ok);
    app.post('/orders', { config: { auth: { scopes: ['orders:write'] } } }, ok);
    app.get('/admin', { config: { auth: { roles: ['admin', 'support'] } } }, ok);
    app.get('/feed', { config: { auth: 'optional' } }, ok);
    app.get('/public', { config: { auth: false } }, ok);
    app.get('/computed', { config: { auth: 'optional' }, preHandler: requireAuth({ scopes: ['reports:read'] }) }, ok);
    await app.ready();
  });

  after(async () => {
    await app.close();
    await issuer.close();
    await other.close();
  });

  beforeEach(() => {
    handled = 0;
  });

  const now = () => clock.now();
  const sign = (claims: Record<string, unknown> = {}, options: Parameters<TestIssuer['sign']>[1] = {}) =>
    issuer.sign({ sub: 'user-1', aud: AUDIENCE, ...claims }, { nowMs: now(), ...options });
  const call = (url: string, authorization?: string, method: 'GET' | 'POST' = 'GET') =>
    app.inject({ method, url, headers: authorization === undefined ? {} : { authorization } });

  function assertProblem(res: LightMyRequestResponse, status: number, slug: string, reason?: string): void {
    assert.equal(res.statusCode, status, res.body);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    const body = res.json<Record<string, unknown>>();
    assert.equal(body.type, `https://bulwark.dev/problems/${slug}`);
    assert.equal(body.status, status);
    if (reason !== undefined) assert.equal(body.reason, reason);
    // Nothing but stable fields: no jose message, no claim values, no stack.
    for (const key of Object.keys(body)) assert.ok(['type', 'title', 'status', 'code', 'reason', 'requiredScopes'].includes(key), `unexpected problem member ${key}`);
    assert.equal(handled, 0, 'the handler must not run');
  }

  function assertInvalidToken(res: LightMyRequestResponse, reason: string): void {
    assertProblem(res, 401, 'invalid-token', reason);
    assert.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"');
  }

  it('accepts a valid token and exposes sub, scopes, roles and claims', async () => {
    const token = await sign({ scope: 'orders:write orders:read', roles: ['admin'], tenant: 't1' });
    const res = await call('/me', `Bearer ${token}`);
    assert.equal(res.statusCode, 200, res.body);
    const { user } = res.json<{ user: { sub: string; scopes: string[]; roles: string[]; claims: Record<string, unknown>; issuer: string } }>();
    assert.equal(user.sub, 'user-1');
    assert.deepEqual(user.scopes, ['orders:write', 'orders:read']);
    assert.deepEqual(user.roles, ['admin']);
    assert.equal(user.claims.tenant, 't1');
    assert.equal(user.issuer, issuer.issuer);
    assert.equal(handled, 1);
  });

  it('missing or non-Bearer credentials -> 401 unauthenticated with a bare Bearer challenge', async () => {
    for (const header of [undefined, '', 'Basic dXNlcjpwYXNz', 'Bearer', 'Bearer    ', 'bearer']) {
      const res = await call('/me', header);
      assertProblem(res, 401, 'unauthenticated');
      assert.equal(res.headers['www-authenticate'], 'Bearer');
    }
  });

  it('alg "none" is refused, with or without a signature part', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const payload = base64url.encode(JSON.stringify({ iss: issuer.issuer, sub: 'admin', aud: AUDIENCE, exp: Math.floor(now() / 1000) + 300 }));
    assertInvalidToken(await call('/me', `Bearer ${header}.${payload}.`), 'malformed');
    assertInvalidToken(await call('/me', `Bearer ${header}.${payload}.c2ln`), 'algorithm');
  });

  it('an HS256 token signed with the issuer public key as the HMAC secret is refused', async () => {
    const jwk = issuer.ring.jwks().keys[0]!;
    const claims = { iss: issuer.issuer, sub: 'admin', aud: AUDIENCE, roles: ['admin'] };
    for (const secret of [new TextEncoder().encode(JSON.stringify(jwk)), new TextEncoder().encode(jwk.x)]) {
      const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: jwk.kid! }).setIssuedAt(Math.floor(now() / 1000)).setExpirationTime(Math.floor(now() / 1000) + 300).sign(secret);
      assertInvalidToken(await call('/admin', `Bearer ${forged}`), 'algorithm');
    }
    // The same attack against an RSA issuer's PEM public key.
    const rsa = await generateKeyPair('RS256');
    const pem = await exportSPKI(rsa.publicKey);
    const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(Math.floor(now() / 1000) + 300).sign(new TextEncoder().encode(pem));
    assertInvalidToken(await call('/admin', `Bearer ${forged}`), 'algorithm');
  });

  it('an RS256 token is refused by an issuer that signs only EdDSA/ES256', async () => {
    const rsa = await generateKeyPair('RS256');
    const token = await new SignJWT({ iss: issuer.issuer, sub: 'u', aud: AUDIENCE }).setProtectedHeader({ alg: 'RS256', kid: issuer.ring.current().kid }).setExpirationTime(Math.floor(now() / 1000) + 300).sign(rsa.privateKey);
    assertInvalidToken(await call('/me', `Bearer ${token}`), 'algorithm');
  });

  it('expired beyond the skew -> 401 token-expired; within the skew -> accepted', async () => {
    const nowSec = Math.floor(now() / 1000);
    const expired = await sign({ iat: nowSec - 600, exp: nowSec - 31 });
    const res = await call('/me', `Bearer ${expired}`);
    assertProblem(res, 401, 'token-expired', 'expired');
    assert.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"');
    const justExpired = await sign({ iat: nowSec - 600, exp: nowSec - 10 });
    assert.equal((await call('/me', `Bearer ${justExpired}`)).statusCode, 200);
  });

  it('a token becomes expired as (virtual) time passes', async () => {
    const token = await sign({}, { expiresInSec: 60 });
    assert.equal((await call('/me', `Bearer ${token}`)).statusCode, 200);
    handled = 0;
    await clock.advance(60_000 + 31_000);
    assertProblem(await call('/me', `Bearer ${token}`), 401, 'token-expired', 'expired');
  });

  it('not yet valid (nbf) and issued in the future (iat) beyond the skew are refused', async () => {
    const nowSec = Math.floor(now() / 1000);
    assertInvalidToken(await call('/me', `Bearer ${await sign({ nbf: nowSec + 120 })}`), 'not-yet-valid');
    assertInvalidToken(await call('/me', `Bearer ${await sign({ iat: nowSec + 120, exp: nowSec + 600 })}`), 'issued-in-future');
    assert.equal((await call('/me', `Bearer ${await sign({ nbf: nowSec + 20 })}`)).statusCode, 200, 'nbf within the skew is fine');
  });

  it('a wrong issuer is refused, also when it claims our iss with its own key', async () => {
    const foreign = await other.sign({ sub: 'user-1', aud: AUDIENCE }, { nowMs: now() });
    assertInvalidToken(await call('/me', `Bearer ${foreign}`), 'issuer');
    // Another issuer's key, our iss, its own kid: no key of ours matches it.
    const forgedIss = await other.sign({ iss: issuer.issuer, sub: 'user-1', aud: AUDIENCE }, { nowMs: now() });
    assertInvalidToken(await call('/me', `Bearer ${forgedIss}`), 'unknown-key');
    // ... and with our kid copied in, the signature does not verify.
    const forgedKid = await other.sign({ iss: issuer.issuer, sub: 'user-1', aud: AUDIENCE }, { nowMs: now(), header: { kid: issuer.ring.current().kid } });
    assertInvalidToken(await call('/me', `Bearer ${forgedKid}`), 'signature');
  });

  it('a wrong audience is refused', async () => {
    assertInvalidToken(await call('/me', `Bearer ${await sign({ aud: 'payments-api' })}`), 'audience');
    assertInvalidToken(await call('/me', `Bearer ${await sign({ aud: undefined })}`), 'missing-claim');
  });

  it('required claims: no sub, no exp -> refused', async () => {
    assertInvalidToken(await call('/me', `Bearer ${await sign({ sub: undefined })}`), 'missing-claim');
    assertInvalidToken(await call('/me', `Bearer ${await sign({}, { expiresInSec: null })}`), 'missing-claim');
  });

  it('a tampered payload fails the signature', async () => {
    const token = await sign({ scope: 'orders:read' });
    const [h, , s] = token.split('.');
    const payload = base64url.encode(JSON.stringify({ iss: issuer.issuer, sub: 'user-1', aud: AUDIENCE, scope: 'orders:write', exp: Math.floor(now() / 1000) + 300 }));
    assertInvalidToken(await call('/orders', `Bearer ${h}.${payload}.${s}`, 'POST'), 'signature');
    // A flipped bit in the signature too.
    const sig = Buffer.from(s!, 'base64url');
    sig[0] = sig[0]! ^ 1;
    assertInvalidToken(await call('/me', `Bearer ${h}.${token.split('.')[1]}.${sig.toString('base64url')}`), 'signature');
  });

  it('malformed token strings are refused without reaching jose', async () => {
    const cases = ['abc', 'a.b', 'a.b.c', 'a.b.c.d', '..', '.x.', '%%%.%%%.%%%', 'eyJhbGciOiJFZERTQSJ9.bm90IGpzb24.c2ln', `${base64url.encode('[]')}.${base64url.encode('{}')}.c2ln`, 'é.é.é'];
    for (const token of cases) {
      const res = await call('/me', `Bearer ${token}`);
      assertInvalidToken(res, res.json<{ reason: string }>().reason);
      assert.ok(['malformed', 'issuer', 'algorithm'].includes(res.json<{ reason: string }>().reason), `${token}: ${res.body}`);
    }
    // Two tokens, or a token with junk after it, do not parse as one credential.
    assertProblem(await call('/me', `Bearer ${await sign()} extra`), 401, 'unauthenticated');
  });

  it('oversized tokens are refused before parsing', async () => {
    const huge = await sign({ padding: 'x'.repeat(10_000) });
    assertInvalidToken(await call('/me', `Bearer ${huge}`), 'too-large');
  });

  it('unknown kid: at most one JWKS refetch per cooldown; a rotated key is accepted after the refetch', async () => {
    await call('/me', `Bearer ${await sign()}`); // make sure keys are cached
    handled = 0;
    await clock.advance(COOLDOWN_MS);
    const before = issuer.jwksRequests;
    for (let i = 0; i < 5; i++) {
      assertInvalidToken(await call('/me', `Bearer ${await sign({}, { header: { kid: randomUUID() } })}`), 'unknown-key');
    }
    assert.equal(issuer.jwksRequests - before, 1, 'five unknown kids inside one cooldown cost one fetch');

    // The issuer rotates. Inside the cooldown the new kid is unknown and triggers no fetch...
    await issuer.ring.rotate();
    const rotated = await sign();
    assertInvalidToken(await call('/me', `Bearer ${rotated}`), 'unknown-key');
    assert.equal(issuer.jwksRequests - before, 1);
    // ... once the cooldown has passed, the first token with it refetches once and is accepted.
    await clock.advance(COOLDOWN_MS);
    const res = await call('/me', `Bearer ${rotated}`);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(issuer.jwksRequests - before, 2);
    assert.equal((await call('/me', `Bearer ${await sign()}`)).statusCode, 200);
    assert.equal(issuer.jwksRequests - before, 2, 'a known kid costs no fetch');
  });

  it('a valid token lacking a scope -> 403 insufficient-scope; lacking a role -> 403 forbidden', async () => {
    const reader = await sign({ scope: 'orders:read', roles: ['customer'] });
    let res = await call('/orders', `Bearer ${reader}`, 'POST');
    assertProblem(res, 403, 'insufficient-scope', 'scope');
    assert.equal(res.headers['www-authenticate'], 'Bearer error="insufficient_scope", scope="orders:write"');
    assert.deepEqual(res.json<{ requiredScopes: string[] }>().requiredScopes, ['orders:write']);
    res = await call('/admin', `Bearer ${reader}`);
    assertProblem(res, 403, 'forbidden', 'role');
    assert.equal(res.headers['www-authenticate'], undefined);
    res = await call('/computed', `Bearer ${reader}`);
    assertProblem(res, 403, 'insufficient-scope');
    // Missing token on a route with requirements is still 401, not 403.
    assertProblem(await call('/orders', undefined, 'POST'), 401, 'unauthenticated');
    assertProblem(await call('/computed'), 401, 'unauthenticated');

    const writer = await sign({ scope: 'orders:write', roles: ['support'], scp: ['reports:read'] });
    assert.equal((await call('/orders', `Bearer ${writer}`, 'POST')).statusCode, 200);
    assert.equal((await call('/admin', `Bearer ${writer}`)).statusCode, 200, 'any one of the roles');
    assert.equal((await call('/computed', `Bearer ${writer}`)).statusCode, 200, 'scp counts as scopes');
  });

  it('optional routes run anonymously without a token but refuse a bad one; auth: false ignores tokens', async () => {
    let res = await call('/feed');
    assert.equal(res.statusCode, 200);
    assert.equal(res.json<{ user: unknown }>().user, null);
    res = await call('/feed', 'Basic dXNlcjpwYXNz');
    assert.equal(res.statusCode, 200, 'another scheme is not ours to judge on an optional route');
    handled = 0;
    assertInvalidToken(await call('/feed', 'Bearer not.a.token'), 'malformed');
    res = await call('/public', 'Bearer garbage');
    assert.equal(res.statusCode, 200);
    assert.equal(res.json<{ user: unknown }>().user, null);
  });
});

describe('JwtVerifier', () => {
  it('JWKS unavailable and nothing cached -> 503 auth-keys-unavailable (retryable); recovers when the issuer does', async () => {
    const issuer = await TestIssuer.start({ alg: 'ES256' });
    try {
      const clock = new VirtualClock(Date.now());
      const verifier = new JwtVerifier({ issuers: [{ issuer: issuer.issuer, audience: 'a', jwksUri: issuer.jwksUri, algorithms: ['ES256'], jwksCooldownMs: 1_000 }], clock });
      const token = await issuer.sign({ sub: 's', aud: 'a' }, { nowMs: clock.now(), expiresInSec: 3_600 });
      issuer.failWith = 500;
      const error = await verifier.verify(token).then(
        () => assert.fail('must throw'),
        (e: unknown) => e,
      );
      assert.ok(isAuthError(error));
      assert.equal(error.code, 'BULWARK_AUTH_KEYS_UNAVAILABLE');
      assert.equal(error.retryable, true);
      assert.equal(error.toProblem().status, 503);
      issuer.failWith = undefined;
      assert.equal((await verifier.verify(token)).sub, 's');
      // Keys cached: a failing issuer no longer matters for known kids, even once the cache is stale.
      issuer.failWith = 500;
      await clock.advance(700_000);
      const fetches = issuer.jwksRequests;
      assert.equal((await verifier.verify(token)).sub, 's');
      assert.equal(issuer.jwksRequests, fetches + 1, 'the stale set was refetched (and the failure ignored)');
    } finally {
      await issuer.close();
    }
  });

  it('concurrent first verifications share one JWKS fetch', async () => {
    const issuer = await TestIssuer.start();
    try {
      const verifier = new JwtVerifier({ issuers: [{ issuer: issuer.issuer, audience: 'a', jwksUri: issuer.jwksUri }] });
      const token = await issuer.sign({ sub: 's', aud: 'a' });
      const users = await Promise.all(Array.from({ length: 20 }, () => verifier.verify(token)));
      assert.equal(users.length, 20);
      assert.equal(issuer.jwksRequests, 1);
    } finally {
      await issuer.close();
    }
  });

  it('verifies against a static key set, with typ and a maximum token age', async () => {
    const issuer = await TestIssuer.start();
    try {
      const clock = new VirtualClock(Date.now());
      const verifier = new JwtVerifier({ issuers: [{ issuer: issuer.issuer, audience: 'a', jwks: issuer.ring.jwks(), typ: 'at+jwt', maxTokenAgeSec: 60 }], clock });
      const ok = await issuer.sign({ sub: 's', aud: 'a' }, { nowMs: clock.now(), header: { typ: 'at+jwt' }, expiresInSec: 3_600 });
      assert.equal((await verifier.verify(ok)).sub, 's');
      await assert.rejects(verifier.verify(await issuer.sign({ sub: 's', aud: 'a' }, { nowMs: clock.now() })), (e: unknown) => e instanceof InvalidTokenError && e.reason === 'type');
      await clock.advance(120_000);
      await assert.rejects(verifier.verify(ok), (e: unknown) => isAuthError(e) && e.code === 'BULWARK_AUTH_TOKEN_EXPIRED');
      assert.equal(issuer.jwksRequests, 0, 'a static set fetches nothing');
    } finally {
      await issuer.close();
    }
  });

  it('refuses unsafe configuration at construction', () => {
    const base = { issuer: 'https://i', audience: 'a', jwks: { keys: [] } };
    const bad = [
      { issuers: [] },
      { issuers: [{ ...base, algorithms: ['HS256'] }] },
      { issuers: [{ ...base, algorithms: ['none'] }] },
      { issuers: [{ ...base, algorithms: [] }] },
      { issuers: [{ ...base, audience: '' }] },
      { issuers: [{ ...base, jwksUri: 'http://x/jwks' }] },
      { issuers: [{ issuer: 'https://i', audience: 'a' }] },
      { issuers: [base, base] },
      { issuers: [base], clockSkewSec: 3_600 },
    ];
    for (const options of bad) {
      assert.throws(() => new JwtVerifier(options as never), (e: unknown) => e instanceof AuthConfigError, JSON.stringify(options));
    }
  });

  it('refuses a route config that is not a requirement', async () => {
    const issuer = await TestIssuer.start();
    const app = Fastify();
    try {
      await app.register(bearerAuth, { verifier: new JwtVerifier({ issuers: [{ issuer: issuer.issuer, audience: 'a', jwks: issuer.ring.jwks() }] }) });
      assert.throws(() => app.get('/x', { config: { auth: { scopes: ['has space'] } } }, () => 'x'), (e: unknown) => e instanceof AuthConfigError);
      assert.throws(() => app.get('/y', { config: { auth: 'sometimes' as never } }, () => 'y'), (e: unknown) => e instanceof AuthConfigError);
    } finally {
      await app.close();
      await issuer.close();
    }
  });
});
