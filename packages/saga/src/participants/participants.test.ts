/**
 * One saga definition, written against `Participant`, run over HTTP (a real
 * kit service on an ephemeral port, the resilient undici client) and over
 * command/reply messages (outbox, relay, consumers with inboxes) on the
 * embedded transport (SQLite) and on NATS JetStream (PostgreSQL): it
 * completes with every effect applied once, a refusal compensates what was
 * done, and a duplicate command or request (resent, redelivered, retried
 * while the first is still running) takes effect once.
 */
import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createService, httpMigrations, idempotency, problem } from '@bulwark/http';
import { createClient, type HttpClient } from '@bulwark/http/client';
import { connectEmbeddedTransport, decodeEnvelope, defineMessage, messagingMigrations, Outbox, OutboxRelay, type Delivery, type Transport } from '@bulwark/messaging';
import { connectNatsTransport } from '@bulwark/messaging/nats';
import { openStore, sql, type Migration, type Store, type UnitOfWork } from '@bulwark/store';
import { testDatabase, type TestDatabase } from '@bulwark/store/testing';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { SagaAdmin } from '../admin.js';
import { defineSaga, type SagaDefinition, type StepContext } from '../definition.js';
import { createSagaOrchestrator, type SagaOrchestrator } from '../orchestrator.js';
import { sagaMigrations } from '../schema.js';
import { ParticipantConfigError, ParticipantNoReplyError, ParticipantRefusedError, ParticipantUnavailableError, refuse } from './errors.js';
import { httpParticipant } from './http-participant.js';
import { listenForReplies, messageParticipant, type CommandReplies } from './message-participant.js';
import { participantMigrations } from './messages.js';
import type { Participant } from './participant.js';
import { serveCommands, type CommandServer } from './serve-commands.js';

// ------------------------------------------------------------------ the saga, written once

interface OrderInput {
  orderId: string;
  sku: string;
  qty: number;
  amount: number;
}

const CARD_LIMIT = 1_000;
const StockCounted = defineMessage('StockCounted', 1, (p) => p as { key: string });

/** reserve stock -> charge the card -> confirm the reservation (pivot). */
function placeOrder(inventory: Participant, payments: Participant, options: { attemptTimeoutMs: number }): SagaDefinition {
  const retry = { maxAttempts: 8, backoff: { baseMs: 20, capMs: 200 } };
  const compensationRetry = { ...retry, retryOn: () => true };
  const timing = { retry, compensationRetry, attemptTimeoutMs: options.attemptTimeoutMs };
  return defineSaga('PlaceOrder', {
    input: (raw) => {
      const o = raw as Partial<OrderInput>;
      if (typeof o.orderId !== 'string' || typeof o.sku !== 'string' || typeof o.qty !== 'number' || typeof o.amount !== 'number') throw new Error('orderId, sku, qty and amount are required');
      return { orderId: o.orderId, sku: o.sku, qty: o.qty, amount: o.amount };
    },
  })
    .step('reserve', {
      invoke: (o, ctx) => inventory.call<{ reservationId: string }>('inventory.reserve', { sku: o.sku, qty: o.qty }, ctx),
      compensate: async (_o, ctx) => void (await inventory.call('inventory.release', {}, ctx)),
      ...timing,
    })
    .step('charge', {
      invoke: (o, ctx) => payments.call<{ chargeId: string; nonce: string }>('payments.charge', { amount: o.amount }, ctx),
      compensate: async (_o, ctx) => void (await payments.call('payments.refund', {}, ctx)),
      ...timing,
    })
    .step('confirm', {
      pivot: true,
      invoke: async (o, ctx) => void (await inventory.call('inventory.commit', { reservationId: o.reservationId }, ctx)),
      ...timing,
    })
    .build();
}

// ------------------------------------------------------------------ the participants' business, shared by both transports

const shopMigrations: Migration[] = [
  {
    id: '0001_shop_effects',
    up: (db) =>
      db.schema
        .createTable('shop_effects')
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('undoes', 'text')
        .addColumn('amount', 'integer', (c) => c.notNull())
        .execute(),
  },
];

