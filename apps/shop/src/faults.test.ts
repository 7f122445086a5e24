/**
 * Fault injection in the monolith (`@bulwark/faults` wired by `shop.ts`): a
 * real shop in a temp dir, its rules from a file at start and from
 * `/admin/faults` at runtime. Proves that an inbound error on payments
 * cancels orders through the saga's compensation and that clearing it lets
 * orders confirm again, that an outbound hang on recommendations degrades the
 * product page instead of failing it, that injections are counted in
 * `/metrics`, that a bad rules file stops start-up naming the field, and that
 * the admin API wants the internal key. No timing is asserted.
 */
import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError } from './config.js';
import { settleOrder, startTestShop, type TestShop } from './invariants/harness.js';

const PROBE = 'GET /api/catalog/products/FAULT-PROBE';

describe('fault injection in the monolith', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shop-faults-'));
  const rulesFile = join(dir, 'faults.json');
  let t: TestShop;
  let token: string;

  before(async () => {
    // A rule in force from the start, on a route nothing else uses.
    writeFileSync(rulesFile, JSON.stringify({ seed: 1234, rules: [{ id: 'from-file', kind: 'error', direction: 'inbound', match: { route: PROBE }, status: 500 }] }));
    t = await startTestShop({ faults: { file: rulesFile }, productPage: { timeoutMs: 300 } }, 'shop-faults-');
    token = await t.login('demo', 'demo-password');
  });
  after(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const rules = () => t.api('GET', '/admin/faults', { internal: true });
  const order = () => t.api('POST', '/api/orders', { token, key: randomUUID(), body: { items: [{ sku: 'KB-001', qty: 1 }] } });

  it('loads the rules file at start (its seed included) and serves the admin API only with the internal key', async () => {
    const refused = await t.api('GET', '/admin/faults');
    assert.equal(refused.status, 403);
    assert.match(refused.headers.get('content-type') ?? '', /application\/problem\+json/);
    assert.equal((await t.api('PUT', '/admin/faults/x', { body: { kind: 'error', direction: 'inbound' } })).status, 403);
    assert.equal((await t.api('DELETE', '/admin/faults')).status, 403);

    const listed = await rules();
    assert.equal(listed.status, 200);
    assert.equal(listed.body.seed, 1234);
    assert.deepEqual((listed.body.rules as { id: string }[]).map((r) => r.id), ['from-file']);
    const probe = await t.api('GET', '/api/catalog/products/FAULT-PROBE');
    assert.equal(probe.status, 500);
    assert.equal(probe.headers.get('x-bulwark-fault'), 'from-file');
    assert.equal(probe.body.type, 'https://bulwark.dev/problems/faults/injected');
    assert.equal((await t.api('GET', '/api/catalog/products/KB-001')).status, 200, 'other routes are untouched');

    const bad = await t.api('PUT', '/admin/faults/slow', { internal: true, body: { kind: 'latency', direction: 'inbound', match: { module: 'payment' }, latency: { fixedMs: 5 } } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.type, 'https://bulwark.dev/problems/faults/invalid-rule');
    assert.equal(bad.body.field, 'match.module', 'module names are checked against the shop modules');
  });

  it('an inbound error on payments cancels orders (compensated, nothing charged); once cleared, orders confirm again', async () => {
    const set = await t.api('PUT', '/admin/faults/payments-down', { internal: true, body: { kind: 'error', direction: 'inbound', match: { module: 'payments', route: 'POST /api/payments/charges' }, status: 503 } });
    assert.equal(set.status, 200, JSON.stringify(set.body));

    const placed = await order();
    assert.equal(placed.status, 202, JSON.stringify(placed.body));
    const orderId = placed.body.orderId as string;
    const cancelled = await settleOrder(t, orderId, token);
    assert.equal(cancelled.status, 'CANCELLED');
    const charges = await t.api('GET', `/api/payments/charges?orderId=${orderId}`, { internal: true });
    assert.ok((charges.body.charges as { status: string }[]).every((c) => c.status !== 'charged'), JSON.stringify(charges.body));
    const stats = ((await rules()).body.rules as { id: string; stats: { injected: number } }[]).find((r) => r.id === 'payments-down')?.stats;
    assert.ok((stats?.injected ?? 0) >= 1);

    const metrics = await fetch(`${t.shop.url}/metrics`).then((r) => r.text());
    assert.match(metrics, /bulwark_faults_injected_total\{[^}]*rule="payments-down"[^}]*kind="error"[^}]*direction="inbound"[^}]*\} [1-9]/);

    assert.equal((await t.api('DELETE', '/admin/faults/payments-down', { internal: true })).status, 204);
    // The orders->payments breaker may still be open for a moment after the outage: the next orders may be refused, then confirm.
    let confirmed: Record<string, unknown> | undefined;
    for (let i = 0; i < 20 && confirmed === undefined; i++) {
      const next = await order();
      assert.equal(next.status, 202);
      const outcome = await settleOrder(t, next.body.orderId as string, token);
      if (outcome.status === 'CONFIRMED') confirmed = outcome;
      else await new Promise((resolve) => setTimeout(resolve, 500));
    }
    assert.ok(confirmed !== undefined, 'an order confirmed once the fault was cleared');
  });

  it('an outbound hang on recommendations: the product page still answers, without live recommendations', async () => {
    const live = await t.api('GET', '/api/product-page/KB-001');
    assert.equal(live.status, 200);
    assert.equal((live.body.recommendations as { source: string }).source, 'live');

    const set = await t.api('PUT', '/admin/faults/recs-hang', { internal: true, body: { kind: 'hang', direction: 'outbound', match: { dependency: 'recommendations' } } });
    assert.equal(set.status, 200);
    for (let i = 0; i < 3; i++) {
      const page = await t.api('GET', '/api/product-page/KB-001');
      assert.equal(page.status, 200, JSON.stringify(page.body));
      assert.notEqual((page.body.recommendations as { source: string }).source, 'live');
      assert.equal(page.body.sku, 'KB-001');
    }
    // Every hung call was let go when the page's client gave up on it.
    for (let i = 0; i < 200 && t.shop.faults.held > 0; i++) await new Promise((resolve) => setTimeout(resolve, 25));
    assert.equal(t.shop.faults.held, 0);
    assert.ok(t.shop.faults.stats('recs-hang').injected >= 1);

    assert.equal((await t.api('DELETE', '/admin/faults', { internal: true })).status, 204);
    const again = await t.api('GET', '/api/product-page/KB-001');
    assert.equal((again.body.recommendations as { source: string }).source, 'live');
  });

  it('a bad rules file stops start-up with a ConfigError naming faults.file and the field', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ rules: [{ id: 'ok', kind: 'reset', direction: 'outbound' }, { id: 'slow', kind: 'latency', direction: 'inbound', latency: { distribution: 'lognormal', medianMs: 0, sigma: 1 } }] }));
    await assert.rejects(startTestShop({ faults: { file: bad } }, 'shop-faults-bad-'), (e: unknown) => e instanceof ConfigError && e.key === 'faults.file' && e.message.includes('rules[1].latency.medianMs') && e.message.includes(bad));
    await assert.rejects(startTestShop({ faults: { file: join(dir, 'missing.json') } }, 'shop-faults-bad-'), (e: unknown) => e instanceof ConfigError && e.key === 'faults.file');
  });
});
