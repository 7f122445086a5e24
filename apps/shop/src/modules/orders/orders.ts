/**
 * Orders: the order rows, the CreateOrderSaga that drives them (its state in
 * the same store), and the OrderConfirmed outbox.
 *
 * Routes (`/api/orders`, bearer token required):
 * - `POST /` `{ items: [{ sku, qty }], paymentMethod? }` with an
 *   `Idempotency-Key`: prices come from the catalog (never the client), the
 *   order row (PENDING) and its saga are written in one transaction together
 *   with the idempotency record; 202 `{ orderId, status, statusUrl, eventsUrl, total, currency }`.
 * - `GET /` the caller's orders; `GET /:id` one of them (404 for another user's);
 * - `GET /:id/events` Server-Sent Events: `status` events until CONFIRMED or CANCELLED.
 */
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { httpMigrations, idempotency, isProblemError, problem } from '@bulwark/http';
import { bearerAuth } from '@bulwark/http/auth';
import { isHttpClientError } from '@bulwark/http/client';
import { messagingMigrations, Outbox, OutboxRelay, uuidv7 } from '@bulwark/messaging';
import { createSagaOrchestrator, SagaAdmin, sagaMigrations, type SagaDefinition, type SagaState, type SagaEventName, type SagaEvents, type SagaOrchestrator } from '@bulwark/saga';
import { httpParticipant } from '@bulwark/saga/participants';
import type { Migration, Store } from '@bulwark/store';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { SagaEventSource } from '@bulwark/telemetry';
import { ORDERS_TOPIC, OrderConfirmed } from '../../contracts.js';
import { internalOnly, lazyParticipant, openModuleStore, shopProblem } from '../../platform.js';
import { PAYMENT_METHODS } from '../payments/payments.js';
import { SKU_PATTERN } from '../catalog/catalog.js';
import type { ModuleContext, ShopModule } from '../module.js';
import { createOrderSaga, TERMINAL_STATUSES, type OrderInput, type OrderLine, type OrderStatus } from './saga.js';

interface OrdersDb {
  orders: { id: string; user_id: string; status: OrderStatus; total: number; currency: string; payment_method: string; failure_reason: string | null; created_at: number; updated_at: number };
  order_items: { order_id: string; sku: string; qty: number; unit_price: number };
}