class Declined extends Error {}

/** The effects, each one a row in the transaction it is given; `runs` counts committed handler runs. */
class Shop {
  readonly runs = new Map<string, number>();
  constructor(readonly store: Store<unknown>) {}

  private async effect(tx: UnitOfWork<unknown>, kind: string, key: string, undoes: string | null, amount: number): Promise<void> {
    await sql`insert into shop_effects (key, kind, undoes, amount) values (${key}, ${kind}, ${undoes}, ${amount})`.execute(tx.db);
    tx.afterCommit(() => this.runs.set(kind, (this.runs.get(kind) ?? 0) + 1));
  }

  async reserve(tx: UnitOfWork<unknown>, key: string, req: { qty: number }): Promise<{ reservationId: string }> {
    await this.effect(tx, 'reserve', key, null, req.qty);
    return { reservationId: key };
  }
  release = (tx: UnitOfWork<unknown>, key: string, invokeKey: string): Promise<void> => this.effect(tx, 'release', key, invokeKey, 0);
  commit = (tx: UnitOfWork<unknown>, key: string, reservationId: string): Promise<void> => this.effect(tx, 'commit', key, reservationId, 0);
  async charge(tx: UnitOfWork<unknown>, key: string, req: { amount: number }): Promise<{ chargeId: string; nonce: string }> {
    if (req.amount > CARD_LIMIT) throw new Declined(`amount ${req.amount} is over the card limit`);
    await this.effect(tx, 'charge', key, null, req.amount);
    return { chargeId: key, nonce: randomUUID() };
  }
  refund = (tx: UnitOfWork<unknown>, key: string, invokeKey: string): Promise<void> => this.effect(tx, 'refund', key, invokeKey, 0);

  /** Effects of one saga, as `kind:step` (sorted) — and every key appears once. */
  async effectsOf(sagaId: string): Promise<string[]> {
    const rows = await sql<{ key: string; kind: string }>`select key, kind from shop_effects where key like ${`${sagaId}:%`}`.execute(this.store.db);
    const keys = rows.rows.map((r) => r.key);
    assert.equal(new Set(keys).size, keys.length, `an effect was applied twice: ${keys.join(', ')}`);
    return rows.rows.map((r) => `${r.kind}:${r.key.slice(sagaId.length + 1)}`).sort();
  }
}

const order = (amount = 120): OrderInput => ({ orderId: randomUUID(), sku: 'sku-1', qty: 2, amount });

/** Runs `definition` on a fresh orchestrator and returns its outcome. */
async function runSaga(orchestrator: SagaOrchestrator, definition: SagaDefinition, input: OrderInput) {
  const { id } = await orchestrator.start(definition, input);
  return { id, outcome: await orchestrator.result(id, { timeoutMs: 60_000 }) };
}

/** A StepContext as the orchestrator builds one, for calling a participant directly. */
function stepContext(sagaId: string, step: string, signal: AbortSignal = new AbortController().signal): StepContext {
  return { sagaId, sagaType: 'PlaceOrder', step, idempotencyKey: `${sagaId}:${step}`, attempt: 1, signal, deadline: Infinity, remaining: () => Infinity };
}

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function sagaStore(engine: 'sqlite' | 'postgres', withMessaging: boolean): Promise<Store<unknown>> {
  const d = await testDatabase(engine, 'orders');
  const store = await openStore<unknown>({ module: d.module, url: d.url, migrations: withMessaging ? { saga: sagaMigrations, messaging: messagingMigrations } : { saga: sagaMigrations } });
  cleanups.push(d.cleanup, () => store.close());
  return store;
}

// ------------------------------------------------------------------ over HTTP

