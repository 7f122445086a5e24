import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '@bulwark/resilience/testing';
import { fetch, Pool, type Dispatcher } from 'undici';
import { codeOf, settle, testServer, until, type TestServer } from '../../test/helpers.js';
import { FaultInjector, FaultOptionError, injectedFaultOf } from '../index.js';
import { faultInterceptor } from './index.js';

describe('outbound faults through a real undici pool to a real server', () => {
  const clock = new VirtualClock();
  const injector = new FaultInjector({ seed: 5, clock });
  let server: TestServer;
  let pool: Pool;
  /** What the orders module uses to call payments. */
  let ordersToPayments: Dispatcher;
  /** What the product page uses to call payments (another caller, same callee). */
  let pageToPayments: Dispatcher;
  const hits = (path: string) => server.hits.get(path) ?? 0;
  const call = (d: Dispatcher, path: string, signal?: AbortSignal) => d.request({ method: 'GET', path, ...(signal === undefined ? {} : { signal }) });

  before(async () => {
    server = await testServer(() => undefined);
    pool = new Pool(server.url, { connections: 8 });
    ordersToPayments = pool.compose(faultInterceptor(injector, { module: 'orders', dependency: ['payments', 'orders-payments'] }));
    pageToPayments = pool.compose(faultInterceptor(injector, { module: 'productPage', dependency: 'payments' }));
  });
  after(async () => {
    await pool.close();
    await server.close();
  });

  it('sends calls untouched when no rule matches', async () => {
    injector.replace({ rules: [{ id: 'other', kind: 'error', direction: 'outbound', match: { dependency: 'catalog' } }] });
    const res = await call(ordersToPayments, '/plain');
    assert.equal(res.statusCode, 200);
    assert.deepEqual(await res.body.json(), { ok: true, path: '/plain' });
  });

  it('error: a problem+json answer made without sending anything', async () => {
    injector.replace({ rules: [{ id: 'pay-503', kind: 'error', direction: 'outbound', match: { module: 'orders', dependency: 'orders-payments' } }] });
    const res = await call(ordersToPayments, '/charges');
    assert.equal(res.statusCode, 503);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    assert.equal(res.headers['x-bulwark-fault'], 'pay-503');
    const body = (await res.body.json()) as Record<string, unknown>;
    assert.equal(body.type, 'https://bulwark.dev/problems/faults/injected');
    assert.equal(body.rule, 'pay-503');
    assert.equal(hits('/charges'), 0);
    const other = await call(pageToPayments, '/charges');
    assert.equal(other.statusCode, 200, 'another caller of the same callee is not matched');
    await other.body.dump();
    assert.equal(hits('/charges'), 1);
  });

  it('latency: the call is sent once the (virtual) delay has passed', async () => {
    injector.replace({ rules: [{ id: 'slow', kind: 'latency', direction: 'outbound', match: { dependency: 'payments' }, latency: { distribution: 'uniform', minMs: 100, maxMs: 200 } }] });
    let settled = false;
    const pending = call(ordersToPayments, '/slow').then((r) => {
      settled = true;
      return r;
    });
    await until(() => clock.pendingTimers() === 1, 'the delay timer');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(settled, false);
    assert.equal(hits('/slow'), 0);
    await clock.advance(200);
    const res = await pending;
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    assert.equal(hits('/slow'), 1);
  });

  it('hang: released by the caller aborting, with its reason; no timer or hold is left', async () => {
    injector.replace({ rules: [{ id: 'stuck', kind: 'hang', direction: 'outbound', match: { dependency: 'payments' }, hangMs: 60_000 }] });
    const controller = new AbortController();
    const pending = settle(call(ordersToPayments, '/hang', controller.signal));
    await until(() => injector.held === 1, 'the call to be held');
    assert.equal(clock.pendingTimers(), 1);
    const reason = new Error('caller gave up');
    controller.abort(reason);
    const outcome = await pending;
    assert.ok(!outcome.ok && outcome.error === reason, 'rejected with the abort reason');
    assert.equal(clock.pendingTimers(), 0);
    assert.equal(injector.held, 0);
    assert.equal(hits('/hang'), 0);

    // A signal aborted before the call: refused at once, nothing held.
    const early = await settle(call(ordersToPayments, '/hang', AbortSignal.abort()));
    assert.equal(early.ok, false);
    assert.equal(injector.held, 0);
    assert.equal(clock.pendingTimers(), 0);
  });

  it('hang with hangMs: gives up with a socket error (UND_ERR_SOCKET, cause ECONNRESET) marked as injected', async () => {
    injector.replace({ rules: [{ id: 'stuck', kind: 'partition', match: { module: 'orders' }, hangMs: 2_000 }] });
    const pending = settle(call(ordersToPayments, '/partitioned'));
    await until(() => injector.held === 1, 'the call to be blackholed');
    await clock.advance(2_000);
    const outcome = await pending;
    assert.ok(!outcome.ok);
    assert.equal(codeOf(outcome.error), 'UND_ERR_SOCKET');
    assert.equal(((outcome.error as Error).cause as { code?: string }).code, 'ECONNRESET');
    assert.deepEqual(injectedFaultOf(outcome.error), { rule: 'stuck', kind: 'partition' });
    assert.equal(hits('/partitioned'), 0);
    assert.equal(injector.held, 0);
  });

  it('hang: removing the rule sends the held call', async () => {
    injector.replace({ rules: [{ id: 'stuck', kind: 'hang', direction: 'outbound' }] });
    const pending = call(ordersToPayments, '/healed');
    await until(() => injector.held === 1, 'the call to be held');
    injector.clear();
    const res = await pending;
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    assert.equal(hits('/healed'), 1);
  });

  it('reset: a network error as undici would raise it, for request() and for fetch()', async () => {
    injector.replace({ rules: [{ id: 'rst', kind: 'reset', direction: 'outbound', match: { module: 'orders' } }] });
    const outcome = await settle(call(ordersToPayments, '/reset'));
    assert.ok(!outcome.ok);
    assert.equal(codeOf(outcome.error), 'UND_ERR_SOCKET');
    assert.equal((outcome.error as Error).name, 'SocketError');
    assert.deepEqual(injectedFaultOf(outcome.error), { rule: 'rst', kind: 'reset' });
    const viaFetch = await settle(fetch(`${server.url}/reset`, { dispatcher: ordersToPayments }));
    assert.ok(!viaFetch.ok);
    assert.equal(codeOf((viaFetch.error as Error).cause), 'UND_ERR_SOCKET');
    assert.deepEqual(injectedFaultOf(viaFetch.error), { rule: 'rst', kind: 'reset' });
    assert.equal(hits('/reset'), 0);
  });

  it('error after a delay, with probability: counts match the decisions', async () => {
    injector.replace({ seed: 8, rules: [{ id: 'some', kind: 'error', direction: 'outbound', probability: 0.5, status: 500, latency: { fixedMs: 10 } }] });
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const pending = call(ordersToPayments, '/sometimes');
      await until(() => clock.pendingTimers() > 0 || injector.stats('some').matched === i + 1, 'the decision');
      if (clock.pendingTimers() > 0) await clock.advance(10);
      const res = await pending;
      statuses.push(res.statusCode);
      await res.body.dump();
    }
    const { matched, injected } = injector.stats('some');
    assert.equal(matched, 20);
    assert.equal(statuses.filter((s) => s === 500).length, injected);
    assert.equal(statuses.filter((s) => s === 200).length, 20 - injected);
    assert.ok(injected > 0 && injected < 20);
  });

  it('refuses unusable options', () => {
    assert.throws(() => faultInterceptor({} as FaultInjector), FaultOptionError);
    assert.throws(() => faultInterceptor(injector, { module: '' }), FaultOptionError);
    assert.throws(() => faultInterceptor(injector, { dependency: [''] }), FaultOptionError);
  });
});
