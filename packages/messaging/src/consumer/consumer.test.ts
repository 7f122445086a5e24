import { strict as assert } from 'node:assert';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Store } from '@bulwark/store';
import { testEnvelope } from '../testing/index.js';
import { openFixtureStore, OrderPlaced, testDatabase, type FixtureDb } from '../testing/messaging-fixture.js';
import { connectEmbeddedTransport, type EmbeddedTransport } from '../transport/embedded/index.js';
import { defineMessage } from '../message-type.js';
import { parseDelivery } from '../envelope-codec.js';
import type { Delivery } from '../transport/transport.js';
import { Consumer, consume, type ConsumeOutcome } from './consumer.js';
import { DeadLetters } from './dead-letters.js';
import { Handlers } from './handlers.js';

const OrderPlacedV2 = defineMessage('OrderPlaced', 2, (p) => p as { orderId: string; n: number; currency: string });

/** A delivery with no broker behind it, recording how it was settled. */
function manualDelivery(raw: string, deliveryCount = 1): Delivery & { settledAs: string[] } {
  const { envelope, parseError } = parseDelivery(raw);
  const settledAs: string[] = [];
  return {
    raw,
    envelope,
    parseError,
    deliveryCount,
    settledAs,
    ack: async () => void settledAs.push('ack'),
    nak: async (delay = 0) => void settledAs.push(`nak:${delay > 0 ? 'delayed' : 'now'}`),
    term: async () => void settledAs.push('term'),
  };
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`consumer on ${engine}`, () => {
    const cleanups: (() => Promise<unknown>)[] = [];
    after(async () => {
      for (const c of cleanups.reverse()) await c().catch(() => undefined);
    });
    const setup = async (): Promise<{ store: Store<FixtureDb>; transport: EmbeddedTransport }> => {
      const d = await testDatabase(engine, 'cons');
      const store = await openFixtureStore(d);
      const bus = await testDatabase(engine, 'bus');
      const transport = await connectEmbeddedTransport({ url: bus.url, module: bus.module, pollIntervalMs: 20 });
      cleanups.push(d.cleanup, bus.cleanup, () => store.close(), () => transport.close());
      return { store, transport };
    };
    const effects = (store: Store<FixtureDb>): Promise<{ message_id: string; value: number }[]> =>
      store.db.selectFrom('effects').select(['message_id', 'value']).orderBy('value').execute();
    const recording = (failTimes = 0): { handlers: Handlers<FixtureDb>; calls: () => number } => {
      let calls = 0;
      const handlers = new Handlers<FixtureDb>().on(OrderPlaced, async (payload, { tx, envelope }) => {
        calls++;
        await tx.db.insertInto('effects').values({ message_id: envelope.id, group_name: 'g', value: payload.n }).execute();
        if (calls <= failTimes) throw new Error(`transient failure ${calls}`);
      });
      return { handlers, calls: () => calls };
    };

    it('applies a redelivered message once', async () => {
      const { store, transport } = await setup();
      const { handlers, calls } = recording();
      const consumer = new Consumer({ store, transport, topic: 'orders', group: 'g', handlers });
      const raw = JSON.stringify(testEnvelope('o1', { orderId: 'o1', n: 1 }, 'OrderPlaced'));
      const outcomes: ConsumeOutcome[] = [];
      for (let i = 1; i <= 3; i++) outcomes.push(await consumer.process(manualDelivery(raw, i)));
      assert.deepEqual(outcomes, ['handled', 'duplicate', 'duplicate']);
      assert.equal(calls(), 1);
      assert.equal((await effects(store)).length, 1);
    });

    it('applies a message once when two deliveries of it race', async () => {
      const { store, transport } = await setup();
      const { handlers } = recording();
      const a = new Consumer({ store, transport, topic: 'orders', group: 'g', handlers });
      const raw = JSON.stringify(testEnvelope('o1', { orderId: 'o1', n: 7 }, 'OrderPlaced'));
      const outcomes = await Promise.all([a.process(manualDelivery(raw)), a.process(manualDelivery(raw, 2)), a.process(manualDelivery(raw, 3))]);
      assert.deepEqual(outcomes.sort(), ['duplicate', 'duplicate', 'handled']);
      assert.equal((await effects(store)).length, 1);
    });

    it('rolls back a failed handler\'s writes and retries later with backoff', async () => {
      const { store, transport } = await setup();
      const { handlers } = recording(1);
      const consumer = new Consumer({ store, transport, topic: 'orders', group: 'g', handlers });
      const raw = JSON.stringify(testEnvelope('o1', { orderId: 'o1', n: 3 }, 'OrderPlaced'));
      const first = manualDelivery(raw, 1);
      assert.equal(await consumer.process(first), 'retry');
      assert.deepEqual(first.settledAs, ['nak:delayed']);
      assert.equal((await effects(store)).length, 0, 'the failed attempt left no effect');
      const second = manualDelivery(raw, 2);
      assert.equal(await consumer.process(second), 'handled');
      assert.deepEqual(second.settledAs, ['ack']);
      assert.equal((await effects(store)).length, 1);
    });

    it('dead-letters after maxDeliveries with the error and count, then replays once the cause is fixed', async () => {
      const { store, transport } = await setup();
      let broken = true;
      const handlers = new Handlers<FixtureDb>().on(OrderPlaced, async (payload, { tx, envelope }) => {
        if (broken) throw new Error('template service down');
        await tx.db.insertInto('effects').values({ message_id: envelope.id, group_name: 'g', value: payload.n }).execute();
      });
      const consumer = new Consumer({ store, transport, topic: 'orders', group: 'g', handlers, maxDeliveries: 3 });
      const raw = JSON.stringify(testEnvelope('o1', { orderId: 'o1', n: 5 }, 'OrderPlaced'));
      assert.equal(await consumer.process(manualDelivery(raw, 1)), 'retry');
      assert.equal(await consumer.process(manualDelivery(raw, 2)), 'retry');
      const last = manualDelivery(raw, 3);
      assert.equal(await consumer.process(last), 'dead-lettered');
      assert.deepEqual(last.settledAs, ['term']);
      const dlq = new DeadLetters(store);
      const [letter] = await dlq.list({ group: 'g' });
      assert.equal(letter!.deliveries, 3);
      assert.match(letter!.error, /handler failed 3 deliveries: template service down/);
      assert.equal(letter!.type, 'OrderPlaced');
      assert.deepEqual(await transport.deadLetters('orders', 'g'), [{ raw, error: letter!.error, deliveries: 3 }]);
      broken = false;
      assert.equal(await dlq.replay(letter!.id, consumer), 'handled');
      assert.equal((await effects(store)).length, 1);
      assert.deepEqual(await dlq.list({ group: 'g' }), []);
      assert.equal((await dlq.list({ group: 'g', includeReplayed: true })).length, 1);
      await assert.rejects(dlq.replay(letter!.id, consumer), /already replayed/);
    });

    it('dead-letters a non-retryable failure at once', async () => {
      const { store, transport } = await setup();
      const handlers = new Handlers<FixtureDb>().on(OrderPlaced, async () => {
        throw Object.assign(new Error('order does not exist'), { retryable: false });
      });
      const consumer = new Consumer({ store, transport, topic: 'orders', group: 'g', handlers });
      const d = manualDelivery(JSON.stringify(testEnvelope('o1', { orderId: 'o1', n: 1 }, 'OrderPlaced')));
      assert.equal(await consumer.process(d), 'dead-lettered');
      assert.match((await new DeadLetters(store).list())[0]!.error, /not retryable: order does not exist/);
    });

    it('dead-letters unknown versions, bad payloads and non-envelopes with a reason, and keeps going', async () => {
      const { store, transport } = await setup();
      const { handlers } = recording();
      const consumer = new Consumer({ store, transport, topic: 'orders', group: 'g', handlers });
      const v2 = { ...testEnvelope('o1', { orderId: 'o1', n: 1, currency: 'EUR' }, 'OrderPlaced'), version: 2 };
      assert.equal(await consumer.process(manualDelivery(JSON.stringify(v2))), 'dead-lettered');
      assert.equal(await consumer.process(manualDelivery(JSON.stringify(testEnvelope('o2', { orderId: 42 }, 'OrderPlaced')))), 'dead-lettered');
      assert.equal(await consumer.process(manualDelivery('not json at all')), 'dead-lettered');
      assert.equal(await consumer.process(manualDelivery(JSON.stringify(testEnvelope('o3', { orderId: 'o3', n: 3 }, 'OrderPlaced')))), 'handled');
      const errors = (await new DeadLetters(store).list()).map((l) => l.error);
      assert.match(errors[0]!, /no handler for OrderPlaced v2 .*handles: OrderPlaced@1/);
      assert.match(errors[1]!, /failed its schema: orderId must be a string/);
      assert.match(errors[2]!, /not an envelope/);
      handlers.on(OrderPlacedV2, async () => undefined);
      assert.deepEqual(handlers.handled(), ['OrderPlaced@1', 'OrderPlaced@2']);
    });

    it('dead-letters a message whose handler keeps crashing the process before it runs again', async () => {
      const { store, transport } = await setup();
      const { handlers, calls } = recording();
      const consumer = new Consumer({ store, transport, topic: 'orders', group: 'g', handlers, maxDeliveries: 3 });
      const d = manualDelivery(JSON.stringify(testEnvelope('o1', { orderId: 'o1', n: 1 }, 'OrderPlaced')), 4);
      assert.equal(await consumer.process(d), 'dead-lettered');
      assert.equal(calls(), 0);
      assert.match((await new DeadLetters(store).list())[0]!.error, /delivered 4 times without being settled/);
    });

    it('consumes from a transport end to end, and stops after its in-flight message', async () => {
      const { store, transport } = await setup();
      const { handlers } = recording(1);
      const settled: ConsumeOutcome[] = [];
      const consumer = await consume({ store, transport, topic: 'orders', group: 'g', handlers, backoff: { baseMs: 10, capMs: 20 }, ackWaitMs: 5_000 });
      consumer.on('settled', (e) => settled.push(e.outcome));
      for (let i = 0; i < 5; i++) await transport.publish('orders', testEnvelope(`o${i}`, { orderId: `o${i}`, n: i }, 'OrderPlaced'));
      const deadline = Date.now() + 10_000;
      while ((await effects(store)).length < 5 && Date.now() < deadline) await sleep(20);
      await consumer.stop();
      assert.deepEqual((await effects(store)).map((e) => e.value), [0, 1, 2, 3, 4]);
      assert.equal(settled.filter((s) => s === 'handled').length, 5);
      assert.equal(settled.filter((s) => s === 'retry').length, 1);
    });

    it('applies batches in one transaction each, exactly once, with a failing message retried on its own', async () => {
      const { store, transport } = await setup();
      let failOnce = true;
      const handlers = new Handlers<FixtureDb>().on(OrderPlaced, async (payload, { tx, envelope }) => {
        await tx.db.insertInto('effects').values({ message_id: envelope.id, group_name: 'g', value: payload.n }).execute();
        if (payload.n === 13 && failOnce) {
          failOnce = false;
          throw new Error('one bad apple');
        }
      });
      const outcomes: ConsumeOutcome[] = [];
      let largestBatch = 0;
      const consumer = new Consumer({ store, transport, topic: 'orders', group: 'g', handlers, batchSize: 8, backoff: { baseMs: 5, capMs: 10 }, ackWaitMs: 5_000 });
      consumer.on('settled', (e) => {
        outcomes.push(e.outcome);
        largestBatch = Math.max(largestBatch, e.batch);
      });
      const already = testEnvelope('o-1', { orderId: 'o-1', n: -1 }, 'OrderPlaced');
      assert.equal(await consumer.process(manualDelivery(JSON.stringify(already))), 'handled');
      await consumer.start();
      await transport.publish('orders', already); // applied before: the batch must see it as a duplicate
      for (let i = 0; i < 40; i++) await transport.publish('orders', testEnvelope(`o${i}`, { orderId: `o${i}`, n: i }, 'OrderPlaced'));
      const deadline = Date.now() + 15_000;
      while (outcomes.filter((o) => o === 'handled').length < 41 && Date.now() < deadline) await sleep(20);
      await consumer.stop();
      const values = (await effects(store)).map((e) => e.value);
      assert.deepEqual(values, Array.from({ length: 41 }, (_, i) => i - 1), 'every message applied once, the failed one included');
      assert.equal(outcomes.filter((o) => o === 'duplicate').length, 1);
      // The failure either rolled back its batch (then every member ran again on its own, and the
      // failing one succeeded there) or hit the message alone (then it was retried later).
      assert.ok(outcomes.filter((o) => o === 'retry').length <= 1);
      assert.ok(largestBatch > 1 && largestBatch <= 8, `deliveries were applied in batches of up to 8 (largest ${largestBatch})`);
    });

    it('refuses a batch size below 1', async () => {
      const { store, transport } = await setup();
      assert.throws(() => new Consumer({ store, transport, topic: 'orders', group: 'g', handlers: new Handlers<FixtureDb>(), batchSize: 0 }), /batchSize/);
    });
  });
}
