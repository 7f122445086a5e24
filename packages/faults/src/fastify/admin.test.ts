import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyRequest } from 'fastify';
import { testServer, type TestServer } from '../../test/helpers.js';
import { FaultInjector, FaultOptionError } from '../index.js';
import { faultAdmin, inboundFaults } from './index.js';

const KEY = 'operator-secret';

/** The host's own authentication: a shared key, refused with a 401. */
function requireKey(request: FastifyRequest): Promise<void> {
  if (request.headers['x-admin-key'] === KEY) return Promise.resolve();
  return Promise.reject(Object.assign(new Error('admin key required'), { statusCode: 401 }));
}

describe('the fault admin API', () => {
  const injector = new FaultInjector({ seed: 4, modules: ['payments', 'orders'] });
  let server: TestServer;
  let authCalls = 0;

  before(async () => {
    server = await testServer(async (app) => {
      await app.register(inboundFaults, { injector, modules: { payments: '/api/payments', orders: '/api/orders' } });
      await app.register(faultAdmin, {
        prefix: '/admin/faults',
        injector,
        auth: (request: FastifyRequest) => {
          authCalls++;
          return requireKey(request);
        },
      });
    });
  });
  after(() => server.close());

  async function admin(method: string, path = '', body?: unknown, key: string | undefined = KEY) {
    const headers: Record<string, string> = {};
    if (key !== undefined) headers['x-admin-key'] = key;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${server.url}/admin/faults${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const text = await res.text();
    return { status: res.status, type: res.headers.get('content-type') ?? '', body: (text === '' ? undefined : JSON.parse(text)) as Record<string, unknown> };
  }

  it('refuses every route without the host authentication, before reading the body', async () => {
    for (const [method, path] of [['GET', ''], ['PUT', ''], ['DELETE', ''], ['PUT', '/x'], ['DELETE', '/x'], ['GET', '/x']] as const) {
      const calls = authCalls;
      const res = await admin(method, path, method === 'PUT' ? { kind: 'error', direction: 'inbound' } : undefined, 'wrong');
      assert.equal(res.status, 401, `${method} ${path}`);
      assert.equal(authCalls, calls + 1);
    }
    assert.equal(injector.active, false, 'nothing was changed');
  });

  it('creates and replaces a rule by id, and shows its counters', async () => {
    const put = await admin('PUT', '/payments-down', { kind: 'error', direction: 'inbound', match: { module: 'payments' }, probability: 1 });
    assert.equal(put.status, 200);
    assert.deepEqual(put.body, { rule: { id: 'payments-down', kind: 'error', direction: 'inbound', match: { module: 'payments' }, probability: 1, status: 503 } });
    for (let i = 0; i < 3; i++) assert.equal((await fetch(`${server.url}/api/payments/charges`)).status, 503);
    assert.equal((await fetch(`${server.url}/api/orders/1`)).status, 200);
    const list = await admin('GET');
    assert.deepEqual(list.body, { seed: 4, rules: [{ id: 'payments-down', kind: 'error', direction: 'inbound', match: { module: 'payments' }, probability: 1, status: 503, stats: { matched: 3, injected: 3 } }] });
    const one = await admin('GET', '/payments-down');
    assert.deepEqual((one.body.rule as { stats: unknown }).stats, { matched: 3, injected: 3 });

    const replaced = await admin('PUT', '/payments-down', { id: 'payments-down', kind: 'error', direction: 'inbound', match: { module: 'payments' }, status: 500 });
    assert.equal(replaced.status, 200);
    const after = await admin('GET');
    assert.deepEqual((after.body.rules as { stats: unknown; status: number }[]).map((r) => [r.status, r.stats]), [[500, { matched: 0, injected: 0 }]], 'replaced, counters reset');
  });

  it('answers 400 problem+json naming the field for an invalid rule', async () => {
    const bad = await admin('PUT', '/slow', { kind: 'latency', direction: 'inbound', latency: { distribution: 'lognormal', medianMs: 0, sigma: 1 } });
    assert.equal(bad.status, 400);
    assert.match(bad.type, /^application\/problem\+json/);
    assert.equal(bad.body.type, 'https://bulwark.dev/problems/faults/invalid-rule');
    assert.equal(bad.body.field, 'latency.medianMs');
    assert.match(String(bad.body.detail), /latency\.medianMs/);
    assert.equal((await admin('PUT', '/x', { id: 'y', kind: 'error', direction: 'inbound' })).body.field, 'id');
    assert.equal((await admin('PUT', '/x', { kind: 'error', direction: 'inbound', match: { module: 'paymnts' } })).body.field, 'match.module');
    assert.equal((await admin('PUT', '/x')).body.field, '(root)');
    assert.equal((await admin('GET', '/slow')).status, 404, 'nothing was created');
  });

  it('replaces the whole set atomically: all or nothing', async () => {
    const before = await admin('GET');
    const refused = await admin('PUT', '', {
      seed: 77,
      rules: [
        { id: 'a', kind: 'error', direction: 'inbound' },
        { id: 'b', kind: 'reset', direction: 'outbound', match: { dependency: 'payments' } },
        { id: 'c', kind: 'latency', direction: 'inbound', latency: { distribution: 'lognormal', medianMs: -1, sigma: 0.5 } },
      ],
    });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.field, 'rules[2].latency.medianMs');
    assert.deepEqual(await admin('GET'), before, 'nothing changed, seed included');

    const accepted = await admin('PUT', '', { seed: 77, rules: [{ id: 'a', kind: 'error', direction: 'inbound', match: { module: 'orders' } }, { id: 'b', kind: 'reset', direction: 'outbound' }] });
    assert.equal(accepted.status, 200);
    assert.equal(accepted.body.seed, 77);
    assert.deepEqual((accepted.body.rules as { id: string }[]).map((r) => r.id), ['a', 'b']);
    // What GET answers can be PUT back as it is (stats are read-only and ignored).
    assert.equal((await admin('PUT', '', (await admin('GET')).body)).status, 200);
  });

  it('deletes one rule (404 problem when unknown) or all of them', async () => {
    assert.equal((await admin('DELETE', '/a')).status, 204);
    const missing = await admin('DELETE', '/a');
    assert.equal(missing.status, 404);
    assert.match(missing.type, /^application\/problem\+json/);
    assert.equal(missing.body.type, 'https://bulwark.dev/problems/faults/unknown-rule');
    assert.equal((await admin('DELETE')).status, 204);
    assert.deepEqual((await admin('GET')).body.rules, []);
    assert.equal(injector.active, false);
  });

  it('admin routes are never faulted, whatever the rules say', async () => {
    injector.set('everything', { kind: 'reset', direction: 'inbound' });
    const list = await admin('GET');
    assert.equal(list.status, 200);
    assert.equal((await admin('DELETE', '/everything')).status, 204);
  });

  it('must be told how to authenticate (or explicitly not to); bad options fail the registration', async () => {
    for (const [plugin, options] of [
      [faultAdmin, { injector }],
      [faultAdmin, { injector: {}, auth: false }],
      [inboundFaults, { injector, modules: { payments: 'api/payments' } }],
      [inboundFaults, { injector, exempt: ['health'] }],
    ] as const) {
      const app = Fastify();
      await assert.rejects(async () => {
        await app.register(plugin as never, options as never);
      }, FaultOptionError);
      await app.close().catch(() => undefined);
    }
  });
});