describe('the saga over HTTP participants (kit service, resilient client)', () => {
  let app: FastifyInstance;
  let shop: Shop;
  let inventoryClient: HttpClient;
  let paymentsClient: HttpClient;
  let inventory: Participant;
  let payments: Participant;
  let orchestrator: SagaOrchestrator;
  const requestsByKey = new Map<string, number>();
  /** Keys whose handler waits, after claiming the key, until a second request of the same key arrives. */
  const gated = new Map<string, () => void>();

  before(async () => {
    const d = await testDatabase('sqlite', 'shop');
    const store = await openStore<unknown>({ module: d.module, url: d.url, migrations: { shop: shopMigrations, http: httpMigrations } });
    cleanups.push(d.cleanup, () => store.close());
    shop = new Shop(store);

    app = await createService({ kit: { openapi: false, shutdown: { signals: [] }, accessLog: false } });
    app.addHook('onRequest', async (request) => {
      const key = request.headers['idempotency-key'];
      if (typeof key !== 'string') return;
      const n = (requestsByKey.get(key) ?? 0) + 1;
      requestsByKey.set(key, n);
      if (n === 2) gated.get(key)?.();
    });
    await app.register(idempotency, { store: store as unknown as Store<never>, retryAfterSeconds: 1 });
    const idem = { config: { idempotency: { required: true } } };
    const keyOf = (request: { headers: Record<string, unknown> }): string => request.headers['idempotency-key'] as string;
    app.post<{ Body: { qty: number } }>('/inventory/reservations', idem, (request, reply) =>
      request.idempotency.transaction<unknown>(async (tx) => {
        reply.code(201);
        return shop.reserve(tx, keyOf(request), request.body);
      }),
    );
    app.post<{ Params: { invokeKey: string } }>('/inventory/reservations/:invokeKey/release', idem, (request) =>
      request.idempotency.transaction<unknown>(async (tx) => {
        await shop.release(tx, keyOf(request), request.params.invokeKey);
        return { released: request.params.invokeKey };
      }),
    );
    app.post<{ Params: { reservationId: string } }>('/inventory/reservations/:reservationId/commit', idem, (request, reply) =>
      request.idempotency.transaction<unknown>(async (tx) => {
        await shop.commit(tx, keyOf(request), request.params.reservationId);
        return reply.code(204).send();
      }),
    );
    app.post<{ Body: { amount: number } }>('/payments/charges', idem, async (request, reply) => {
      const gate = gated.get(keyOf(request));
      if (gate !== undefined) await new Promise<void>((resolve) => gated.set(keyOf(request), resolve));
      return request.idempotency.transaction<unknown>(async (tx) => {
        try {
          reply.code(201);
          return await shop.charge(tx, keyOf(request), request.body);
        } catch (error) {
          if (error instanceof Declined) throw problem({ type: 'https://shop.example/problems/card-declined', status: 402, title: 'Card declined', detail: error.message, extensions: { code: 'CARD_LIMIT' } });
          throw error;
        }
      });
    });
    app.post<{ Params: { invokeKey: string } }>('/payments/charges/:invokeKey/refund', idem, (request) =>
      request.idempotency.transaction<unknown>(async (tx) => {
        await shop.refund(tx, keyOf(request), request.params.invokeKey);
        return { refunded: true };
      }),
    );
    app.post('/test/unavailable', async () => {
      throw problem({ type: 'https://shop.example/problems/maintenance', status: 503, title: 'Down for maintenance', headers: { 'retry-after': '2' } });
    });
    app.put('/test/crash', async () => {
      throw new Error('bug');
    });
    app.post('/test/slow', () => new Promise(() => undefined));
    app.post('/test/echo', async (request) => request.headers);
    await app.listen({ port: 0, host: '127.0.0.1' });
    cleanups.push(() => app.close());
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

    inventoryClient = createClient({ baseUrl: base, name: 'inventory', timeoutMs: 5_000 });
    paymentsClient = createClient({ baseUrl: base, name: 'payments', timeoutMs: 5_000 });
    cleanups.push(() => inventoryClient.close(), () => paymentsClient.close());
    inventory = httpParticipant(inventoryClient, {
      'inventory.reserve': 'POST /inventory/reservations',
      'inventory.release': 'POST /inventory/reservations/{invokeKey}/release',
      'inventory.commit': { method: 'POST', path: (req: { reservationId: string }) => `/inventory/reservations/${encodeURIComponent(req.reservationId)}/commit`, body: () => ({}) },
    });
    payments = httpParticipant(paymentsClient, { 'payments.charge': '/payments/charges', 'payments.refund': 'POST /payments/charges/{invokeKey}/refund' });

    const definition = placeOrder(inventory, payments, { attemptTimeoutMs: 2_000 });
    const store2 = await sagaStore('sqlite', false);
    orchestrator = await createSagaOrchestrator({ store: store2, sagas: [definition], pollIntervalMs: 50 });
    cleanups.push(() => orchestrator.close({ drainMs: 0 }));
    http.definition = definition;
  });
  const http = { definition: undefined as unknown as SagaDefinition };

  it('completes, each participant applying each step once under the Idempotency-Key sagaId:step', async () => {
    const { id, outcome } = await runSaga(orchestrator, http.definition, order());
    assert.equal(outcome.state, 'completed', outcome.error ?? '');
    assert.equal(outcome.data.reservationId, `${id}:reserve`);
    assert.equal(outcome.data.chargeId, `${id}:charge`);
    assert.deepEqual(await shop.effectsOf(id), ['charge:charge', 'commit:confirm', 'reserve:reserve']);
  });

  it('compensates the reservation when the payment is refused with a 4xx (and never refunds the refused charge)', async () => {
    const { id, outcome } = await runSaga(orchestrator, http.definition, order(5_000));
    assert.equal(outcome.state, 'compensated');
    assert.equal(outcome.failedStep, 'charge');
    assert.match(outcome.error ?? '', /ParticipantRefusedError: payments\.payments\.charge: refused \(402\): amount 5000 is over the card limit/);
    assert.deepEqual(await shop.effectsOf(id), ['release:reserve:compensate', 'reserve:reserve']);
    assert.equal(requestsByKey.get(`${id}:charge`), 1, 'a refusal is not retried');
  });

  it('classifies answers: 4xx refused (final); 5xx, network failures unavailable (transient); an aborted step rethrows its reason', async () => {
    const ctx = stepContext(randomUUID(), 'charge');
    const declined = await payments.call('payments.charge', { amount: 9_999 }, ctx).catch((e: unknown) => e);
    assert.ok(declined instanceof ParticipantRefusedError);
    assert.equal(declined.retryable, false);
    assert.equal(declined.status, 402);
    assert.equal(declined.details.participantCode, 'CARD_LIMIT');

    const odd = httpParticipant(paymentsClient, { missing: 'POST /nowhere', unavailable: 'POST /test/unavailable', crash: 'PUT /test/crash', slow: 'POST /test/slow' });
    const notFound = await odd.call('missing', {}, ctx).catch((e: unknown) => e);
    assert.ok(notFound instanceof ParticipantRefusedError && notFound.status === 404 && !notFound.retryable);
    const unavailable = await odd.call('unavailable', {}, ctx).catch((e: unknown) => e);
    assert.ok(unavailable instanceof ParticipantUnavailableError && unavailable.status === 503 && unavailable.retryable);
    assert.equal(unavailable.retryAfterMs, 2_000);
    const crash = await odd.call('crash', {}, ctx).catch((e: unknown) => e);
    assert.ok(crash instanceof ParticipantUnavailableError && crash.status === 500 && crash.retryable, String(crash));

    const controller = new AbortController();
    const slow = odd.call('slow', {}, stepContext(randomUUID(), 'slow', controller.signal));
    const reason = Object.assign(new Error('attempt timed out'), { code: 'BULWARK_TIMEOUT', retryable: true });
    setImmediate(() => controller.abort(reason));
    assert.equal(await slow.catch((e: unknown) => e), reason);

    const closed = createClient({ baseUrl: 'http://127.0.0.1:1', name: 'nobody' });
    cleanups.push(() => closed.close());
    const down = await httpParticipant(closed, { op: 'POST /x' }).call('op', {}, ctx).catch((e: unknown) => e);
    assert.ok(down instanceof ParticipantUnavailableError && down.retryable, String(down));

    const unknownOp = await odd.call('nope', {}, ctx).catch((e: unknown) => e);
    assert.ok(unknownOp instanceof ParticipantConfigError);
  });

  it('sends the call metadata as headers (the compensation carries the invoke key it undoes)', async () => {
    const sagaId = randomUUID();
    const comp = { ...stepContext(sagaId, 'charge'), idempotencyKey: `${sagaId}:charge:compensate`, invokeKey: `${sagaId}:charge`, output: undefined };
    const echo = httpParticipant(paymentsClient, { echo: 'POST /test/echo' });
    const headers = await echo.call<Record<string, string>>('echo', {}, comp);
    assert.equal(headers['idempotency-key'], `${sagaId}:charge:compensate`);
    assert.equal(headers['bulwark-invoke-key'], `${sagaId}:charge`);
    assert.equal(headers['bulwark-saga-id'], sagaId);
    assert.equal(headers['bulwark-saga-step'], 'charge');
    assert.equal(headers['bulwark-saga-phase'], 'compensate');
  });

  it('applies a charge once when an attempt times out while the first request still runs (409 in progress, then the replay)', async () => {
    const input = order(300);
    const id = `gated-${input.orderId}`;
    gated.set(`${id}:charge`, () => undefined);
    const chargesBefore = shop.runs.get('charge') ?? 0;
    const definition = placeOrder(inventory, payments, { attemptTimeoutMs: 300 });
    const store = await sagaStore('sqlite', false);
    const o = await createSagaOrchestrator({ store, sagas: [definition], pollIntervalMs: 50 });
    cleanups.push(() => o.close({ drainMs: 0 }));
    await o.start(definition, input, { id });
    const outcome = await o.result(id, { timeoutMs: 60_000 });
    assert.equal(outcome.state, 'completed', outcome.error ?? '');
    assert.ok((requestsByKey.get(`${id}:charge`) ?? 0) >= 2, 'the first attempt, then retries of the same key (409 while it ran, then its replay)');
    assert.deepEqual(await shop.effectsOf(id), ['charge:charge', 'commit:confirm', 'reserve:reserve']);
    assert.equal(shop.runs.get('charge'), chargesBefore + 1);
    const detail = await new SagaAdmin({ store, sagas: [definition] }).get(id);
    assert.ok((detail.steps.find((s) => s.step === 'charge')?.attempts ?? 0) >= 2);
  });
});

