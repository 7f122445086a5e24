/**
 * The shop's user journeys, driven only through its public HTTP API with real
 * tokens and Idempotency-Keys — internal routes (with the internal key) are
 * used to set stock and to read the payments ledger, as an operator would.
 * One definition, run against every topology: `journeys.test.ts` (monolith:
 * SQLite, embedded bus, one process) and `services.test.ts` (a process per
 * module behind the gateway, PostgreSQL, NATS JetStream).
 *
 * Proves: an order is confirmed and its email recorded once; out of stock ->
 * CANCELLED with nothing charged; payment declined -> CANCELLED with the
 * reservation released; a duplicate submit is one order (same answer
 * replayed), the same key with another body 422; concurrent orders for the
 * last unit -> exactly one CONFIRMED; bad input -> problem+json with nothing
 * moved; the order uses the server's price.
 *
 * The shop under test must have the seeded catalog, the demo user
 * (`demo` / `demo-password`), no user `other`, a payments simulator that
 * neither declines nor fails on its own, and a recommender that does not fail.
 */
import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { INTERNAL_KEY_HEADER } from './platform.js';

/** A running shop: its public entry point and the internal key its operator holds. */
export interface JourneyTarget {
  url: string;
  internalKey: string;
  close(): Promise<void>;
}

