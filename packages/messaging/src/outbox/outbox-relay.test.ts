import { strict as assert } from 'node:assert';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql, type Store } from '@bulwark/store';
import type { Envelope } from '../envelope.js';
import { isInvalidMessageError } from '../errors.js';
import { defineMessage } from '../message-type.js';
import { DeliveryLog } from '../testing/index.js';
import { openFixtureStore, OrderPlaced, testDatabase, type FixtureDb, type TestDatabase } from '../testing/messaging-fixture.js';
import { connectEmbeddedTransport, type EmbeddedTransport } from '../transport/embedded/index.js';
import type { Transport } from '../transport/transport.js';
import { Outbox } from './outbox.js';
import { OutboxRelay } from './outbox-relay.js';

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`outbox and relay on ${engine}`, () => {
    const cleanups: (() => Promise<unknown>)[] = [];
    after(async () => {
      for (const c of cleanups.reverse()) await c().catch(() => undefined);
    });
    const setup = async (): Promise<{ store: Store<FixtureDb>; transport: EmbeddedTransport; d: TestDatabase }> => {
      const d = await testDatabase(engine, 'ob');
      const store = await openFixtureStore(d);
      const bus = await testDatabase(engine, 'bus');
      const transport = await connectEmbeddedTransport({ url: bus.url, module: bus.module, pollIntervalMs: 20 });
      cleanups.push(d.cleanup, bus.cleanup, () => store.close(), () => transport.close());
      return { store, transport, d };
    };
    const outbox = new Outbox();

    it('rejects a payload that fails its schema with a typed error, writing nothing', async () => {
      const { store } = await setup();
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.db.insertInto('orders').values({ id: 'o1', status: 'PLACED' }).execute();
          await outbox.add(tx, 'orders', { type: OrderPlaced, key: 'o1', payload: { orderId: 'o1', n: 'one' as unknown as number } });
        }),
        (e: unknown) => isInvalidMessageError(e) && e.type === 'OrderPlaced' && /n must be a number/.test(e.message),
      );
      assert.equal((await store.db.selectFrom('orders').selectAll().execute()).length, 0);
      assert.equal((await store.db.selectFrom('messaging_outbox').selectAll().execute()).length, 0);
    });

    it('commits the message with the business change, or neither', async () => {
      const { store } = await setup();
      await store.transaction(async (tx) => {
        await tx.db.insertInto('orders').values({ id: 'o2', status: 'PLACED' }).execute();
        await outbox.add(tx, 'orders', { type: OrderPlaced, key: 'o2', payload: { orderId: 'o2', n: 1 }, headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } });
      });
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.db.insertInto('orders').values({ id: 'o3', status: 'PLACED' }).execute();
          await outbox.add(tx, 'orders', { type: OrderPlaced, key: 'o3', payload: { orderId: 'o3', n: 1 } });
          throw new Error('payment declined');
        }),
      );
      const rows = await store.db.selectFrom('messaging_outbox').select(['key', 'body', 'published_at']).execute();
      assert.deepEqual(rows.map((r) => r.key), ['o2']);
      const envelope = JSON.parse(rows[0]!.body) as Envelope;
      assert.deepEqual(envelope.headers, { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
      assert.equal(envelope.type, 'OrderPlaced');
      assert.equal(envelope.version, 1);
    });

    it('publishes on commit without waiting for its poll interval, and marks rows published', async () => {
      const { store, transport } = await setup();
      const log = new DeliveryLog();
      const sub = await transport.subscribe('orders', 'audit', log.handler, { ackWaitMs: 5_000 });
      const relay = new OutboxRelay({ store, transport, pollIntervalMs: 600_000 });
      await relay.start();
      cleanups.push(() => relay.stop());
      await sleep(50);
      await store.transaction((tx) => outbox.add(tx, 'orders', { type: OrderPlaced, key: 'o4', payload: { orderId: 'o4', n: 4 } }));
      const [d] = await log.waitFor(1, 10_000);
      assert.deepEqual(d!.envelope!.payload, { orderId: 'o4', n: 4 });
      await relay.stop();
      await sub.stop();
      const row = await store.db.selectFrom('messaging_outbox').select(['published_at', 'attempts']).executeTakeFirstOrThrow();
      assert.notEqual(row.published_at, null);
    });

    it('keeps the order of each key across batches', async () => {
      const { store, transport } = await setup();
      const log = new DeliveryLog();
      const sub = await transport.subscribe('orders', 'ordered', log.handler, { ackWaitMs: 5_000 });
      for (let i = 0; i < 60; i++) {
        await store.transaction((tx) => outbox.add(tx, 'orders', { type: OrderPlaced, key: `k${i % 4}`, payload: { orderId: `k${i % 4}`, n: i } }));
      }
      const relay = new OutboxRelay({ store, transport, batchSize: 7 });
      await relay.start();
      await log.waitFor(60);
      await relay.stop();
      await sub.stop();
      for (let k = 0; k < 4; k++) {
        const got = log.deliveries.map((d) => d.envelope!.payload as { orderId: string; n: number }).filter((p) => p.orderId === `k${k}`).map((p) => p.n);
        assert.deepEqual(got, [...got].sort((a, b) => a - b), `order of key k${k}`);
        assert.equal(got.length, 15);
      }
    });

    it('backs off through a broker outage and loses nothing', async () => {
      const { store, transport } = await setup();
      let failuresLeft = 3;
      const flaky: Transport = Object.create(transport) as Transport;
      flaky.publish = (topic, envelope) => (failuresLeft-- > 0 ? Promise.reject(new Error('broker unreachable')) : transport.publish(topic, envelope));
      const failures: number[] = [];
      const relay = new OutboxRelay({ store, transport: flaky, pollIntervalMs: 50 });
      relay.on('publishFailed', (e) => failures.push(e.attempts));
      const log = new DeliveryLog();
      const sub = await transport.subscribe('orders', 'outage', log.handler, { ackWaitMs: 5_000 });
      for (let i = 0; i < 5; i++) await store.transaction((tx) => outbox.add(tx, 'orders', { type: OrderPlaced, key: 'same', payload: { orderId: 'same', n: i } }));
      await relay.start();
      await log.waitFor(5);
      await relay.stop();
      await sub.stop();
      assert.deepEqual(failures, [1, 2, 3]);
      assert.deepEqual(log.deliveries.map((d) => (d.envelope!.payload as { n: number }).n), [0, 1, 2, 3, 4]);
      const first = await store.db.selectFrom('messaging_outbox').select(['attempts', 'last_error']).orderBy('seq').executeTakeFirstOrThrow();
      assert.equal(first.attempts, 3);
      assert.equal(first.last_error, 'broker unreachable');
    });

    it('lets one relay own the partitions, and another take over when it stops', async () => {
      const { store, transport, d } = await setup();
      const second = await openFixtureStore(d);
      cleanups.push(() => second.close());
      const a = new OutboxRelay({ store, transport, leaseMs: 60_000, owner: 'a' });
      const b = new OutboxRelay({ store: second, transport, leaseMs: 60_000, owner: 'b' });
      await a.relayOnce();
      await b.relayOnce();
      assert.equal(a.ownedPartitions().length, 16);
      assert.equal(b.ownedPartitions().length, 0);
      await a.start();
      await a.stop();
      await b.relayOnce();
      assert.equal(b.ownedPartitions().length, 16);
      const owners = await sql<{ owner: string }>`select distinct owner from messaging_outbox_lease`.execute(store.db);
      assert.deepEqual(owners.rows.map((r) => r.owner), ['b']);
    });

    it('takes over the partitions of a relay that died holding them, once its lease expires', async () => {
      const { store, transport, d } = await setup();
      const second = await openFixtureStore(d);
      cleanups.push(() => second.close());
      const dead = new OutboxRelay({ store, transport, leaseMs: 300, owner: 'dead' });
      await dead.relayOnce(); // takes every partition, then "dies": never renews, never releases
      const heir = new OutboxRelay({ store: second, transport, leaseMs: 60_000, owner: 'heir' });
      await heir.relayOnce();
      assert.equal(heir.ownedPartitions().length, 0, 'the lease still holds');
      await sleep(350);
      assert.deepEqual(dead.ownedPartitions(), [], 'a relay whose lease ran out stops relaying');
      const log = new DeliveryLog();
      const sub = await transport.subscribe('orders', 'takeover', log.handler, { ackWaitMs: 5_000 });
      await store.transaction((tx) => outbox.add(tx, 'orders', { type: OrderPlaced, key: 'late', payload: { orderId: 'late', n: 1 } }));
      assert.equal(await heir.relayOnce(), 1);
      assert.equal(heir.ownedPartitions().length, 16);
      await log.waitFor(1);
      await sub.stop();
    });

    it('publishes each message once when several relays run', async () => {
      const { store, transport, d } = await setup();
      const log = new DeliveryLog();
      const sub = await transport.subscribe('orders', 'many-relays', log.handler, { ackWaitMs: 5_000 });
      const relays = await Promise.all(
        [0, 1, 2].map(async (i) => {
          const s = i === 0 ? store : await openFixtureStore(d);
          if (i > 0) cleanups.push(() => s.close());
          return new OutboxRelay({ store: s, transport, pollIntervalMs: 20, leaseMs: 60_000, owner: `r${i}` });
        }),
      );
      await Promise.all(relays.map((r) => r.start()));
      for (let i = 0; i < 30; i++) await store.transaction((tx) => outbox.add(tx, 'orders', { type: OrderPlaced, key: `k${i % 5}`, payload: { orderId: `k${i % 5}`, n: i } }));
      await log.waitFor(30);
      await sleep(200);
      await Promise.all(relays.map((r) => r.stop()));
      await sub.stop();
      assert.equal(new Set(log.ids()).size, 30);
      assert.equal(log.deliveries.length, 30);
    });

    it('refuses a topic that is not a plain name', async () => {
      const { store } = await setup();
      const Other = defineMessage('Other', 1, (p) => p);
      await assert.rejects(store.transaction((tx) => outbox.add(tx, 'orders placed!', { type: Other, key: 'k', payload: {} })), /topic/);
    });
  });
}
