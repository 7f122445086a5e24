import { strict as assert } from 'node:assert';
import { AsyncLocalStorage } from 'node:async_hooks';
import { after, describe, it } from 'node:test';
import { Consumer } from './consumer/consumer.js';
import { Handlers } from './consumer/handlers.js';
import { messagingInstrumentation, setMessagingInstrumentation, type HandleInfo, type MessagingInstrumentation } from './instrumentation.js';
import { Outbox } from './outbox/outbox.js';
import { OutboxRelay } from './outbox/outbox-relay.js';
import { openFixtureStore, OrderPlaced, testDatabase, type FixtureDb } from './testing/messaging-fixture.js';
import { connectEmbeddedTransport } from './transport/embedded/index.js';

describe('messaging instrumentation hook', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    setMessagingInstrumentation(undefined);
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('adds propagation headers at outbox.add (caller headers win) and runs each handler inside handle()', async () => {
    const context = new AsyncLocalStorage<string>();
    const handled: HandleInfo[] = [];
    const instrumentation: MessagingInstrumentation = {
      inject(headers) {
        headers.traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
        headers['x-tenant'] = 'injected';
      },
      handle(info, run) {
        handled.push(info);
        return context.run(`span-for-${info.envelope.id}`, run);
      },
    };
    assert.equal(setMessagingInstrumentation(instrumentation), undefined);
    assert.equal(messagingInstrumentation(), instrumentation);

    const d = await testDatabase('sqlite', 'instr');
    const store = await openFixtureStore(d);
    const bus = await testDatabase('sqlite', 'instrbus');
    const transport = await connectEmbeddedTransport({ url: bus.url, module: bus.module, pollIntervalMs: 20 });
    cleanups.push(d.cleanup, bus.cleanup, () => store.close(), () => transport.close());

    const seen: { id: string; ctx: string | undefined; headers: Readonly<Record<string, string>> }[] = [];
    let resolveDone!: () => void;
    const done = new Promise<void>((resolve) => (resolveDone = resolve));
    const handlers = new Handlers<FixtureDb>().on(OrderPlaced, async (_payload, { envelope }) => {
      seen.push({ id: envelope.id, ctx: context.getStore(), headers: envelope.headers });
      if (seen.length === 2) resolveDone();
    });
    const consumer = new Consumer({ store, transport, topic: 'orders', group: 'g', handlers });
    await consumer.start();
    const relay = new OutboxRelay({ store, transport, pollIntervalMs: 50 });
    await relay.start();
    cleanups.push(() => consumer.stop(), () => relay.stop());

    const outbox = new Outbox();
    const [a, b] = await store.transaction(async (tx) => [
      await outbox.add(tx, 'orders', { type: OrderPlaced, key: 'k1', payload: { orderId: 'a', n: 1 } }),
      await outbox.add(tx, 'orders', { type: OrderPlaced, key: 'k2', payload: { orderId: 'b', n: 2 }, headers: { 'x-tenant': 'caller' } }),
    ]);
    assert.equal(a.headers.traceparent, '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    assert.equal(a.headers['x-tenant'], 'injected');
    assert.equal(b.headers['x-tenant'], 'caller');

    await done;
    const byId = new Map(seen.map((s) => [s.id, s]));
    assert.equal(byId.get(a.id)?.ctx, `span-for-${a.id}`);
    assert.equal(byId.get(b.id)?.ctx, `span-for-${b.id}`);
    assert.equal(byId.get(b.id)?.headers['x-tenant'], 'caller');
    assert.deepEqual(handled.map((h) => [h.topic, h.group, h.deliveryCount]).sort(), [['orders', 'g', 1], ['orders', 'g', 1]]);
  });
});
