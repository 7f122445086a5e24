/**
 * The process the crash test kills. It produces `count` orders, each with an
 * OrderPlaced message in the outbox, relays them to the transport, and
 * consumes them into `effects` — and can be SIGKILLed at any instant and
 * started again. Production is idempotent (an order that exists was already
 * produced, with its message, in the same transaction), so a restart picks
 * up where the last run stopped. It exits 0 once every message's effect is in.
 *
 * argv[2]: JSON { url, module, transport: 'embedded' | 'nats' | 'rabbitmq', busUrl?, busModule?, count, topic, group }
 */
import { openStore } from '@bulwark/store';
import { Consumer } from '../consumer/consumer.js';
import { Handlers } from '../consumer/handlers.js';
import { Outbox } from '../outbox/outbox.js';
import { OutboxRelay } from '../outbox/outbox-relay.js';
import { messagingMigrations } from '../schema/messaging-migrations.js';
import { fixtureMigrations, OrderPlaced, type FixtureDb } from '../testing/messaging-fixture.js';
import type { Transport } from '../transport/transport.js';

export interface CrashWorkerConfig {
  url: string;
  module: string;
  transport: 'embedded' | 'nats' | 'rabbitmq';
  busUrl?: string;
  busModule?: string;
  count: number;
  topic: string;
  group: string;
}

async function connect(config: CrashWorkerConfig): Promise<Transport> {
  switch (config.transport) {
    case 'embedded': {
      const { connectEmbeddedTransport } = await import('../transport/embedded/index.js');
      return connectEmbeddedTransport({ url: config.busUrl ?? config.url, module: config.busModule ?? 'bus', pollIntervalMs: 20 });
    }
    case 'nats': {
      const { connectNatsTransport } = await import('../transport/nats/index.js');
      return connectNatsTransport({ servers: process.env.BULWARK_TEST_NATS_URL ?? '127.0.0.1:4222' });
    }
    case 'rabbitmq': {
      const { connectRabbitTransport } = await import('../transport/rabbitmq/index.js');
      return connectRabbitTransport({ url: process.env.BULWARK_TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672' });
    }
  }
}

const config = JSON.parse(process.argv[2] ?? '{}') as CrashWorkerConfig;
const store = await openStore<FixtureDb>({ module: config.module, url: config.url, migrations: { [config.module]: fixtureMigrations, messaging: messagingMigrations } });
const transport = await connect(config);
const outbox = new Outbox();
const relay = new OutboxRelay({ store, transport, pollIntervalMs: 100, leaseMs: 2_000, batchSize: 50 });
const handlers = new Handlers<FixtureDb>().on(OrderPlaced, async (payload, { tx, envelope }) => {
  await tx.db.insertInto('effects').values({ message_id: envelope.id, group_name: config.group, value: payload.n }).execute();
});
const consumer = new Consumer({ store, transport, topic: config.topic, group: config.group, handlers, ackWaitMs: 1_000, maxDeliveries: 50, backoff: { baseMs: 10, capMs: 100 }, concurrency: 4, batchSize: 8 });
await consumer.start();
await relay.start();
process.stdout.write('ready\n');

const db = store.db;
for (let n = 0; n < config.count; n++) {
  const id = `order-${n}`;
  await store.transaction(async (tx) => {
    const exists = await tx.db.selectFrom('orders').select('id').where('id', '=', id).executeTakeFirst();
    if (exists !== undefined) return;
    await tx.db.insertInto('orders').values({ id, status: 'PLACED' }).execute();
    await outbox.add(tx, config.topic, { type: OrderPlaced, key: `customer-${n % 7}`, payload: { orderId: id, n } });
  });
  if (n % 10 === 0) process.stdout.write(`produced ${n}\n`);
}
for (;;) {
  const row = await db.selectFrom('effects').select((eb) => eb.fn.count<number>('value').as('n')).executeTakeFirstOrThrow();
  if (Number(row.n) >= config.count) break;
  await new Promise((resolve) => setTimeout(resolve, 50));
}
await consumer.stop();
await relay.stop();
await transport.close();
await store.close();
process.stdout.write('complete\n');
