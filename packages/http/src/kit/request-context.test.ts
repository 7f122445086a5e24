/**
 * The ambient request context is entered on demand: not at all in a process
 * that never reads it (no AsyncLocalStorage hooks), from the first request on
 * in one that loads the client, and end to end the client then carries the
 * request id, the trace context and the deadline to the next hop.
 *
 * The "in use" flag is process-wide and sticky, so the order of these tests
 * matters (each test file runs in its own process); the tests that need it
 * off again clear it through its global key.
 */
import { strict as assert } from 'node:assert';
import type { AsyncLocalStorage } from 'node:async_hooks';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import fastify, { type FastifyInstance } from 'fastify';
import { DEADLINE_HEADER, tokenBucket } from '@bulwark/resilience';
import { currentRequestContext, kitServerOptions, rateLimit, requestContextInUse, serviceKit, useRequestContext, type RequestContext, type ServiceKitOptions } from '../index.js';

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const storage = (globalThis as unknown as Record<symbol, AsyncLocalStorage<RequestContext>>)[Symbol.for('bulwark.http.request-context')]!;
const resetInUse = (): void => void delete (globalThis as unknown as Record<symbol, unknown>)[Symbol.for('bulwark.http.request-context.in-use')];

async function service(options: ServiceKitOptions = {}, routes: (app: FastifyInstance) => void = () => undefined): Promise<FastifyInstance> {
  const app = fastify(kitServerOptions());
  await app.register(serviceKit, { shutdown: { signals: [] }, openapi: false, ...options });
  routes(app);
  return app;
}

describe('request context on demand', () => {
  it('a process that never reads the ambient context enters none, and request.requestContext is still set', async () => {
    assert.equal(requestContextInUse(), false);
    const app = await service({}, (a) => {
      a.get('/own', async (request) => {
        await new Promise((resolve) => setImmediate(resolve));
        return { own: request.requestContext, ambient: storage.getStore() ?? null };
      });
      a.post('/own', async (request) => ({ own: request.requestContext, ambient: storage.getStore() ?? null }));
    });
    const get = await app.inject({ url: '/own', headers: { 'x-request-id': 'own-1', traceparent: TRACEPARENT } });
    assert.equal(get.headers['x-request-id'], 'own-1');
    assert.deepEqual(get.json(), { own: { requestId: 'own-1', traceparent: TRACEPARENT }, ambient: null });
    const post = await app.inject({ method: 'POST', url: '/own', payload: { a: 1 }, headers: { 'x-request-id': 'own-2' } });
    assert.deepEqual(post.json(), { own: { requestId: 'own-2' }, ambient: null });
    assert.equal(requestContextInUse(), false, 'nothing asked for it: no AsyncLocalStorage was entered');
    await app.close();
  });

  it('the first currentRequestContext() switches it on for the requests that start after it', async () => {
    resetInUse();
    const app = await service({}, (a) => {
      a.get('/context', async () => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        return currentRequestContext() ?? null;
      });
    });
    assert.equal((await app.inject({ url: '/context', headers: { 'x-request-id': 'first' } })).json(), null, 'the request in flight when it was first asked for has none');
    assert.equal(requestContextInUse(), true);
    assert.deepEqual((await app.inject({ url: '/context', headers: { 'x-request-id': 'second' } })).json(), { requestId: 'second' });
    await app.close();
  });

  it("useRequestContext() and the kit's requestContext: 'always' switch it on before the first request", async () => {
    resetInUse();
    useRequestContext();
    assert.equal(requestContextInUse(), true);
    resetInUse();
    const app = await service({ requestContext: 'always' }, (a) => a.get('/context', async () => currentRequestContext() ?? null));
    assert.equal(requestContextInUse(), true);
    assert.deepEqual((await app.inject({ url: '/context', headers: { 'x-request-id': 'always-1' } })).json(), { requestId: 'always-1' });
    await app.close();
    await assert.rejects(service({ requestContext: 'sometimes' as never }), /requestContext/);
  });

  it('only routes that may carry a body get the preValidation hook that re-enters the context, before their own', async () => {
    const seen = new Map<string, string[]>();
    const app = await service({}, (a) => {
      a.addHook('onRoute', (route) => {
        const hooks = route.preValidation;
        seen.set(`${String(route.method)} ${route.url}`, (hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks]).map((h: { name: string }) => h.name));
      });
      const own = function own(_request: unknown, _reply: unknown, done: () => void): void {
        done();
      };
      a.get('/g', async () => 'g');
      a.post('/p', { preValidation: own }, async () => 'p');
      a.route({ method: ['GET', 'DELETE'], url: '/m', handler: async () => 'm' });
    });
    await app.ready();
    assert.deepEqual(Object.fromEntries(seen), { 'GET /g': [], 'HEAD /g': [], 'POST /p': ['reenterContext', 'own'], 'GET,DELETE /m': ['reenterContext'], 'HEAD /m': [] });
    await app.close();
  });
});