/** Registers the journeys as a `describe(title)` suite; `start` runs in its `before`, `close` in its `after`. */
export function describeJourneys(title: string, start: () => Promise<JourneyTarget>): void {
  let running: JourneyTarget | undefined;
  const target = (): JourneyTarget => {
    if (running === undefined) throw new Error('the shop under test is not running');
    return running;
  };
  let token: string;
  let otherToken: string;

  interface Answer {
    status: number;
    headers: Headers;
    body: Record<string, unknown>;
  }

  async function api(method: string, path: string, options: { token?: string; key?: string; body?: unknown; raw?: string; internal?: boolean } = {}): Promise<Answer> {
    const headers: Record<string, string> = {};
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    if (options.key !== undefined) headers['idempotency-key'] = options.key;
    if (options.internal === true) headers[INTERNAL_KEY_HEADER] = target().internalKey;
    let body: string | undefined;
    if (options.raw !== undefined) body = options.raw;
    else if (options.body !== undefined) body = JSON.stringify(options.body);
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${target().url}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
  }

  const order = (items: unknown, extra: Record<string, unknown> = {}, key: string = randomUUID(), as = token) => api('POST', '/api/orders', { token: as, key, body: { items, ...extra } });

  /** Follows the order's SSE stream until it reaches CONFIRMED or CANCELLED; returns every status seen, in order. */
  async function outcome(orderId: string, as = token): Promise<string[]> {
    const res = await fetch(`${target().url}/api/orders/${orderId}/events`, { headers: { authorization: `Bearer ${as}` }, signal: AbortSignal.timeout(60_000) });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const seen: string[] = [];
    let buffer = '';
    const decoder = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event.split('\n').find((l) => l.startsWith('data: '));
        if (data !== undefined) seen.push((JSON.parse(data.slice(6)) as { status: string }).status);
      }
    }
    return seen;
  }

  /** Polls `read` until `done` holds (for effects that follow the outcome asynchronously); no timing is asserted. */
  async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
    for (let i = 0; ; i++) {
      const value = await read();
      if (done(value) || i >= 600) return value;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  const setStock = async (sku: string, available: number) => assert.equal((await api('PUT', `/api/inventory/stock/${sku}`, { internal: true, body: { available } })).status, 200);
  const stockOf = async (sku: string) => (await api('GET', `/api/inventory/stock/${sku}`)).body as { available: number; reserved: number; sold: number };
  const chargesOf = async (orderId: string) => ((await api('GET', `/api/payments/charges?orderId=${orderId}`, { internal: true })).body.charges as { status: string; amount: number }[]);
  const ledger = async () => (await api('GET', '/api/payments/ledger', { internal: true })).body;
  const totals = async () => (await api('GET', '/api/inventory/totals', { internal: true })).body;
  const myOrders = async (as = token) => (await api('GET', '/api/orders?limit=100', { token: as })).body.orders as unknown[];
  const priceOf = async (sku: string) => ((await api('GET', `/api/catalog/prices/${sku}`)).body as { amount: number }).amount;

  function assertProblem(answer: Answer, status: number, type: string): void {
    assert.equal(answer.status, status, JSON.stringify(answer.body));
    assert.match(answer.headers.get('content-type') ?? '', /application\/problem\+json/);
    assert.ok(String(answer.body.type).endsWith(`/${type}`), `type ${String(answer.body.type)}, expected .../${type}`);
  }

  describe(title, () => {
    before(async () => {
      running = await start();
      const login = async (username: string, password: string) => {
        const r = await api('POST', '/api/users/token', { body: { username, password } });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        return r.body.access_token as string;
      };
      token = await login('demo', 'demo-password');
      assert.equal((await api('POST', '/api/users/register', { body: { username: 'other', password: 'other-password' } })).status, 201);
      otherToken = await login('other', 'other-password');
    });

    after(async () => {
      await running?.close();
    });

    it('confirms an order: 202 with a status URL, the SSE stream ends CONFIRMED, one charge of the server total, stock sold, one email', async () => {
      await setStock('KB-001', 10);
      const price = await priceOf('KB-001');
      const placed = await order([{ sku: 'KB-001', qty: 2 }]);
      assert.equal(placed.status, 202, JSON.stringify(placed.body));
      const orderId = placed.body.orderId as string;
      assert.equal(placed.body.status, 'PENDING');
      assert.equal(placed.body.statusUrl, `/api/orders/${orderId}`);
      assert.equal(placed.headers.get('location'), `/api/orders/${orderId}`);
      assert.equal(placed.body.total, 2 * price);

      const seen = await outcome(orderId);
      assert.equal(seen.at(-1), 'CONFIRMED');
      const forward = ['PENDING', 'INVENTORY_RESERVED', 'PAYMENT_CHARGED', 'CONFIRMED'];
      assert.deepEqual(seen, forward.filter((s) => seen.includes(s)), `statuses in order: ${seen.join(' > ')}`);

      const got = await api('GET', `/api/orders/${orderId}`, { token });
      assert.equal(got.status, 200);
      assert.equal(got.body.status, 'CONFIRMED');
      assert.deepEqual(got.body.items, [{ sku: 'KB-001', qty: 2, unitPrice: price }]);
      assert.deepEqual(await chargesOf(orderId), [{ chargeId: `${orderId}:chargePayment`, orderId, amount: 2 * price, currency: 'EUR', status: 'charged' }]);

      const stock = await eventually(() => stockOf('KB-001'), (s) => s.sold === 2);
      assert.deepEqual({ available: stock.available, reserved: stock.reserved, sold: stock.sold }, { available: 8, reserved: 0, sold: 2 });

      const emails = await eventually(async () => (await api('GET', `/api/notifications/emails?orderId=${orderId}`, { token })).body.emails as unknown[], (e) => e.length > 0);
      assert.equal(emails.length, 1);
      assert.match(String((emails[0] as { subject: string }).subject), new RegExp(orderId));

      // Another user cannot see it.
      assert.equal((await api('GET', `/api/orders/${orderId}`, { token: otherToken })).status, 404);
      assert.equal(((await api('GET', `/api/notifications/emails?orderId=${orderId}`, { token: otherToken })).body.emails as unknown[]).length, 0);
    });

    it('cancels an order that is out of stock, charging nothing and moving no stock', async () => {
      await setStock('MN-003', 1);
      const before = await ledger();
      const placed = await order([{ sku: 'MN-003', qty: 2 }]);
      assert.equal(placed.status, 202);
      const orderId = placed.body.orderId as string;
      assert.equal((await outcome(orderId)).at(-1), 'CANCELLED');
      const got = await api('GET', `/api/orders/${orderId}`, { token });
      assert.equal(got.body.status, 'CANCELLED');
      assert.match(String(got.body.failureReason), /reserveInventory/);
      assert.deepEqual(await chargesOf(orderId), []);
      assert.deepEqual(await ledger(), before);
      const stock = await stockOf('MN-003');
      assert.deepEqual({ available: stock.available, reserved: stock.reserved }, { available: 1, reserved: 0 });
    });

    it('cancels an order whose payment is declined, releasing its reservation', async () => {
      await setStock('HS-004', 5);
      const before = await ledger();
      const placed = await order([{ sku: 'HS-004', qty: 3 }], { paymentMethod: 'card_declined' });
      assert.equal(placed.status, 202);
      const orderId = placed.body.orderId as string;
      assert.equal((await outcome(orderId)).at(-1), 'CANCELLED');
      const got = await api('GET', `/api/orders/${orderId}`, { token });
      assert.match(String(got.body.failureReason), /chargePayment/);
      const reservation = await api('GET', `/api/inventory/reservations/${orderId}:reserveInventory`, { internal: true });
      assert.equal(reservation.body.status, 'released');
      const stock = await stockOf('HS-004');
      assert.deepEqual({ available: stock.available, reserved: stock.reserved, sold: stock.sold }, { available: 5, reserved: 0, sold: 0 });
      assert.deepEqual(await chargesOf(orderId), []);
      assert.deepEqual(await ledger(), before);
    });

    it('makes one order of a duplicate submit (the answer replayed), and refuses the key with another body (422)', async () => {
      await setStock('MS-002', 50);
      const countBefore = (await myOrders()).length;
      const key = randomUUID();
      const items = [{ sku: 'MS-002', qty: 1 }];
      // Concurrent duplicates: one runs, the others wait (409 in progress) or get the replay.
      const burst = await Promise.all(Array.from({ length: 5 }, () => order(items, {}, key)));
      for (const r of burst) assert.ok(r.status === 202 || (r.status === 409 && String(r.body.type).endsWith('/idempotency-in-progress')), `${r.status} ${JSON.stringify(r.body)}`);
      const first = burst.find((r) => r.status === 202) as Answer;
      const orderId = first.body.orderId as string;
      for (const r of burst.filter((b) => b.status === 202)) assert.equal(r.body.orderId, orderId);

      const again = await order(items, {}, key);
      assert.equal(again.status, 202);
      assert.equal(again.headers.get('idempotent-replayed'), 'true');
      assert.deepEqual(again.body, first.body);
      assert.equal((await outcome(orderId)).at(-1), 'CONFIRMED');
      assert.equal((await myOrders()).length, countBefore + 1);
      assert.equal((await chargesOf(orderId)).length, 1);

      const reused = await order([{ sku: 'MS-002', qty: 2 }], {}, key);
      assertProblem(reused, 422, 'idempotency-key-reused');
      assert.equal((await myOrders()).length, countBefore + 1);
      // Keys are per caller: another user's identical key is another order.
      const theirs = await order(items, {}, key, otherToken);
      assert.equal(theirs.status, 202);
      assert.notEqual(theirs.body.orderId, orderId);
      assert.equal((await outcome(theirs.body.orderId as string, otherToken)).at(-1), 'CONFIRMED');
    });

    it('gives the last unit to exactly one of many concurrent orders', async () => {
      await setStock('LE-006', 1);
      const before = await ledger();
      const placed = await Promise.all(Array.from({ length: 8 }, (_, i) => order([{ sku: 'LE-006', qty: 1 }], {}, randomUUID(), i % 2 === 0 ? token : otherToken)));
      for (const p of placed) assert.equal(p.status, 202, JSON.stringify(p.body));
      const outcomes = await Promise.all(placed.map((p, i) => outcome(p.body.orderId as string, i % 2 === 0 ? token : otherToken)));
      const finals = outcomes.map((o) => o.at(-1));
      assert.equal(finals.filter((s) => s === 'CONFIRMED').length, 1, finals.join(','));
      assert.equal(finals.filter((s) => s === 'CANCELLED').length, 7, finals.join(','));
      const stock = await eventually(() => stockOf('LE-006'), (s) => s.sold === 1);
      assert.deepEqual({ available: stock.available, reserved: stock.reserved, sold: stock.sold }, { available: 0, reserved: 0, sold: 1 });
      const after = await ledger();
      assert.equal(Number(after.charges) - Number(before.charges), 1);
      assert.equal(Number(after.net) - Number(before.net), await priceOf('LE-006'));
    });

    it('uses the server price, never the client one, and the price current when the order is placed', async () => {
      await setStock('CB-005', 100);
      const viewed = await api('GET', '/api/product-page/CB-005', { token });
      assert.equal(viewed.status, 200);
      const shown = (viewed.body.price as { amount: number }).amount;
      const raised = shown + 100;
      assert.equal((await api('PUT', '/api/catalog/prices/CB-005', { internal: true, body: { amount: raised } })).status, 200);
      try {
        const placed = await order([{ sku: 'CB-005', qty: 3, unitPrice: 1, price: 1 }], { total: 3 });
        assert.equal(placed.status, 202, JSON.stringify(placed.body));
        assert.equal(placed.body.total, 3 * raised);
        const orderId = placed.body.orderId as string;
        assert.equal((await outcome(orderId)).at(-1), 'CONFIRMED');
        assert.equal((await chargesOf(orderId))[0]?.amount, 3 * raised);
      } finally {
        await api('PUT', '/api/catalog/prices/CB-005', { internal: true, body: { amount: shown } });
      }
    });

    it('answers bad input with problem+json, and moves nothing', async () => {
      const stockBefore = await totals();
      const ledgerBefore = await ledger();
      const ordersBefore = (await myOrders()).length;
      const cases: [string, () => Promise<Answer>, number, string][] = [
        ['unknown sku', () => order([{ sku: 'NOPE-404', qty: 1 }]), 422, 'unknown-product'],
        ['one unknown among known', () => order([{ sku: 'KB-001', qty: 1 }, { sku: 'NOPE-405', qty: 1 }]), 422, 'unknown-product'],
        ['qty 0', () => order([{ sku: 'KB-001', qty: 0 }]), 400, 'validation'],
        ['qty -1', () => order([{ sku: 'KB-001', qty: -1 }]), 400, 'validation'],
        ['qty huge', () => order([{ sku: 'KB-001', qty: 1e12 }]), 400, 'validation'],
        ['qty fractional', () => order([{ sku: 'KB-001', qty: 1.5 }]), 400, 'validation'],
        ['qty over the limit in two lines', () => order([{ sku: 'KB-001', qty: 60 }, { sku: 'KB-001', qty: 60 }]), 400, 'validation'],
        ['no items', () => order([]), 400, 'validation'],
        ['items not an array', () => order('KB-001'), 400, 'validation'],
        ['bad sku syntax', () => order([{ sku: '../../etc', qty: 1 }]), 400, 'validation'],
        ['unknown payment method', () => order([{ sku: 'KB-001', qty: 1 }], { paymentMethod: 'iou' }), 400, 'validation'],
        ['malformed JSON', () => api('POST', '/api/orders', { token, key: randomUUID(), raw: '{"items": [' }), 400, 'malformed-json'],
        ['body not an object', () => api('POST', '/api/orders', { token, key: randomUUID(), raw: '[1,2]' }), 400, 'validation'],
        ['missing auth', () => api('POST', '/api/orders', { key: randomUUID(), body: { items: [{ sku: 'KB-001', qty: 1 }] } }), 401, 'unauthenticated'],
        ['forged token', () => order([{ sku: 'KB-001', qty: 1 }], {}, randomUUID(), `${token.slice(0, -4)}AAAA`), 401, 'invalid-token'],
        ['missing Idempotency-Key', () => api('POST', '/api/orders', { token, body: { items: [{ sku: 'KB-001', qty: 1 }] } }), 400, 'idempotency-key-missing'],
        ['internal route without the key', () => api('POST', '/api/payments/charges', { key: randomUUID(), body: { amount: 100, currency: 'EUR' } }), 403, 'internal-route'],
        ['internal route with a user token', () => api('PUT', '/api/inventory/stock/KB-001', { token, body: { available: 1_000 } }), 403, 'internal-route'],
      ];
      for (const [name, run, status, type] of cases) {
        const answer = await run();
        try {
          assertProblem(answer, status, type);
        } catch (error) {
          throw new Error(`${name}: ${(error as Error).message}`);
        }
      }
      assert.equal((await api('GET', '/api/orders/not-an-order', { token })).status, 404);
      assert.deepEqual(await totals(), stockBefore);
      assert.deepEqual(await ledger(), ledgerBefore);
      assert.equal((await myOrders()).length, ordersBefore);
    });

    it('serves the product page from four dependencies, and 404 for an unknown product', async () => {
      const page = await api('GET', '/api/product-page/KB-001', { token });
      assert.equal(page.status, 200);
      assert.equal(page.body.name, 'Mechanical keyboard');
      assert.equal((page.body.price as { amount: number }).amount, await priceOf('KB-001'));
      assert.equal(typeof (page.body.availability as { available: number }).available, 'number');
      assert.deepEqual(page.body.recommendations, { items: ['MS-002', 'MN-003', 'HS-004', 'CB-005'], source: 'live' });
      assertProblem(await api('GET', '/api/product-page/NOPE-1'), 404, 'unknown-product');
    });
  });
}
