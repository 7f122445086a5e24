import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '@bulwark/resilience/testing';
import { Agent, request } from 'undici';
import { codeOf, failedWith, settle, testServer, until, type TestServer } from '../../test/helpers.js';
import { FaultInjector } from '../index.js';
import { faultAdmin, inboundFaults } from './index.js';

describe('inbound faults on a real Fastify server', () => {
  const clock = new VirtualClock();
  const injector = new FaultInjector({ seed: 11, clock, modules: ['payments', 'pay', 'orders'] });
  let server: TestServer;
  let agent: Agent;
  const get = (path: string, options: { method?: 'GET' | 'POST'; signal?: AbortSignal } = {}) =>
    request(`${server.url}${path}`, { method: options.method ?? 'GET', dispatcher: agent, ...(options.signal === undefined ? {} : { signal: options.signal }) });

  before(async () => {
    server = await testServer(async (app) => {
      await app.register(inboundFaults, { injector, modules: { payments: '/api/payments', pay: '/api/pay', orders: '/api/orders' }, exempt: ['/health'] });
      await app.register(faultAdmin, { prefix: '/admin/faults', injector, auth: false });
    });
    agent = new Agent({ connections: 16 });
  });
  after(async () => {
    await agent.close();
    await server.close();
  });
  const hits = (path: string) => server.hits.get(path) ?? 0;

  it('lets everything through when no rule is set', async () => {
    const res = await get('/api/payments/charges');
    assert.equal(res.statusCode, 200);
    await res.body.dump();
  });

  it('error: answers problem+json with the rule status; the handler never runs', async () => {
    injector.replace({ rules: [{ id: 'pay-down', kind: 'error', direction: 'inbound', match: { module: 'payments' }, status: 502 }] });
    const res = await get('/api/payments/charges');
    assert.equal(res.statusCode, 502);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    assert.equal(res.headers['x-bulwark-fault'], 'pay-down');
    const body = (await res.body.json()) as Record<string, unknown>;
    assert.equal(body.type, 'https://bulwark.dev/problems/faults/injected');
    assert.equal(body.status, 502);
    assert.equal(body.rule, 'pay-down');
    assert.equal(hits('/api/payments/charges'), 1, 'only the earlier, unfaulted request reached the handler');
    // Module prefixes match whole segments, the longest first.
    for (const other of ['/api/paymentsx', '/api/pay/charges', '/api/orders/1']) {
      const r = await get(other);
      assert.equal(r.statusCode, 200, other);
      await r.body.dump();
    }
    assert.deepEqual(injector.stats('pay-down'), { matched: 1, injected: 1 });
  });

  it('matches routes by method and pattern, and never faults exempt paths or the admin routes', async () => {
    injector.replace({ rules: [{ id: 'orders-post', kind: 'error', direction: 'inbound', match: { route: 'POST /api/orders/*' }, status: 429 }, { id: 'everything', kind: 'error', direction: 'inbound', status: 500 }] });
    assert.equal((await get('/api/orders/7', { method: 'POST' })).statusCode, 429);
    assert.equal((await get('/api/orders/7')).statusCode, 500, 'GET is not the route, the catch-all rule answers');
    const health = await get('/health/ready');
    assert.equal(health.statusCode, 200);
    await health.body.dump();
    const admin = await get('/admin/faults');
    assert.equal(admin.statusCode, 200);
    assert.equal(((await admin.body.json()) as { rules: unknown[] }).rules.length, 2);
    injector.clear();
  });

  it('latency: the request waits for the (virtual) delay, then reaches its handler', async () => {
    injector.replace({ rules: [{ id: 'slow', kind: 'latency', direction: 'inbound', match: { module: 'orders' }, latency: { fixedMs: 250 } }] });
    const before = hits('/api/orders/slow');
    let settled = false;
    const pending = get('/api/orders/slow').then((r) => {
      settled = true;
      return r;
    });
    await until(() => clock.pendingTimers() === 1, 'the delay timer');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(settled, false);
    assert.equal(hits('/api/orders/slow'), before, 'not before the delay');
    await clock.advance(250);
    const res = await pending;
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    assert.equal(hits('/api/orders/slow'), before + 1);
    assert.equal(clock.pendingTimers(), 0);
    injector.clear();
  });

  it('reset: the connection is reset, the caller sees a network error', async () => {
    injector.replace({ rules: [{ id: 'rst', kind: 'reset', direction: 'inbound', match: { route: '/api/orders/reset' } }] });
    await assert.rejects(get('/api/orders/reset'), (e: unknown) => ['ECONNRESET', 'UND_ERR_SOCKET'].includes(codeOf(e) ?? ''));
    assert.equal(hits('/api/orders/reset'), 0);
    injector.clear();
  });

  it('hang: no answer until the caller gives up; nothing is left behind', async () => {
    injector.replace({ rules: [{ id: 'stuck', kind: 'hang', direction: 'inbound', match: { module: 'payments' } }] });
    const controller = new AbortController();
    const pending = settle(get('/api/payments/abandoned', { signal: controller.signal }));
    await until(() => injector.held === 1, 'the hang to start');
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort();
    const outcome = await pending;
    assert.ok(!outcome.ok && ((outcome.error as Error).name === 'AbortError' || codeOf(outcome.error) === 'UND_ERR_ABORTED'), JSON.stringify(outcome));
    await until(() => injector.held === 0, 'the hold to end when the caller left');
    assert.equal(hits('/api/payments/abandoned'), 0);
    assert.equal(clock.pendingTimers(), 0, 'no timer without hangMs');
    injector.clear();
  });

  it('hang with hangMs: the connection is reset after it, and its timer is gone', async () => {
    injector.replace({ rules: [{ id: 'stuck', kind: 'hang', direction: 'inbound', match: { module: 'payments' }, hangMs: 5_000 }] });
    const pending = settle(get('/api/payments/hang'));
    await until(() => clock.pendingTimers() === 1, 'the hang timer');
    await clock.advance(5_000);
    const outcome = await pending;
    assert.ok(failedWith(outcome, ['ECONNRESET', 'UND_ERR_SOCKET']), JSON.stringify(outcome));
    assert.equal(clock.pendingTimers(), 0);

    // The caller leaving clears the hang's timer too.
    const controller = new AbortController();
    const left = settle(get('/api/payments/hang', { signal: controller.signal }));
    await until(() => clock.pendingTimers() === 1, 'the second hang timer');
    controller.abort();
    assert.equal((await left).ok, false);
    await until(() => clock.pendingTimers() === 0 && injector.held === 0, 'the timer cleared when the caller left');
    assert.equal(hits('/api/payments/hang'), 0);
    injector.clear();
  });

  it('hang: removing the rule lets the held request go on to its handler', async () => {
    injector.replace({ rules: [{ id: 'stuck', kind: 'partition', match: { module: 'orders' } }] });
    const pending = get('/api/orders/held');
    await until(() => injector.stats('stuck').injected === 1, 'the request to be held');
    assert.equal(injector.remove('stuck'), true);
    const res = await pending;
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    assert.equal(hits('/api/orders/held'), 1);
  });
});

describe('inbound faults and shutdown', () => {
  it('closing the server resets hung connections instead of waiting for them', async () => {
    const injector = new FaultInjector();
    const server = await testServer(async (app) => {
      await app.register(inboundFaults, { injector });
    });
    const agent = new Agent();
    try {
      injector.set('forever', { kind: 'hang', direction: 'inbound' });
      const pending = settle(request(`${server.url}/anything`, { dispatcher: agent }));
      await until(() => injector.stats('forever').injected === 1, 'the hang');
      await server.close();
      assert.ok(failedWith(await pending, ['ECONNRESET', 'UND_ERR_SOCKET']));
      assert.equal(server.hits.size, 0);
    } finally {
      await agent.close();
    }
  });
});
