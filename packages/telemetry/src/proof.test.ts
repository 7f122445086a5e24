/**
 * The proof of issue #6: one request through two Fastify services (A calls B
 * over undici on real loopback sockets) and one message hop (B writes to the
 * outbox on SQLite; a relay publishes on the embedded transport; a consumer
 * handles it) is ONE trace with the exact parent/child tree, and every log
 * line the requests and the handler wrote carries that trace id.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import Fastify, { LogController } from 'fastify';
import { request } from 'undici';
import { Consumer, Handlers, Outbox, OutboxRelay, connectEmbeddedTransport, defineMessage, messagingMigrations, type EmbeddedTransport, type MessagingTables } from '@bulwark/messaging';
import { openStore, type Store } from '@bulwark/store';
import { testDatabase } from '@bulwark/store/testing';
import { captureLogs, spanTree } from './testing/index.js';
import { MemorySpanStore, createLogger, fastifyTelemetry, setupTelemetry, type Telemetry } from './index.js';

interface ProofDb extends MessagingTables {
  shipments: { order_id: string };
}
const migrations = [
  {
    id: '0001_proof',
    up: async (db: Parameters<(typeof messagingMigrations)[number]['up']>[0]) => {
      await db.schema.createTable('shipments').addColumn('order_id', 'text', (c) => c.primaryKey()).execute();
    },
  },
];
const OrderPlaced = defineMessage('OrderPlaced', 1, (p) => p as { orderId: string });

const spans = new MemorySpanStore();
const logs = captureLogs();
const cleanups: (() => Promise<unknown> | void)[] = [];
let telA: Telemetry;
let telB: Telemetry;
let portA: number;
let store: Store<ProofDb>;
let transport: EmbeddedTransport;
let handled: () => void;
const handledOnce = new Promise<void>((resolve) => (handled = resolve));

before(async () => {
  // Two services in one process: A owns the global registration and the undici client spans; B the messaging hook.
  // The test's own call into A is an undici request too: leave it untraced, so A's server span is the root.
  const fromTest = (r: { path: string }): boolean => r.path.startsWith('/checkout/');
  telA = setupTelemetry({ serviceName: 'svc-a', exporter: 'memory', memory: { store: spans }, processor: 'simple', messaging: false, resilience: false, httpClient: { ignore: fromTest } });
  telB = setupTelemetry({ serviceName: 'svc-b', exporter: 'memory', memory: { store: spans }, processor: 'simple', register: false, httpClient: false });
  cleanups.push(() => telB.shutdown(), () => telA.shutdown());

  const d = await testDatabase('sqlite', 'telproof');
  const bus = await testDatabase('sqlite', 'telbus');
  store = await openStore<ProofDb>({ module: d.module, url: d.url, migrations: { [d.module]: migrations, messaging: messagingMigrations } });
  transport = await connectEmbeddedTransport({ url: bus.url, module: bus.module, pollIntervalMs: 10 });
  cleanups.push(d.cleanup, bus.cleanup, () => store.close(), () => transport.close());

  const loggerA = createLogger({ service: 'svc-a', version: '1.0.0', destination: logs.stream });
  const loggerB = createLogger({ service: 'svc-b', version: '1.0.0', destination: logs.stream });
  const outbox = new Outbox();

  const appB = Fastify({ loggerInstance: loggerB, logController: new LogController({ disableRequestLogging: true }) });
  await appB.register(fastifyTelemetry, { telemetry: telB });
  appB.post<{ Body: { orderId: string } }>('/orders', async (req, reply) => {
    req.log.info({ orderId: req.body.orderId }, 'placing order');
    await store.transaction((tx) => outbox.add(tx, 'orders', { type: OrderPlaced, key: req.body.orderId, payload: { orderId: req.body.orderId } }));
    return reply.code(202).send({ accepted: true });
  });
  await appB.listen({ port: 0, host: '127.0.0.1' });
  const portB = (appB.server.address() as { port: number }).port;

  const appA = Fastify({ loggerInstance: loggerA, logController: new LogController({ disableRequestLogging: true }) });
  await appA.register(fastifyTelemetry, { telemetry: telA });
  appA.get<{ Params: { id: string } }>('/checkout/:id', async (req) => {
    req.log.info('checking out');
    const res = await request(`http://127.0.0.1:${portB}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ orderId: req.params.id }) });
    await res.body.text();
    req.log.info({ status: res.statusCode }, 'order placed');
    return { ok: res.statusCode === 202 };
  });
  await appA.listen({ port: 0, host: '127.0.0.1' });
  portA = (appA.server.address() as { port: number }).port;
  cleanups.push(() => appA.close(), () => appB.close());

  const shipping = loggerB.modules.get('shipping');
  const handlers = new Handlers<ProofDb>().on(OrderPlaced, async ({ orderId }, { tx }) => {
    shipping.info({ orderId }, 'shipping order');
    await tx.db.insertInto('shipments').values({ order_id: orderId }).execute();
  });
  const consumer = new Consumer({ store, transport, topic: 'orders', group: 'shipping', handlers });
  consumer.on('settled', (e) => {
    if (e.outcome === 'handled') handled();
  });
  const relay = new OutboxRelay({ store, transport, pollIntervalMs: 50 });
  await consumer.start();
  await relay.start();
  cleanups.push(
    () => relay.stop(),
    () => consumer.stop(),
  );
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

it('one request through two services and a message hop is one trace with the exact tree, and every log line has its trace id', async () => {
  logs.clear(); // the start-up lines ("Server listening at ...") belong to no request
  const res = await request(`http://127.0.0.1:${portA}/checkout/o-1`);
  assert.deepEqual(await res.body.json(), { ok: true });
  await handledOnce;
  await telA.forceFlush();
  await telB.forceFlush();

  const roots = spans.query({ service: 'svc-a', name: 'GET /checkout/:id' });
  assert.equal(roots.length, 1);
  const traceId = roots[0]!.traceId;
  const trace = spans.trace(traceId);
  assert.deepEqual(new Set(spans.traces().map((t) => t.traceId)), new Set([traceId]), `every span is in the one trace: ${JSON.stringify(spans.recent().map((s) => [s.traceId, s.name, s.service]))}`);

  assert.deepEqual(spanTree(trace), [
    {
      name: 'GET /checkout/:id',
      service: 'svc-a',
      kind: 'server',
      children: [
        {
          name: 'POST',
          service: 'svc-a',
          kind: 'client',
          children: [
            {
              name: 'POST /orders',
              service: 'svc-b',
              kind: 'server',
              children: [{ name: 'orders process', service: 'svc-b', kind: 'consumer', children: [] }],
            },
          ],
        },
      ],
    },
  ]);
  const server = trace.find((s) => s.name === 'POST /orders')!;
  const consumer = trace.find((s) => s.kind === 'consumer')!;
  assert.deepEqual(consumer.links, [{ traceId, spanId: server.spanId, attributes: {} }], 'the consumer span also links to the producer context');
  assert.equal(consumer.attributes['messaging.destination.name'], 'orders');

  const lines = logs.lines();
  const written = lines.filter((l) => ['checking out', 'order placed', 'placing order', 'shipping order', 'request completed'].includes(String(l.msg)));
  assert.equal(written.length, 6, `two access lines and four handler lines, got ${JSON.stringify(lines.map((l) => l.msg))}`);
  for (const line of written) assert.equal(line.trace_id, traceId, `line "${String(line.msg)}" carries the trace id`);
  assert.deepEqual(lines.filter((l) => l.trace_id !== traceId), [], 'no line written during the request lacks the trace id');
  const shipping = written.find((l) => l.msg === 'shipping order')!;
  assert.equal(shipping.span_id, consumer.spanId);
  assert.equal(shipping.module, 'shipping');
  assert.equal(shipping.service, 'svc-b');
  assert.equal(written.find((l) => l.msg === 'placing order')!.span_id, server.spanId);
});