// ------------------------------------------------------------------ over messages

const natsServers = process.env.BULWARK_TEST_NATS_URL ?? '127.0.0.1:4222';
const natsRun = randomUUID().slice(0, 8);

for (const kind of ['embedded', 'nats'] as const) {
  const engine = kind === 'embedded' ? 'sqlite' : 'postgres';
  describe(`the saga over message participants (${kind} transport, ${engine})`, () => {
    let transport: Transport;
    let orders: Store<unknown>;
    let shop: Shop;
    let shopStore: Store<unknown>;
    let ordersOutbox: Outbox;
    let shopOutbox: Outbox;
    let replies: CommandReplies;
    let inventoryServer: CommandServer<unknown>;
    let paymentsServer: CommandServer<unknown>;
    let inventory: Participant;
    let payments: Participant;
    let orchestrator: SagaOrchestrator;
    let definition: SagaDefinition;
    const busyOnce = new Set<string>();
    const topics = { inventory: `inventory.commands`, payments: `payments.commands`, replies: `orders.replies` };

    const openTransport = async (): Promise<Transport> => {
      if (kind === 'embedded') {
        const bus: TestDatabase = await testDatabase('sqlite', 'bus');
        const t = await connectEmbeddedTransport({ url: bus.url, module: bus.module, pollIntervalMs: 20 });
        cleanups.push(bus.cleanup, () => t.close());
        return t;
      }
      const t = await connectNatsTransport({ servers: natsServers, name: `saga-test-${natsRun}`, streamPrefix: `SAGATEST_${natsRun}_`, subjectPrefix: `sagatest-${natsRun}.` });
      cleanups.push(async () => {
        await t.close();
        const nc = await connect({ servers: natsServers });
        const jsm = await jetstreamManager(nc);
        for await (const name of jsm.streams.names()) if (name.startsWith(`SAGATEST_${natsRun}_`)) await jsm.streams.delete(name);
        await nc.close();
      });
      return t;
    };

    before(async () => {
      transport = await openTransport();
      orders = await sagaStore(engine, true);
      const d = await testDatabase(engine, 'shop');
      shopStore = await openStore<unknown>({ module: d.module, url: d.url, migrations: { shop: shopMigrations, messaging: messagingMigrations, sagaParticipant: participantMigrations } });
      cleanups.push(d.cleanup, () => shopStore.close());
      shop = new Shop(shopStore);
      ordersOutbox = new Outbox();
      shopOutbox = new Outbox();

      // The participant side: its consumers (declared before any command is sent) and its relay.
      inventoryServer = await serveCommands<unknown>({
        store: shopStore,
        transport,
        outbox: shopOutbox,
        topic: topics.inventory,
        group: 'inventory',
        handlers: {
          'inventory.reserve': (req: { qty: number }, ctx) => shop.reserve(ctx.tx, ctx.idempotencyKey, req),
          'inventory.release': (_req, ctx) => shop.release(ctx.tx, ctx.idempotencyKey, ctx.invokeKey as string),
          'inventory.commit': (req: { reservationId: string }, ctx) => shop.commit(ctx.tx, ctx.idempotencyKey, req.reservationId),
          // Busy the first time for a key: writes an effect and a message, then refuses for now (both must vanish).
          'inventory.count': async (_req, ctx) => {
            await shop.commit(ctx.tx, ctx.idempotencyKey, 'count');
            await shopOutbox.add(ctx.tx, 'shop.audit', { type: StockCounted, key: ctx.sagaId, payload: { key: ctx.idempotencyKey } });
            if (!busyOnce.has(ctx.idempotencyKey)) {
              busyOnce.add(ctx.idempotencyKey);
              throw refuse('warehouse busy', { retryable: true, code: 'BUSY' });
            }
            return { counted: true };
          },
        },
      });
      paymentsServer = await serveCommands<unknown>({
        store: shopStore,
        transport,
        outbox: shopOutbox,
        topic: topics.payments,
        group: 'payments',
        handlers: {
          'payments.charge': async (req: { amount: number }, ctx) => {
            try {
              return await shop.charge(ctx.tx, ctx.idempotencyKey, req);
            } catch (error) {
              if (error instanceof Declined) throw refuse(error.message, { code: 'CARD_LIMIT' });
              throw error;
            }
          },
          'payments.refund': (_req, ctx) => shop.refund(ctx.tx, ctx.idempotencyKey, ctx.invokeKey as string),
        },
      });
      cleanups.push(() => inventoryServer.stop(), () => paymentsServer.stop());

      // The orchestrator side: replies, participants, relay.
      replies = await listenForReplies({ store: orders, transport, topic: topics.replies, group: 'orders-1' });
      cleanups.push(() => replies.stop());
      inventory = messageParticipant({ name: 'inventory', store: orders, outbox: ordersOutbox, topic: topics.inventory, replies });
      payments = messageParticipant({ name: 'payments', store: orders, outbox: ordersOutbox, topic: topics.payments, replies });
      for (const store of [orders, shopStore]) {
        const relay = new OutboxRelay({ store, transport, pollIntervalMs: 50 });
        await relay.start();
        cleanups.push(() => relay.stop());
      }

      definition = placeOrder(inventory, payments, { attemptTimeoutMs: 5_000 });
      orchestrator = await createSagaOrchestrator({ store: orders, sagas: [definition], pollIntervalMs: 50 });
      cleanups.push(() => orchestrator.close({ drainMs: 0 }));
    });

    it('completes, each participant applying each step once', async () => {
      const { id, outcome } = await runSaga(orchestrator, definition, order());
      assert.equal(outcome.state, 'completed', outcome.error ?? '');
      assert.equal(outcome.data.reservationId, `${id}:reserve`);
      assert.equal(outcome.data.chargeId, `${id}:charge`);
      assert.deepEqual(await shop.effectsOf(id), ['charge:charge', 'commit:confirm', 'reserve:reserve']);
    });

    it('compensates the reservation when the payment replies refused (and never refunds the refused charge)', async () => {
      const { id, outcome } = await runSaga(orchestrator, definition, order(5_000));
      assert.equal(outcome.state, 'compensated');
      assert.equal(outcome.failedStep, 'charge');
      assert.match(outcome.error ?? '', /ParticipantRefusedError: payments\.payments\.charge: refused: amount 5000 is over the card limit/);
      assert.deepEqual(await shop.effectsOf(id), ['release:reserve:compensate', 'reserve:reserve']);
      // The refusal was stored with the key: asking again gets the same refusal, without running the handler.
      const again = await payments.call('payments.charge', { amount: 5_000 }, stepContext(id, 'charge')).catch((e: unknown) => e);
      assert.ok(again instanceof ParticipantRefusedError);
      assert.equal(again.retryable, false);
      assert.equal(again.details.participantCode, 'CARD_LIMIT');
    });

    it('answers a command resent after an orchestrator restart with its stored reply, applying it once', async () => {
      const sagaId = randomUUID();
      const runsBefore = shop.runs.get('charge') ?? 0;
      // Process A sends the command and gives up waiting before the participant answers (it is stopped) ...
      const paused = await pauseServer(inventoryServer);
      const a = messageParticipant({ name: 'inventory', store: orders, outbox: ordersOutbox, topic: topics.inventory, replies, replyTimeoutMs: 100 });
      const lost = await a.call('inventory.reserve', { qty: 3 }, stepContext(sagaId, 'reserve')).catch((e: unknown) => e);
      assert.ok(lost instanceof ParticipantNoReplyError);
      assert.equal(lost.retryable, true);
      // ... and "dies": its replies listener stops. The participant comes back and handles the command (its reply finds no one).
      await replies.stop();
      inventoryServer = await paused.resume();
      // Process B (its own reply group) resumes the saga: the step runs again and the command is resent with the same key.
      const repliesB = await listenForReplies({ store: orders, transport, topic: topics.replies, group: 'orders-2' });
      cleanups.push(() => repliesB.stop());
      const b = messageParticipant({ name: 'inventory', store: orders, outbox: ordersOutbox, topic: topics.inventory, replies: repliesB });
      const first = await b.call<{ reservationId: string }>('inventory.reserve', { qty: 3 }, stepContext(sagaId, 'reserve'));
      const second = await b.call<{ reservationId: string }>('inventory.reserve', { qty: 3 }, stepContext(sagaId, 'reserve'));
      assert.deepEqual(first, { reservationId: `${sagaId}:reserve` });
      assert.deepEqual(second, first);
      assert.deepEqual(await shop.effectsOf(sagaId), ['reserve:reserve']);
      assert.equal(shop.runs.get('charge') ?? 0, runsBefore);
      await replies.start();
    });

    it('replays the stored answer itself (same result, handler run once) and absorbs a redelivered command in the inbox', async () => {
      const sagaId = randomUUID();
      const runs = shop.runs.get('charge') ?? 0;
      const ctx = stepContext(sagaId, 'charge');
      const first = await payments.call<{ chargeId: string; nonce: string }>('payments.charge', { amount: 10 }, ctx);
      const resent = await payments.call<{ chargeId: string; nonce: string }>('payments.charge', { amount: 10 }, ctx);
      assert.deepEqual(resent, first, 'the stored reply, nonce included');
      assert.equal(shop.runs.get('charge'), runs + 1);

      // The broker delivering the same command message again: the consumer's inbox takes it as a duplicate.
      const rows = await sql<{ body: string }>`select body from messaging_outbox where topic = ${topics.payments} and key = ${sagaId}`.execute(orders.db);
      assert.equal(rows.rows.length, 2);
      const raw = rows.rows[0]?.body as string;
      const envelope = decodeEnvelope(raw);
      assert.equal(envelope.headers['idempotency-key'], `${sagaId}:charge`);
      assert.equal(envelope.headers['bulwark-reply-to'], topics.replies);
      assert.equal(envelope.key, sagaId);
      const delivery: Delivery = { raw, envelope, parseError: undefined, deliveryCount: 2, ack: async () => undefined, nak: async () => undefined, term: async () => undefined };
      assert.equal(await paymentsServer.consumer.process(delivery), 'duplicate');
      assert.equal(shop.runs.get('charge'), runs + 1);
      assert.deepEqual(await shop.effectsOf(sagaId), ['charge:charge']);
    });

    it('retries a step whose reply does not come within the attempt timeout, resending the same key; the participant applies it once', async () => {
      const quick = placeOrder(inventory, payments, { attemptTimeoutMs: 500 });
      const o = await createSagaOrchestrator({ store: orders, sagas: [quick], pollIntervalMs: 50, owner: `quick-${kind}` });
      cleanups.push(() => o.close({ drainMs: 0 }));
      const runs = shop.runs.get('charge') ?? 0;
      await paymentsServer.stop();
      const { id } = await o.start(quick, order(50));
      // The charge command goes unanswered; each attempt that times out sends it again.
      for (;;) {
        const sent = await sql<{ n: number | string }>`select count(*) as n from messaging_outbox where topic = ${topics.payments} and key = ${id}`.execute(orders.db);
        if (Number(sent.rows[0]?.n) >= 2) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await paymentsServer.consumer.start();
      const outcome = await o.result(id, { timeoutMs: 60_000 });
      assert.equal(outcome.state, 'completed', outcome.error ?? '');
      assert.deepEqual(await shop.effectsOf(id), ['charge:charge', 'commit:confirm', 'reserve:reserve']);
      assert.equal(shop.runs.get('charge'), runs + 1);
      const detail = await new SagaAdmin({ store: orders, sagas: [quick] }).get(id);
      assert.ok((detail.steps.find((s) => s.step === 'charge')?.attempts ?? 0) >= 2);
    });

    it('replies "refused for now" without storing it, rolling back the handler\'s writes and messages; the next call runs it', async () => {
      const sagaId = randomUUID();
      const ctx = stepContext(sagaId, 'count');
      const busy = await inventory.call('inventory.count', {}, ctx).catch((e: unknown) => e);
      assert.ok(busy instanceof ParticipantUnavailableError, String(busy));
      assert.equal(busy.retryable, true);
      assert.match(busy.message, /warehouse busy/);
      assert.deepEqual(await shop.effectsOf(sagaId), []);
      assert.deepEqual(await inventory.call('inventory.count', {}, ctx), { counted: true });
      assert.deepEqual(await shop.effectsOf(sagaId), ['commit:count']);
      const audit = await sql<{ key: string }>`select key from messaging_outbox where topic = 'shop.audit' and key = ${sagaId}`.execute(shopStore.db);
      assert.equal(audit.rows.length, 1, 'only the successful run\'s message was written');
    });

    it('sends the compensation key and the invoke key it undoes', async () => {
      const sagaId = randomUUID();
      await payments.call('payments.charge', { amount: 10 }, stepContext(sagaId, 'charge'));
      const comp = { ...stepContext(sagaId, 'charge'), idempotencyKey: `${sagaId}:charge:compensate`, invokeKey: `${sagaId}:charge`, output: undefined };
      await payments.call('payments.refund', {}, comp);
      await payments.call('payments.refund', {}, comp);
      const rows = await sql<{ key: string; kind: string; undoes: string | null }>`select key, kind, undoes from shop_effects where key like ${`${sagaId}:%`} order by kind`.execute(shopStore.db);
      assert.deepEqual(rows.rows, [
        { key: `${sagaId}:charge`, kind: 'charge', undoes: null },
        { key: `${sagaId}:charge:compensate`, kind: 'refund', undoes: `${sagaId}:charge` },
      ]);
    });

  });
}

/** Stops a command server; `resume()` starts an equivalent one on the same group. */
async function pauseServer(server: CommandServer<unknown>): Promise<{ resume: () => Promise<CommandServer<unknown>> }> {
  await server.stop();
  return {
    resume: async () => {
      await server.consumer.start();
      return server;
    },
  };
}
