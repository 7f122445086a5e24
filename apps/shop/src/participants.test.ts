/**
 * The participant contract of inventory and payments, and what survives a
 * restart, on a real monolith: a release (refund) of an operation that never
 * arrived leaves a tombstone, so the late operation is refused; expired
 * reservations are swept back into stock; a flaky recommender degrades the
 * product page instead of failing it; data, the catalog and tokens survive a
 * restart on the same data directory.
 */
import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig, type ShopConfig } from './config.js';
import { INTERNAL_KEY_HEADER } from './platform.js';
import { startShop, type Shop } from './shop.js';

let dir: string;
let config: ShopConfig;
let shop: Shop;

async function call(method: string, path: string, options: { key?: string; body?: unknown; token?: string; internal?: boolean } = {}) {
  const headers: Record<string, string> = {};
  if (options.internal !== false) headers[INTERNAL_KEY_HEADER] = config.internalKey;
  if (options.key !== undefined) headers['idempotency-key'] = options.key;
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${shop.url}${path}`, { method, headers, ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }) });
  const text = await res.text();
  return { status: res.status, body: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown> };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shop-participants-'));
  config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      port: 0,
      logLevel: 'silent',
      telemetry: { enabled: false },
      internalKey: 'test-internal-key-0123456789',
      payments: { latencyMs: 0, latencyJitterMs: 0 },
      recommendations: { latencyMs: 0, errorRate: 1 },
      inventory: { reservationTtlMs: 1_000, sweepIntervalMs: 3_600_000 },
      orders: { sagaDeadlineMs: 500 },
    },
  });
  shop = await startShop(config);
});

after(async () => {
  await shop?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('participants and restarts', () => {
  it('inventory: a release before the reserve leaves a tombstone, and the late reserve is refused', async () => {
    const key = `${randomUUID()}:reserveInventory`;
    const released = await call('POST', `/api/inventory/reservations/${encodeURIComponent(key)}/release`, { key: `${key}:compensate`, body: {} });
    assert.equal(released.status, 200);
    assert.equal(released.body.status, 'tombstone');
    const before = (await call('GET', '/api/inventory/stock/KB-001')).body;
    const late = await call('POST', '/api/inventory/reservations', { key, body: { items: [{ sku: 'KB-001', qty: 1 }] } });
    assert.equal(late.status, 409);
    assert.match(String(late.body.type), /reservation-cancelled$/);
    assert.deepEqual((await call('GET', '/api/inventory/stock/KB-001')).body, before);
  });

  it('inventory: reserves once per key, and the sweeper returns an expired reservation to stock', async () => {
    const key = `${randomUUID()}:reserveInventory`;
    const before = (await call('GET', '/api/inventory/stock/MS-002')).body as { available: number };
    const first = await call('POST', '/api/inventory/reservations', { key, body: { items: [{ sku: 'MS-002', qty: 2 }] } });
    const again = await call('POST', '/api/inventory/reservations', { key, body: { items: [{ sku: 'MS-002', qty: 2 }] } });
    assert.equal(first.status, 201);
    assert.deepEqual(again.body, first.body);
    assert.equal(((await call('GET', '/api/inventory/stock/MS-002')).body as { available: number }).available, before.available - 2);
    let status = 'held';
    for (let i = 0; i < 200 && status === 'held'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      await shop.inventory.sweep();
      status = String((await call('GET', `/api/inventory/reservations/${encodeURIComponent(key)}`)).body.status);
    }
    assert.equal(status, 'expired');
    assert.equal(((await call('GET', '/api/inventory/stock/MS-002')).body as { available: number }).available, before.available);
  });

  it('payments: charges once per key; a refund before the charge leaves a tombstone and the late charge is refused', async () => {
    const key = `${randomUUID()}:chargePayment`;
    const body = { orderId: 'o-1', amount: 1_234, currency: 'EUR' };
    const a = await call('POST', '/api/payments/charges', { key, body });
    const b = await call('POST', '/api/payments/charges', { key, body });
    assert.equal(a.status, 201);
    assert.deepEqual(b.body, a.body);
    const ledger = (await call('GET', '/api/payments/ledger')).body;
    assert.equal(ledger.charges, 1);
    assert.equal(ledger.net, 1_234);
    const refund1 = await call('POST', `/api/payments/charges/${encodeURIComponent(key)}/refund`, { key: `${key}:compensate`, body: {} });
    const refund2 = await call('POST', `/api/payments/charges/${encodeURIComponent(key)}/refund`, { key: `${key}:compensate-again`, body: {} });
    assert.equal(refund1.body.status, 'refunded');
    assert.equal(refund2.body.status, 'refunded');
    assert.equal((await call('GET', '/api/payments/ledger')).body.net, 0);

    const never = `${randomUUID()}:chargePayment`;
    assert.equal((await call('POST', `/api/payments/charges/${encodeURIComponent(never)}/refund`, { key: `${never}:compensate`, body: {} })).body.status, 'tombstone');
    const late = await call('POST', '/api/payments/charges', { key: never, body });
    assert.equal(late.status, 409);
    assert.match(String(late.body.type), /charge-cancelled$/);
    assert.equal((await call('GET', '/api/payments/ledger')).body.charges, 1);
  });

  it('payments: the simulator can be switched to an outage and back at runtime (internal only, validated)', async () => {
    assert.equal((await call('PUT', '/api/payments/simulator', { body: { errorRate: 1 }, internal: false })).status, 403);
    assert.equal((await call('PUT', '/api/payments/simulator', { body: { errorRate: 2 } })).status, 400);
    assert.equal((await call('PUT', '/api/payments/simulator', { body: { errorRate: 1 } })).body.errorRate, 1);
    const key = `${randomUUID()}:chargePayment`;
    const failed = await call('POST', '/api/payments/charges', { key, body: { amount: 5, currency: 'EUR' } });
    assert.equal(failed.status, 503, 'an outage: every charge fails, retryable');
    assert.equal((await call('PUT', '/api/payments/simulator', { body: { errorRate: 0 } })).body.errorRate, 0);
    assert.equal((await call('POST', '/api/payments/charges', { key, body: { amount: 5, currency: 'EUR' } })).status, 201, 'the same key charges once the processor is back');
  });

  it('product page: a failing recommender degrades to an empty list; the page still answers', async () => {
    const page = await call('GET', '/api/product-page/KB-001', { internal: false });
    assert.equal(page.status, 200);
    assert.deepEqual(page.body.recommendations, { items: [], source: 'none' });
    assert.equal(typeof (page.body.price as { amount: number }).amount, 'number');
  });

  it('keeps its data, catalog and signing key across a restart on the same data directory', async () => {
    const token = (await call('POST', '/api/users/token', { internal: false, body: { username: 'demo', password: 'demo-password' } })).body.access_token as string;
    const placed = await call('POST', '/api/orders', { internal: false, token, key: randomUUID(), body: { items: [{ sku: 'HS-004', qty: 1 }] } });
    assert.equal(placed.status, 202);
    const orderId = placed.body.orderId as string;
    let status = '';
    for (let i = 0; i < 400 && status !== 'CONFIRMED' && status !== 'CANCELLED'; i++) {
      await new Promise((r) => setTimeout(r, 25));
      status = String((await call('GET', `/api/orders/${orderId}`, { internal: false, token })).body.status);
    }
    assert.equal(status, 'CONFIRMED');
    const products = (await call('GET', '/api/catalog/products')).body.products as unknown[];
    await shop.close();

    shop = await startShop(config);
    const again = await call('GET', `/api/orders/${orderId}`, { internal: false, token });
    assert.equal(again.status, 200, 'the token of the first run still verifies');
    assert.equal(again.body.status, 'CONFIRMED');
    assert.deepEqual((await call('GET', '/api/catalog/products')).body.products, products);
  });
});
