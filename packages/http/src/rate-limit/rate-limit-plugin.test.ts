import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { MemoryRateLimitStore, tokenBucket, type RateLimitStore } from '@bulwark/resilience';
import { VirtualClock } from '@bulwark/resilience/testing';
import { kitServerOptions, rateLimit, serviceKit, type RateLimitOptions } from '../index.js';

async function service(options: RateLimitOptions): Promise<FastifyInstance> {
  const app = fastify(kitServerOptions());
  await app.register(serviceKit, { shutdown: { signals: [] }, openapi: false });
  app.addHook('onRequest', async (request: FastifyRequest) => {
    const sub = request.headers['x-test-sub'];
    if (typeof sub === 'string') (request as unknown as { user: { sub: string } }).user = { sub };
  });
  await app.register(rateLimit, options);
  app.get('/a', async () => ({ ok: 'a' }));
  app.get('/b', async () => ({ ok: 'b' }));
  app.get('/fails', async () => {
    throw new Error('boom');
  });
  app.get('/search', { config: { rateLimit: { rule: tokenBucket({ capacity: 1, refillRate: 1, refillIntervalMs: 3_600_000 }), bucket: 'search' } } }, async () => ({ ok: 'search' }));
  app.get('/search2', { config: { rateLimit: { rule: tokenBucket({ capacity: 1, refillRate: 1, refillIntervalMs: 3_600_000 }), bucket: 'search' } } }, async () => ({ ok: 'search2' }));
  app.get('/free', { config: { rateLimit: false } }, async () => ({ ok: 'free' }));
  return app;
}

const hourly = tokenBucket({ capacity: 3, refillRate: 1, refillIntervalMs: 3_600_000 });