const migrations: Migration[] = [
  {
    id: '20261201T1200_orders',
    // PostgreSQL: the total is bigint (read back through Number()); SQLite's integer is 64-bit already.
    up: async (db, dialect) => {
      await db.schema
        .createTable('orders')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('total', dialect === 'postgres' ? 'bigint' : 'integer', (c) => c.notNull())
        .addColumn('currency', 'text', (c) => c.notNull())
        .addColumn('payment_method', 'text', (c) => c.notNull())
        .addColumn('failure_reason', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('orders_user').on('orders').columns(['user_id', 'created_at']).execute();
      await db.schema
        .createTable('order_items')
        .addColumn('order_id', 'text', (c) => c.notNull())
        .addColumn('sku', 'text', (c) => c.notNull())
        .addColumn('qty', 'integer', (c) => c.notNull())
        .addColumn('unit_price', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('order_items_pk', ['order_id', 'sku'])
        .execute();
    },
  },
];

/** Which statuses each status may be entered from. Compensation statuses come from any non-terminal one. */
const NON_TERMINAL: OrderStatus[] = ['PENDING', 'INVENTORY_RESERVED', 'PAYMENT_CHARGED', 'PAYMENT_REFUNDED', 'INVENTORY_RELEASED'];
const ENTERED_FROM: Record<OrderStatus, readonly OrderStatus[]> = {
  PENDING: [],
  INVENTORY_RESERVED: ['PENDING'],
  PAYMENT_CHARGED: ['INVENTORY_RESERVED'],
  CONFIRMED: ['PAYMENT_CHARGED'],
  PAYMENT_REFUNDED: NON_TERMINAL,
  INVENTORY_RELEASED: NON_TERMINAL,
  CANCELLED: NON_TERMINAL,
};

interface OrderView {
  orderId: string;
  status: OrderStatus;
  terminal: boolean;
  items: OrderLine[];
  total: number;
  currency: string;
  paymentMethod: string;
  failureReason: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface OrdersModule extends ShopModule {
  /** The saga definition (for tests and tools). */
  readonly saga: SagaDefinition;
  readonly sagas: SagaEventSource;
}

export async function createOrdersModule(ctx: ModuleContext): Promise<OrdersModule> {
  const { config, directory, verifier, transport } = ctx;
  const store = await openModuleStore<OrdersDb>(config, 'orders', { orders: migrations, saga: sagaMigrations, messaging: messagingMigrations, http: httpMigrations });
  const outbox = new Outbox();
  const changes = new EventEmitter();
  changes.setMaxListeners(0);
  const attemptTimeoutMs = config.orders.stepAttemptTimeoutMs;

  async function setStatus(orderId: string, to: OrderStatus): Promise<void> {
    const from = [...ENTERED_FROM[to]];
    if (from.length === 0) return;
    await store.transaction(async (tx) => {
      const result = await tx.db.updateTable('orders').set({ status: to, updated_at: Date.now() }).where('id', '=', orderId).where('status', 'in', from).executeTakeFirst();
      if (result.numUpdatedRows > 0n) tx.afterCommit(() => changes.emit(orderId, to));
    });
  }

  async function confirm(order: OrderInput): Promise<void> {
    await store.transaction(async (tx) => {
      const row = await tx.forUpdate(tx.db.selectFrom('orders').select('status').where('id', '=', order.orderId)).executeTakeFirst();
      if (row?.status === 'CONFIRMED') return;
      if (row?.status !== 'PAYMENT_CHARGED') throw new Error(`order ${order.orderId} is ${row?.status ?? 'missing'}, not PAYMENT_CHARGED`);
      await tx.db.updateTable('orders').set({ status: 'CONFIRMED', updated_at: Date.now() }).where('id', '=', order.orderId).execute();
      await outbox.add(tx, ORDERS_TOPIC, {
        type: OrderConfirmed,
        key: order.orderId,
        payload: { orderId: order.orderId, userId: order.userId, total: order.total, currency: order.currency, items: order.items },
      });
      tx.afterCommit(() => changes.emit(order.orderId, 'CONFIRMED'));
    });
  }

  // The saga's steps retry; the client only fails fast. Its breaker opens for 2 s at first (doubling
  // while the dependency stays down, up to 30 s), so a short outage costs seconds, not the default 30 s.
  const participantClient = { retry: 'none', timeoutMs: attemptTimeoutMs, breaker: { openDuration: { baseMs: 2_000, multiplier: 2, maxMs: 30_000 } } } as const;
  const inventory = lazyParticipant('inventory', () =>
    httpParticipant(directory.client('inventory', 'orders-inventory', participantClient), {
      reserve: 'POST /reservations',
      release: 'POST /reservations/{invokeKey}/release',
      commit: { method: 'POST', path: (req: { reservationId: string }) => `/reservations/${encodeURIComponent(req.reservationId)}/commit`, body: () => ({}) },
    }),
  );
  const payments = lazyParticipant('payments', () =>
    httpParticipant(directory.client('payments', 'orders-payments', participantClient), {
      charge: 'POST /charges',
      refund: 'POST /charges/{invokeKey}/refund',
    }),
  );
  const saga = createOrderSaga({ inventory, payments, records: { setStatus, confirm }, timing: { deadlineMs: config.orders.sagaDeadlineMs, attemptTimeoutMs } });

  let orchestrator: SagaOrchestrator | undefined;
  let relay: OutboxRelay<OrdersDb> | undefined;
  const pendingSagaListeners: [SagaEventName, (e: never) => void][] = [];

  async function view(orderId: string): Promise<(OrderView & { userId: string }) | undefined> {
    const row = await store.db.selectFrom('orders').selectAll().where('id', '=', orderId).executeTakeFirst();
    if (row === undefined) return undefined;
    const items = await store.db.selectFrom('order_items').select(['sku', 'qty', 'unit_price']).where('order_id', '=', orderId).orderBy('sku').execute();
    return {
      orderId: row.id,
      userId: row.user_id,
      status: row.status,
      terminal: TERMINAL_STATUSES.has(row.status),
      items: items.map((i) => ({ sku: i.sku, qty: i.qty, unitPrice: i.unit_price })),
      total: Number(row.total),
      currency: row.currency,
      paymentMethod: row.payment_method,
      failureReason: row.failure_reason,
      createdAt: new Date(Number(row.created_at)).toISOString(),
      updatedAt: new Date(Number(row.updated_at)).toISOString(),
    };
  }

  async function ownOrder(request: FastifyRequest<{ Params: { id: string } }>): Promise<OrderView> {
    const order = await view(request.params.id);
    // Another user's order is as unknown as a missing one.
    if (order === undefined || order.userId !== request.user?.sub) throw shopProblem('unknown-order', 404, 'Unknown order', `no order ${request.params.id}`);
    const { userId: _userId, ...rest } = order;
    return rest;
  }

  const streams = new Set<ServerResponse>();

  async function routes(app: FastifyInstance): Promise<void> {
    await app.register(bearerAuth, { verifier, defaultAuth: { scopes: ['orders:read'] } });
    await app.register(idempotency, { store: store as unknown as Store<never>, identity: (request) => request.user?.sub });
    const idParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } } as const;
    const catalog = () => directory.client('catalog', 'orders-catalog', { timeoutMs: 1_000, deadlineMs: 2_500 });

    app.post<{ Body: { items: { sku: string; qty: number }[]; paymentMethod?: string } }>(
      '/',
      {
        config: { idempotency: { required: true }, auth: { scopes: ['orders:write'] } },
        schema: {
          body: {
            type: 'object',
            required: ['items'],
            additionalProperties: false,
            properties: {
              items: {
                type: 'array',
                minItems: 1,
                maxItems: config.orders.maxItems,
                items: {
                  type: 'object',
                  required: ['sku', 'qty'],
                  additionalProperties: false,
                  properties: { sku: { type: 'string', pattern: SKU_PATTERN }, qty: { type: 'integer', minimum: 1, maximum: config.orders.maxQty } },
                },
              },
              paymentMethod: { type: 'string', enum: [...PAYMENT_METHODS] },
            },
          },
        },
      },
      async (request, reply) => {
        if (orchestrator === undefined) throw problem('not-ready', 'orders are not accepted yet');
        const userId = (request.user as { sub: string }).sub;
        const bySku = new Map<string, number>();
        for (const { sku, qty } of request.body.items) bySku.set(sku, (bySku.get(sku) ?? 0) + qty);
        for (const [sku, qty] of bySku) {
          if (qty > config.orders.maxQty) throw problem('validation', `${sku}: at most ${config.orders.maxQty} per order`, { extensions: { 'invalid-params': [{ in: 'body', name: 'items', reason: `${sku}: at most ${config.orders.maxQty}` }] } });
        }
        // The server's prices, never the client's.
        let priced: { prices: { sku: string; amount: number; currency: string }[]; unknown: string[] };
        try {
          priced = await catalog().get('/prices', { query: { skus: [...bySku.keys()].join(',') } });
        } catch (error) {
          if (isProblemError(error) || !isHttpClientError(error)) throw error;
          throw problem('dependency-unavailable', 'the catalog did not answer');
        }
        if (priced.unknown.length > 0) throw shopProblem('unknown-product', 422, 'Unknown product', `not in the catalog: ${priced.unknown.join(', ')}`, { skus: priced.unknown });
        const currencies = new Set(priced.prices.map((p) => p.currency));
        if (currencies.size !== 1) throw shopProblem('mixed-currencies', 422, 'Mixed currencies', 'the items are priced in different currencies');
        const price = new Map(priced.prices.map((p) => [p.sku, p.amount]));
        const items: OrderLine[] = [...bySku].map(([sku, qty]) => ({ sku, qty, unitPrice: price.get(sku) as number }));
        const total = items.reduce((sum, i) => sum + i.qty * i.unitPrice, 0);
        const currency = [...currencies][0] as string;
        const orderId = uuidv7();
        const paymentMethod = request.body.paymentMethod ?? 'card_ok';
        const statusUrl = `/api/orders/${orderId}`;
        const sagas = orchestrator;
        return request.idempotency.transaction<OrdersDb>(async (tx) => {
          const at = Date.now();
          await tx.db.insertInto('orders').values({ id: orderId, user_id: userId, status: 'PENDING', total, currency, payment_method: paymentMethod, failure_reason: null, created_at: at, updated_at: at }).execute();
          await tx.db.insertInto('order_items').values(items.map((i) => ({ order_id: orderId, sku: i.sku, qty: i.qty, unit_price: i.unitPrice }))).execute();
          await sagas.startIn(tx, saga, { orderId, userId, items, total, currency, paymentMethod } satisfies OrderInput, { id: orderId });
          reply.code(202).header('location', statusUrl);
          return { orderId, status: 'PENDING', statusUrl, eventsUrl: `${statusUrl}/events`, total, currency };
        });
      },
    );

    app.get<{ Querystring: { limit?: number } }>('/', { schema: { querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 100 } } } } }, async (request) => {
      const rows = await store.db
        .selectFrom('orders')
        .select(['id', 'status', 'total', 'currency', 'created_at'])
        .where('user_id', '=', (request.user as { sub: string }).sub)
        .orderBy('created_at', 'desc')
        .limit(request.query.limit ?? 20)
        .execute();
      return { orders: rows.map((r) => ({ orderId: r.id, status: r.status, total: Number(r.total), currency: r.currency, createdAt: new Date(Number(r.created_at)).toISOString() })) };
    });

    app.get<{ Params: { id: string } }>('/:id', { schema: { params: idParam } }, (request) => ownOrder(request));

    app.get<{ Params: { id: string } }>('/:id/events', { schema: { params: idParam } }, async (request, reply) => {
      const order = await ownOrder(request);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-request-id': request.id });
      streams.add(res);
      let last: OrderStatus | undefined;
      let ended = false;
      const send = (o: OrderView): void => {
        if (ended || o.status === last) return;
        last = o.status;
        res.write(`event: status\nid: ${o.status}\ndata: ${JSON.stringify(o)}\n\n`);
        if (o.terminal) end();
      };
      const refresh = (): void => {
        void ownOrder(request).then(send, () => end());
      };
      const poll = setInterval(refresh, 1_000);
      const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
      const end = (): void => {
        if (ended) return;
        ended = true;
        clearInterval(poll);
        clearInterval(ping);
        changes.off(order.orderId, refresh);
        streams.delete(res);
        res.end();
      };
      changes.on(order.orderId, refresh);
      request.raw.on('close', end);
      send(order);
    });

    // Internal reads for the invariant checker (src/invariants): every order with its items and the terminal
    // statuses its saga log records (CONFIRMED: the pivot succeeded; CANCELLED: recordOrder was compensated),
    // and SagaAdmin's list and overdue. Keyset-paged by id.
    const internal = { config: { auth: false as const }, preHandler: internalOnly(config.internalKey) };
    const admin = new SagaAdmin({ store: store as unknown as Store<unknown>, sagas: [saga] });
    const page = { after: { type: 'string', minLength: 1, maxLength: 64 }, limit: { type: 'integer', minimum: 1, maximum: 500 } } as const;
    app.get<{ Querystring: { after?: string; limit?: number } }>('/internal/orders', { ...internal, schema: { querystring: { type: 'object', additionalProperties: false, properties: page } } }, async (request) => {
      const limit = request.query.limit ?? 500;
      let query = store.db.selectFrom('orders').select(['id', 'status', 'total', 'currency', 'failure_reason', 'created_at', 'updated_at']).orderBy('id').limit(limit);
      if (request.query.after !== undefined) query = query.where('id', '>', request.query.after);
      const rows = await query.execute();
      const ids = rows.map((r) => r.id);
      const items = ids.length === 0 ? [] : await store.db.selectFrom('order_items').select(['order_id', 'sku', 'qty']).where('order_id', 'in', ids).execute();
      const log = store as unknown as Store<{ saga_steps: { saga_id: string; seq: number; step: string; phase: string; outcome: string } }>;
      const terminal = ids.length === 0 ? [] : await log.db.selectFrom('saga_steps').select(['saga_id', 'step']).where('saga_id', 'in', ids).where('outcome', '=', 'succeeded')
        .where((eb) => eb.or([eb.and([eb('step', '=', 'confirmOrder'), eb('phase', '=', 'invoke')]), eb.and([eb('step', '=', 'recordOrder'), eb('phase', '=', 'compensate')])]))
        .orderBy('saga_id').orderBy('seq').execute();
      return {
        orders: rows.map((r) => ({
          orderId: r.id,
          status: r.status,
          total: Number(r.total),
          currency: r.currency,
          items: items.filter((i) => i.order_id === r.id).map((i) => ({ sku: i.sku, qty: i.qty })),
          terminalHistory: terminal.filter((t) => t.saga_id === r.id).map((t) => (t.step === 'confirmOrder' ? 'CONFIRMED' : 'CANCELLED')),
          failureReason: r.failure_reason,
          createdAt: Number(r.created_at),
          updatedAt: Number(r.updated_at),
        })),
        next: rows.length === limit ? (ids.at(-1) ?? null) : null,
      };
    });
    app.get<{ Querystring: { states?: string; after?: string; limit?: number } }>(
      '/internal/sagas',
      { ...internal, schema: { querystring: { type: 'object', additionalProperties: false, properties: { ...page, states: { type: 'string', pattern: '^[a-z,]+$', maxLength: 200 } } } } },
      async (request) => {
        const { states, after, limit } = request.query;
        const sagas = await admin.list({ ...(states === undefined ? {} : { states: states.split(',').filter((s) => s !== '') as SagaState[] }), ...(after === undefined ? {} : { after }), limit: limit ?? 500 });
        return { sagas, next: sagas.length === (limit ?? 500) ? (sagas.at(-1)?.id ?? null) : null };
      },
    );
    app.get<{ Querystring: { limit?: number } }>('/internal/sagas/overdue', { ...internal, schema: { querystring: { type: 'object', additionalProperties: false, properties: { limit: page.limit } } } }, async (request) => ({
      sagas: await admin.overdue(request.query.limit ?? 500),
    }));
  }

  return {
    name: 'orders',
    saga,
    routes,
    get sagas() {
      // Telemetry subscribes before the orchestrator exists: listeners are queued and attached at start.
      return {
        on: <E extends keyof SagaEvents>(event: E, listener: (e: SagaEvents[E]) => void) => {
          if (orchestrator !== undefined) return orchestrator.on(event, listener);
          pendingSagaListeners.push([event, listener]);
          return () => undefined;
        },
        get active() {
          return orchestrator?.active ?? 0;
        },
      };
    },
    async start() {
      const r = new OutboxRelay({ store, transport, pollIntervalMs: 1_000 });
      await r.start();
      relay = r;
      const o = await createSagaOrchestrator({ store: store as unknown as Store<unknown>, sagas: [saga], pollIntervalMs: 1_000 });
      o.on('failed', (e) => {
        void store.db.updateTable('orders').set({ failure_reason: `${e.step}: ${e.error}`.slice(0, 500) }).where('id', '=', e.sagaId).execute().catch(() => undefined);
      });
      for (const [event, listener] of pendingSagaListeners) o.on(event, listener as never);
      orchestrator = o;
    },
    ready: () => store.db.selectFrom('orders').select('id').limit(1).execute(),
    async close() {
      for (const res of streams) res.end();
      await orchestrator?.close({ drainMs: 2_000 });
      await relay?.stop();
      await store.close();
    },
  };
}