describe('request context end to end, once the client is loaded', () => {
  it('a handler calling the client carries the request id, trace context and deadline to the next hop, across awaits and a body', async () => {
    resetInUse();
    const { createClient } = await import('../client/index.js'); // as a static import at start-up would
    assert.equal(requestContextInUse(), true, 'loading the client switches the ambient context on');
    const seen: IncomingHttpHeaders[] = [];
    const downstream = createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
    });
    await new Promise<void>((resolve) => downstream.listen(0, '127.0.0.1', resolve));
    const client = createClient({ baseUrl: `http://127.0.0.1:${(downstream.address() as AddressInfo).port}`, name: 'downstream', retry: 'none' });
    const app = await service({}, (a) => {
      a.get('/call', async () => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        return client.get('/next', { timeoutMs: 5_000 });
      });
      a.post('/call', { schema: { body: { type: 'object', required: ['n'], properties: { n: { type: 'integer' } } } } }, async () => {
        await new Promise((resolve) => setImmediate(resolve));
        return client.get('/next');
      });
    });
    await app.register(rateLimit, { rule: tokenBucket({ capacity: 100, refillRate: 100 }) });
    try {
      const get = await app.inject({ url: '/call', headers: { 'x-request-id': 'e2e-1', traceparent: TRACEPARENT, tracestate: 'congo=t61rcWkgMzE' } });
      assert.equal(get.statusCode, 200);
      const post = await app.inject({ method: 'POST', url: '/call', payload: { n: 1 }, headers: { 'x-request-id': 'e2e-2', traceparent: TRACEPARENT } });
      assert.equal(post.statusCode, 200);
      const concurrent = await Promise.all(Array.from({ length: 10 }, (_, i) => app.inject({ url: '/call', headers: { 'x-request-id': `iso-${i}` } })));
      assert.ok(concurrent.every((r) => r.statusCode === 200));
      assert.equal(seen[0]?.['x-request-id'], 'e2e-1');
      assert.equal(seen[0]?.traceparent, TRACEPARENT);
      assert.equal(seen[0]?.tracestate, 'congo=t61rcWkgMzE');
      const budget = Number(seen[0]?.[DEADLINE_HEADER]);
      assert.ok(budget > 0 && budget <= 5_000, `the call's deadline travels: ${String(seen[0]?.[DEADLINE_HEADER])}`);
      assert.equal(seen[1]?.['x-request-id'], 'e2e-2', 'after the body was read');
      assert.equal(seen[1]?.traceparent, TRACEPARENT);
      assert.deepEqual(seen.slice(2).map((h) => h['x-request-id']).sort(), Array.from({ length: 10 }, (_, i) => `iso-${i}`).sort(), 'each request its own id');
    } finally {
      await app.close();
      await client.close();
      await new Promise<void>((resolve) => downstream.close(() => resolve()));
    }
  });
});
