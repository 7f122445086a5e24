import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestShop, type TestShop } from '../../apps/shop/src/invariants/harness.js';
import { LoadTargetError, runLoad } from './load.js';
import { prepareShopWorkload } from './shop.js';

describe('the shop workload against a real monolith shop', () => {
  let shop: TestShop;
  before(async () => {
    shop = await startTestShop({}, 'load-shop-');
  });
  after(async () => {
    await shop?.close();
  });

  it('places orders with real tokens and idempotency keys; they reach terminal states', async () => {
    const work = await prepareShopWorkload({
      target: shop.shop.url,
      users: 3,
      mix: { placeOrder: 4, productPage: 2, browse: 1, myOrders: 1 },
      paymentMethods: { card_ok: 3, card_declined: 1 },
      seed: 7,
      internalKey: shop.target.internalKey,
      restock: 500,
    });
    assert.equal(work.usernames.length, 3);
    assert.ok(work.catalogSkus.includes('KB-001'));

    const result = await runLoad({ target: shop.shop.url, phases: [{ name: 'steady', durationMs: 3000, rate: 12 }], ...work.loadOptions });
    const kinds = result.total.byKind;
    const orders = kinds['place-order']!;
    assert.ok(orders.sent > 0 && kinds['product-page']!.sent > 0 && kinds.browse!.sent > 0 && kinds['my-orders']!.sent > 0, JSON.stringify(Object.keys(kinds)));
    assert.equal(result.total.failed, 0, JSON.stringify(result.total.statuses));
    assert.equal(orders.ok, orders.sent);
    assert.equal(work.orders.length, orders.sent);
    assert.equal(work.placeOrderRequests(), orders.sent);
    assert.equal(result.total.statuses['202'], orders.sent);
    assert.equal(new Set(work.orders.map((o) => o.orderId)).size, work.orders.length, 'one order per request');
    assert.equal(new Set(work.orders.map((o) => o.idempotencyKey)).size, work.orders.length, 'a fresh key per order');

    const outcomes = await work.waitForOrders({ timeoutMs: 30_000, pollMs: 100 });
    assert.ok(outcomes.settled, JSON.stringify(outcomes));
    assert.equal(outcomes.placed, orders.sent);
    assert.equal(outcomes.confirmed + outcomes.cancelled, outcomes.placed);
    assert.equal(outcomes.unanswered, 0);
    assert.ok(outcomes.confirmed > 0, JSON.stringify(outcomes));
    // Declined cards: cancelled after the reservation, which the saga released (compensated).
    assert.ok(outcomes.cancelled > 0 && outcomes.compensated === outcomes.cancelled, JSON.stringify(outcomes));
    assert.deepEqual(Object.keys(outcomes.failedSteps), ['chargePayment']);

    // The orders belong to the load users: each is visible to its owner only.
    const first = work.orders[0]!;
    const token = await shop.login(work.usernames[first.user]!, 'load-password-1');
    assert.equal((await shop.api('GET', first.statusUrl, { token })).status, 200);
  });

  it('logs existing users in again instead of failing', async () => {
    const again = await prepareShopWorkload({ target: shop.shop.url, users: 2, mix: { browse: 1 } });
    assert.deepEqual(again.usernames, ['load-user-0', 'load-user-1']);
  });

  it('refuses a target that is not loopback', async () => {
    await assert.rejects(prepareShopWorkload({ target: 'http://10.0.0.1:3000' }), LoadTargetError);
  });
});
