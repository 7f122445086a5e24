import assert from 'node:assert/strict';
import { after, it } from 'node:test';
import { Consumer, Handlers, Outbox, OutboxRelay, connectEmbeddedTransport, defineMessage, messagingMigrations, type MessagingTables } from '@bulwark/messaging';
import { openStore } from '@bulwark/store';
import { testDatabase } from '@bulwark/store/testing';
import { VirtualClock } from '@bulwark/resilience/testing';
import { Metrics } from './metrics.js';
import { instrumentConsumer, instrumentOutboxRelay, watchMessagingBacklog } from './messaging-metrics.js';

const Ping = defineMessage('Ping', 1, (p) => p as { n: number });

it('reports outbox backlog and its age, relay publishes, consumer outcomes and lag, and dead letters, on SQLite with the embedded bus', async () => {
  const cleanups: (() => Promise<unknown> | void)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const d = await testDatabase('sqlite', 'telmsg');
  const bus = await testDatabase('sqlite', 'telmsgbus');
  const store = await openStore<MessagingTables>({ module: d.module, url: d.url, migrations: { messaging: messagingMigrations } });
  const transport = await connectEmbeddedTransport({ url: bus.url, module: bus.module, pollIntervalMs: 10 });
  cleanups.push(d.cleanup, bus.cleanup, () => store.close(), () => transport.close());

  const metrics = new Metrics();
  const clock = new VirtualClock();
  const backlog = watchMessagingBacklog(metrics, store, { module: 'orders', clock, now: () => Date.now() + 60_000 });
  cleanups.push(() => backlog.stop());
  const outbox = new Outbox();
  for (const n of [1, 2, 3]) await store.transaction((tx) => outbox.add(tx, 'pings', { type: Ping, key: `k${n}`, payload: { n } }));
  await backlog.refresh();
  assert.equal(await metrics.value('bulwark_messaging_outbox_backlog', { module: 'orders' }), 3);
  const age = (await metrics.value('bulwark_messaging_outbox_oldest_age_seconds', { module: 'orders' }))!;
  assert.ok(age >= 60 && age < 120, `oldest row is about a minute old on the injected clock, got ${age}`);

  let settled = 0;
  let allSettled!: () => void;
  const done = new Promise<void>((resolve) => (allSettled = resolve));
  const handlers = new Handlers<MessagingTables>().on(Ping, ({ n }) => {
    if (n === 3) return Promise.reject(Object.assign(new Error('poison'), { retryable: false }));
    return Promise.resolve();
  });
  const consumer = new Consumer({ store, transport, topic: 'pings', group: 'g', handlers });
  const relay = new OutboxRelay({ store, transport, pollIntervalMs: 20 });
  cleanups.push(instrumentConsumer(metrics, consumer, { topic: 'pings', group: 'g' }), instrumentOutboxRelay(metrics, relay, { module: 'orders' }));
  consumer.on('settled', () => {
    if (++settled === 3) allSettled();
  });
  await consumer.start();
  await relay.start();
  cleanups.push(
    () => relay.stop(),
    () => consumer.stop(),
  );
  await done;

  // The scheduled refresh runs on the injected clock.
  await clock.advance(15_000);
  for (let i = 0; i < 200 && (await metrics.value('bulwark_messaging_outbox_backlog', { module: 'orders' })) !== 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(await metrics.value('bulwark_messaging_outbox_backlog', { module: 'orders' }), 0);
  assert.equal(await metrics.value('bulwark_messaging_outbox_oldest_age_seconds', { module: 'orders' }), 0);
  assert.equal(await metrics.value('bulwark_messaging_dead_letters', { module: 'orders' }), 1);
  assert.equal(await metrics.value('bulwark_messaging_published_total', { module: 'orders' }), 3);
  assert.equal(await metrics.value('bulwark_messaging_consumed_total', { topic: 'pings', outcome: 'handled' }), 2);
  assert.equal(await metrics.value('bulwark_messaging_consumed_total', { topic: 'pings', outcome: 'dead-lettered' }), 1);
  assert.equal(await metrics.value('bulwark_messaging_consumer_lag_seconds', { topic: 'pings', group: 'g' }), 3);
  assert.ok((await metrics.value('bulwark_messaging_relay_lag_seconds', { module: 'orders' }))! >= 1);
  assert.throws(() => watchMessagingBacklog(metrics, store, { module: 'orders', intervalMs: 0 }), /intervalMs/);
});
