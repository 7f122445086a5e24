/**
 * Where the metrics, traces and SLOs are (README "Metrics, traces and SLOs"),
 * on a monolith driven through its public API: the SLO routes answer with the
 * shop's SLOs and their counts move with real requests and real sagas; the
 * trace routes refuse without the internal key and, with it, show a placed
 * order's saga trace (its steps) and the request that placed it (the HTTP
 * server spans). Nothing here asserts a duration.
 */
import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { SloStatus } from '@bulwark/telemetry/slo';
import { settleOrder, startTestShop, type TestShop } from './invariants/harness.js';
import { INTERNAL_KEY_HEADER } from './platform.js';
import { createShopSlos, SHOP_SLOS, slosFor } from './slos.js';
import type { SpanNode } from './traces.js';

let t: TestShop;
let token: string;

before(async () => {
  t = await startTestShop({}, 'shop-observability-');
  token = await t.login('demo', 'demo-password');
});

after(async () => {
  await t?.close();
});

const SLO_NAMES = ['order-placement-availability', 'checkout-completion', 'product-page-availability'];

async function slos(): Promise<Map<string, SloStatus>> {
  const r = await t.api('GET', '/slo');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return new Map((r.body.slos as SloStatus[]).map((s) => [s.name, s]));
}

/** Polls `read` until `done` holds (answers are counted in `onResponse`, sagas end in the background); returns the last reading. */
async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) assert.fail(`${what}: still ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function placeOrder(items: { sku: string; qty: number }[], extra: Record<string, unknown> = {}): Promise<string> {
  const r = await t.api('POST', '/api/orders', { token, key: randomUUID(), body: { items, ...extra } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body.orderId as string;
}

/**
 * POST /api/orders from a client without trace context, like curl: node:http, which the undici
 * instrumentation does not see (the test's fetch runs in the shop's process and would send its
 * own `traceparent`); with `traceparent`, as a traced caller would.
 */
function placeOrderUntraced(items: { sku: string; qty: number }[], traceparent?: string): Promise<string> {
  const body = JSON.stringify({ items });
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'idempotency-key': randomUUID() };
  if (traceparent !== undefined) headers.traceparent = traceparent;
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${t.shop.url}/api/orders`, { method: 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => (res.statusCode === 202 ? resolve((JSON.parse(text) as { orderId: string }).orderId) : reject(new Error(`${String(res.statusCode)} ${text}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const counts = (s: SloStatus | undefined): { total: number; bad: number } => ({ total: s?.budget.totalEvents ?? -1, bad: s?.budget.badEvents ?? -1 });

function names(nodes: readonly SpanNode[], out: SpanNode[] = []): SpanNode[] {
  for (const n of nodes) {
    out.push(n);
    names(n.children, out);
  }
  return out;
}

describe('SLOs at /slo', () => {
  it('defines the shop SLOs with their objectives, windows and the multiwindow burn-rate alerts', async () => {
    const all = await slos();
    assert.deepEqual([...all.keys()], SLO_NAMES);
    assert.deepEqual(
      [...all.values()].map((s) => ({ name: s.name, service: s.service, objective: s.objective, window: s.window })),
      [
        { name: 'order-placement-availability', service: 'shop', objective: 0.999, window: '28d' },
        { name: 'checkout-completion', service: 'shop', objective: 0.99, window: '28d' },
        { name: 'product-page-availability', service: 'shop', objective: 0.999, window: '28d' },
      ],
    );
    for (const s of all.values()) {
      assert.deepEqual(
        s.conditions.map((c) => `${c.severity} ${c.burnRate}x ${c.longWindow}/${c.shortWindow}`),
        ['page 14.4x 1h/5m', 'page 6x 6h/30m', 'ticket 3x 1d/2h', 'ticket 1x 3d/6h'],
      );
    }
    const one = await t.api('GET', '/slo/slos/checkout-completion');
    assert.equal(one.status, 200);
    assert.equal(one.body.name, 'checkout-completion');
    const unknown = await t.api('GET', '/slo/slos/nope');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.code, 'BULWARK_SLO_NOT_FOUND');
    const alerts = await t.api('GET', '/slo/alerts');
    assert.deepEqual(Object.keys(alerts.body).sort(), ['firing', 'history']);
  });

  it('counts real requests and sagas: total and good move after orders and product pages', async () => {
    const before = await slos();
    const placement = counts(before.get('order-placement-availability'));
    const checkout = counts(before.get('checkout-completion'));
    const page = counts(before.get('product-page-availability'));

    const confirmed = await placeOrder([{ sku: 'KB-001', qty: 1 }]);
    const declined = await placeOrder([{ sku: 'CB-005', qty: 1 }], { paymentMethod: 'card_declined' });
    // A refusal (400) is a correct answer: counted, and good.
    assert.equal((await t.api('POST', '/api/orders', { token, key: randomUUID(), body: { items: [] } })).status, 400);
    for (const sku of ['KB-001', 'MS-002']) assert.equal((await t.api('GET', `/api/product-page/${sku}`)).status, 200);
    assert.deepEqual([(await settleOrder(t, confirmed, token)).status, (await settleOrder(t, declined, token)).status], ['CONFIRMED', 'CANCELLED']);

    const after = await until(
      slos,
      (m) => counts(m.get('order-placement-availability')).total >= placement.total + 3 && counts(m.get('checkout-completion')).total >= checkout.total + 2 && counts(m.get('product-page-availability')).total >= page.total + 2,
      'SLO totals after 3 order answers, 2 sagas and 2 product pages',
    );
    assert.deepEqual(counts(after.get('order-placement-availability')), { total: placement.total + 3, bad: placement.bad });
    // Completed and compensated both end the checkout; within the threshold (sagas take milliseconds here) both are good.
    assert.deepEqual(counts(after.get('checkout-completion')), { total: checkout.total + 2, bad: checkout.bad });
    assert.deepEqual(counts(after.get('product-page-availability')), { total: page.total + 2, bad: page.bad });
    const status = after.get('order-placement-availability');
    assert.equal(status?.sli, 1);
    assert.equal(status?.budget.remainingFraction, 1);

    // The engine publishes its counts on /metrics, the series the exported rules read.
    const metrics = await (await fetch(`${t.shop.url}/metrics`)).text();
    assert.match(metrics, /^bulwark_slo_events_total\{slo="checkout-completion",service="shop"\} [1-9]/m);
    assert.match(metrics, /^bulwark_slo_good_events_total\{slo="order-placement-availability",service="shop"\} [1-9]/m);
  });

  it('exports the same SLOs as Prometheus rules at /slo/rules', async () => {
    const res = await fetch(`${t.shop.url}/slo/rules`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /yaml/);
    const yaml = await res.text();
    for (const name of SLO_NAMES) assert.ok(yaml.includes(`sloth_slo: "${name}"`), name);
    for (const alert of ['OrderPlacementAvailabilityBurnRate', 'CheckoutCompletionBurnRate', 'ProductPageAvailabilityBurnRate']) assert.ok(yaml.includes(alert), alert);
    assert.ok(yaml.includes('bulwark_slo_events_total{slo="checkout-completion",service="shop"}'));
  });

  it('logs an alert when an SLO burns its budget, and keeps each process to its own modules SLOs', async () => {
    const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
    const log = { warn: (fields: object, msg: string) => void lines.push({ level: 'warn', msg, fields: fields as Record<string, unknown> }), info: (fields: object, msg: string) => void lines.push({ level: 'info', msg, fields: fields as Record<string, unknown> }) };
    const own = createShopSlos({ service: 'shop-orders', modules: ['orders'], log: log as never });
    assert.ok(own !== undefined);
    try {
      assert.deepEqual(own.specs.map((s) => s.name), ['order-placement-availability', 'checkout-completion']);
      own.engine.slo('order-placement-availability').record(0, 100);
      own.engine.evaluate();
      const firing = lines.filter((l) => l.level === 'warn');
      assert.deepEqual(firing.map((l) => [l.msg, l.fields.severity]), [
        ['SLO alert firing: order-placement-availability (page)', 'page'],
        ['SLO alert firing: order-placement-availability (ticket)', 'ticket'],
      ]);
      assert.equal(own.engine.alerts().length, 2);
    } finally {
      await own.close();
    }
    assert.deepEqual(slosFor('shop-product-page', ['productPage']).map((s) => s.name), ['product-page-availability']);
    assert.equal(createShopSlos({ service: 'shop-users', modules: ['users', 'catalog'], log: log as never }), undefined);
    assert.deepEqual(SHOP_SLOS.map((s) => s.spec.name), SLO_NAMES);
  });
});

describe('traces at /traces', () => {
  it('refuses without the internal key', async () => {
    for (const path of ['/traces', '/traces?error=true', `/traces/${'a'.repeat(32)}`, `/traces/saga/${randomUUID()}`]) {
      const refused = await t.api('GET', path, { token });
      assert.equal(refused.status, 403, `${path}: ${JSON.stringify(refused.body)}`);
      assert.equal(refused.body.type, 'https://bulwark.dev/problems/shop/internal-route');
      const wrong = await fetch(`${t.shop.url}${path}`, { headers: { [INTERNAL_KEY_HEADER]: 'not-the-key' } });
      assert.equal(wrong.status, 403, path);
    }
  });

  it('keeps module-to-module calls in the caller\'s trace when the request arrives with a traceparent', async () => {
    const traceId = randomUUID().replaceAll('-', '');
    const orderId = await placeOrderUntraced([{ sku: 'MS-002', qty: 1 }], `00-${traceId}-${'b7ad6b7169203331'}-01`);
    assert.equal((await settleOrder(t, orderId, token)).status, 'CONFIRMED');
    type View = { traceId: string; spans: SpanNode[] };
    const view = await until(
      async () => (await t.api('GET', `/traces/${traceId}`, { internal: true })).body as unknown as View,
      (v) => Array.isArray(v.spans) && names(v.spans).some((s) => s.kind === 'server' && s.name === 'GET /api/catalog/prices'),
      "the callee's server span in the caller's trace",
    );
    const spans = names(view.spans);
    const callee = spans.find((s) => s.kind === 'server' && s.name === 'GET /api/catalog/prices');
    assert.equal(callee?.traceId, traceId);
    assert.equal(spans.find((s) => s.spanId === callee?.parentSpanId)?.kind, 'client', 'its parent is the client span of the call');
  });

  it("returns a placed order's trace: the saga's steps, linked to the request that placed it (HTTP server spans)", async () => {
    const orderId = await placeOrderUntraced([{ sku: 'MS-002', qty: 1 }]);
    assert.equal((await settleOrder(t, orderId, token)).status, 'CONFIRMED');

    // The saga's trace, by its id (the order id); its whole-life span is written when the saga ends.
    type View = { traceId: string; summary: { services: string[]; spanCount: number }; spans: SpanNode[]; linked: (View & { relation: string })[] };
    const saga = await until(
      async () => (await t.api('GET', `/traces/saga/${orderId}`, { internal: true })).body as unknown as View,
      (v) => Array.isArray(v.spans) && names(v.spans).some((s) => s.name === 'saga CreateOrder') && v.linked.length > 0,
      'the saga trace with its end span and the placing request',
    );
    const sagaSpans = names(saga.spans);
    for (const step of ['recordOrder', 'reserveInventory', 'chargePayment', 'confirmOrder']) {
      const span = sagaSpans.find((s) => s.name === `saga CreateOrder ${step}`);
      assert.ok(span !== undefined, `step ${step} in ${JSON.stringify(sagaSpans.map((s) => s.name))}`);
      assert.equal(span.attributes['bulwark.saga.id'], orderId);
      assert.equal(span.traceId, saga.traceId);
    }
    assert.equal(sagaSpans.find((s) => s.name === 'saga CreateOrder')?.attributes['bulwark.saga.outcome'], 'completed');

    const request = saga.linked.find((l) => l.relation === 'linked-from');
    assert.ok(request !== undefined, JSON.stringify(saga.linked.map((l) => l.relation)));
    const requestSpans = names(request.spans);
    assert.equal(request.spans.length, 1, 'one root');
    assert.deepEqual([request.spans[0]?.kind, request.spans[0]?.name], ['server', 'POST /api/orders']);
    const server = requestSpans.find((s) => s.kind === 'server' && s.name === 'POST /api/orders');
    assert.ok(server !== undefined, JSON.stringify(requestSpans.map((s) => `${s.kind} ${s.name}`)));
    assert.equal(server.attributes['http.response.status_code'], 202);
    assert.ok(server.children.some((c) => c.name === 'saga CreateOrder start'), 'the saga starts inside the request');
    // Module-to-module calls stay in the trace: the client span, under it the callee's server span.
    for (const callee of ['GET /api/catalog/prices', 'POST /api/inventory/reservations', 'POST /api/payments/charges']) {
      const span = requestSpans.find((s) => s.kind === 'server' && s.name === callee);
      assert.ok(span !== undefined, `${callee} in ${JSON.stringify(requestSpans.map((s) => `${s.kind} ${s.name}`))}`);
      assert.equal(requestSpans.find((s) => s.spanId === span.parentSpanId)?.kind, 'client');
    }
    const start = requestSpans.find((s) => s.name === 'saga CreateOrder start');
    assert.ok(start !== undefined);
    assert.deepEqual(start.links.map((l) => l.traceId), [saga.traceId]);

    // The same trace by its id, linking forward to the saga's; and listed.
    const byId = (await t.api('GET', `/traces/${request.traceId}`, { internal: true })).body as unknown as View;
    assert.equal(byId.traceId, request.traceId);
    assert.ok(byId.linked.some((l) => l.traceId === saga.traceId && l.relation === 'links-to'));
    const listed = await t.api('GET', `/traces?limit=500&service=shop&name=${encodeURIComponent('saga CreateOrder start')}`, { internal: true });
    assert.equal(listed.status, 200);
    const summaries = listed.body.traces as { traceId: string; rootName: string; services: string[] }[];
    assert.ok(summaries.some((s) => s.traceId === request.traceId && s.rootName === 'POST /api/orders' && s.services.includes('shop')));

    const errors = (await t.api('GET', '/traces?error=true&limit=500', { internal: true })).body.traces as { errorCount: number }[];
    assert.ok(errors.every((s) => s.errorCount > 0));
    const missing = await t.api('GET', `/traces/${'0'.repeat(32)}`, { internal: true });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.type, 'https://bulwark.dev/problems/shop/unknown-trace');
    assert.equal((await t.api('GET', '/traces/not-a-trace-id', { internal: true })).status, 400);
  });
});