describe('rate-limit plugin (memory store)', () => {
  it('sets RateLimit-* and X-RateLimit-* on every response of a limited route, and refuses with 429 and Retry-After', async () => {
    const app = await service({ rule: hourly });
    const seen: [number, string, string][] = [];
    for (let i = 0; i < 4; i++) {
      const res = await app.inject('/a');
      seen.push([res.statusCode, String(res.headers['ratelimit-remaining']), String(res.headers['x-ratelimit-remaining'])]);
      assert.equal(res.headers['ratelimit-limit'], '3');
      assert.equal(res.headers['x-ratelimit-limit'], '3');
      assert.ok(Number(res.headers['ratelimit-reset']) > 0);
      assert.equal(res.headers['ratelimit-reset'], res.headers['x-ratelimit-reset']);
    }
    assert.deepEqual(seen, [
      [200, '2', '2'],
      [200, '1', '1'],
      [200, '0', '0'],
      [429, '0', '0'],
    ]);
    const refused = await app.inject('/a');
    assert.equal(refused.statusCode, 429);
    assert.equal(refused.headers['retry-after'], '3600', 'one token an hour');
    assert.equal((JSON.parse(refused.body) as { type: string }).type, 'https://bulwark.dev/problems/rate-limited');
    const failing = await service({ rule: hourly });
    const error = await failing.inject('/fails');
    assert.equal(error.statusCode, 500);
    assert.equal(error.headers['ratelimit-remaining'], '2', 'an error response of a limited route carries the headers too');
    await Promise.all([app.close(), failing.close()]);
  });

  it('counts per route and per identity: JWT subject, else API key, else client IP', async () => {
    const app = await service({ rule: hourly });
    for (let i = 0; i < 3; i++) assert.equal((await app.inject('/a')).statusCode, 200);
    assert.equal((await app.inject('/a')).statusCode, 429, 'the IP is spent on /a');
    assert.equal((await app.inject('/b')).statusCode, 200, 'another route has its own allowance');
    assert.equal((await app.inject({ url: '/a', headers: { 'x-api-key': 'k-1' } })).statusCode, 200, 'an API key is its own identity');
    assert.equal((await app.inject({ url: '/a', headers: { 'x-test-sub': 'user-1', 'x-api-key': 'k-1' } })).statusCode, 200, 'the JWT subject wins over the API key');
    for (let i = 0; i < 2; i++) await app.inject({ url: '/a', headers: { 'x-test-sub': 'user-1' } });
    assert.equal((await app.inject({ url: '/a', headers: { 'x-test-sub': 'user-1' } })).statusCode, 429);
    assert.equal((await app.inject({ url: '/a', headers: { 'x-test-sub': 'user-2' } })).statusCode, 200);
    assert.equal((await app.inject({ url: '/a', remoteAddress: '10.0.0.9' })).statusCode, 200, 'another IP');
    await app.close();
  });

  it('routes naming one bucket share it; exempt routes and kit routes carry no limit', async () => {
    const app = await service({ rule: hourly });
    assert.equal((await app.inject('/search')).statusCode, 200);
    assert.equal((await app.inject('/search2')).statusCode, 429);
    for (let i = 0; i < 5; i++) {
      const free = await app.inject('/free');
      assert.equal(free.statusCode, 200);
      assert.equal(free.headers['ratelimit-limit'], undefined);
      assert.equal((await app.inject('/health/live')).headers['ratelimit-limit'], undefined);
    }
    await app.close();
  });

  it('a failing store fails open by default (no headers, a warning) and closed when asked (503)', async () => {
    const broken: RateLimitStore = { take: () => Promise.reject(new Error('redis down')) };
    const throwing: RateLimitStore = {
      take: () => {
        throw new Error('redis down');
      },
    };
    for (const store of [broken, throwing]) {
      const open = await service({ rule: hourly, store });
      const admitted = await open.inject('/a');
      assert.equal(admitted.statusCode, 200);
      assert.equal(admitted.headers['ratelimit-limit'], undefined);
      const closed = await service({ rule: hourly, store, onStoreError: 'closed' });
      const refused = await closed.inject('/a');
      assert.equal(refused.statusCode, 503);
      assert.equal((JSON.parse(refused.body) as { type: string }).type, 'https://bulwark.dev/problems/rate-limit-unavailable');
      await Promise.all([open.close(), closed.close()]);
    }
  });

  it('header values are exact: both families equal, reset in whole seconds rounded up, on 2xx and on the 429 problem; a promised decision gives the same', async () => {
    const rule = tokenBucket({ capacity: 2, refillRate: 1, refillIntervalMs: 1_500 });
    const memory = (): MemoryRateLimitStore => new MemoryRateLimitStore({ clock: new VirtualClock(1_000_000) });
    const sync = memory();
    const promised = memory();
    const asyncStore: RateLimitStore = { take: (...args) => Promise.resolve(promised.take(...args)) };
    const responses: Record<string, unknown>[][] = [];
    for (const store of [sync, asyncStore]) {
      const app = await service({ rule, store });
      const seen: Record<string, unknown>[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await app.inject({ url: '/a', headers: { 'x-request-id': `rl-${i}` } });
        const h = res.headers;
        for (const name of ['limit', 'remaining', 'reset']) assert.equal(h[`x-ratelimit-${name}`], h[`ratelimit-${name}`], name);
        seen.push({ status: res.statusCode, limit: h['ratelimit-limit'], remaining: h['ratelimit-remaining'], reset: h['ratelimit-reset'], retryAfter: h['retry-after'], requestId: h['x-request-id'], type: h['content-type'], body: res.body });
      }
      responses.push(seen);
      await app.close();
    }
    const expected = [
      { status: 200, limit: '2', remaining: '1', reset: '2', retryAfter: undefined, requestId: 'rl-0', type: 'application/json; charset=utf-8', body: '{"ok":"a"}' },
      { status: 200, limit: '2', remaining: '0', reset: '3', retryAfter: undefined, requestId: 'rl-1', type: 'application/json; charset=utf-8', body: '{"ok":"a"}' },
      {
        status: 429,
        limit: '2',
        remaining: '0',
        reset: '3',
        retryAfter: '2',
        requestId: 'rl-2',
        type: 'application/problem+json; charset=utf-8',
        body: JSON.stringify({ type: 'https://bulwark.dev/problems/rate-limited', title: 'Too many requests', status: 429, requestId: 'rl-2' }),
      },
    ];
    assert.deepEqual(responses[0], expected, 'synchronous store');
    assert.deepEqual(responses[1], expected, 'a store that answers with a promise');
  });

  it('identities that alternate request by request each keep their own count', async () => {
    const app = await service({ rule: hourly });
    const who = [{ remoteAddress: '10.0.0.1' }, { remoteAddress: '10.0.0.2' }, { remoteAddress: '10.0.0.1', headers: { 'x-api-key': 'k-1' } }];
    const remaining: string[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await app.inject({ url: '/a', ...who[i % 3] });
      remaining.push(`${res.statusCode}:${String(res.headers['ratelimit-remaining'])}`);
    }
    assert.deepEqual(remaining, ['200:2', '200:2', '200:2', '200:1', '200:1', '200:1', '200:0', '200:0', '200:0', '429:0', '429:0', '429:0']);
    await app.close();
  });

  it('rejects invalid options at registration', async () => {
    await assert.rejects(service({ rule: { capacity: 0, refillRate: 1 } }), /capacity/);
    await assert.rejects(service({ rule: hourly, onStoreError: 'maybe' as never }), /onStoreError/);
  });
});
