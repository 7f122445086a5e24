/**
 * Payments: a card-processor simulator with a ledger. A saga participant:
 *
 * - `POST /charges` (Idempotency-Key = the saga's invoke key, also the
 *   charge id) `{ orderId, amount, currency, paymentMethod }`: charges once
 *   per key, whatever the retries (the kit's idempotency record plus the
 *   ledger's primary key). Simulated latency; `errorRate` of attempts fail
 *   with 503 (nothing recorded: the caller retries with the same key);
 *   `declineRate` of keys — drawn from the key, so a retry draws the same —
 *   and every `card_declined` payment method are declined with 402
 *   `payment-declined` (a refusal; nothing recorded). `card_error` always
 *   fails with 503.
 * - `POST /charges/:id/refund`: refunds a charge once; refunding a charge that
 *   never arrived leaves a tombstone, so a late charge with that key is
 *   refused (409 `charge-cancelled`).
 *
 * Internal reads: `GET /charges?orderId=`, `GET /ledger` (totals). Fault injection:
 * `GET`/`PUT /simulator` reads and changes latency, decline and error rates at runtime.
 */
import { httpMigrations, idempotency } from '@bulwark/http';
import type { Migration, Store, UnitOfWork } from '@bulwark/store';
import type { FastifyInstance } from 'fastify';
import { internalOnly, keyedDraw, openModuleStore, seededRandom, shopProblem, sleep } from '../../platform.js';
import type { ModuleContext, ShopModule } from '../module.js';

type ChargeStatus = 'charged' | 'refunded' | 'tombstone';

interface PaymentsDb {
  payments_charges: { id: string; order_id: string | null; amount: number; currency: string; status: ChargeStatus; created_at: number; updated_at: number };
  payments_ledger: { seq: number | undefined; charge_id: string; kind: 'charge' | 'refund'; amount: number; at: number };
}

const migrations: Migration[] = [
  {
    id: '20261201T1200_payments',
    // PostgreSQL: amounts are bigint (up to 10^12 minor units) and read back through Number(); SQLite's integer is 64-bit already.
    up: async (db, dialect) => {
      const money = dialect === 'postgres' ? 'bigint' : 'integer';
      await db.schema
        .createTable('payments_charges')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('order_id', 'text')
        .addColumn('amount', money, (c) => c.notNull())
        .addColumn('currency', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('payments_charges_order').on('payments_charges').column('order_id').execute();
      await db.schema
        .createTable('payments_ledger')
        .addColumn('seq', dialect === 'postgres' ? 'bigserial' : 'integer', (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('charge_id', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('amount', money, (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .execute();
      // One charge and at most one refund per charge, whatever happens above.
      await db.schema.createIndex('payments_ledger_once').on('payments_ledger').columns(['charge_id', 'kind']).unique().execute();
    },
  },
];

const idem = { config: { idempotency: { required: true } } } as const;
const idParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 255 } } } as const;

export const PAYMENT_METHODS = ['card_ok', 'card_declined', 'card_error'] as const;

export async function createPaymentsModule(ctx: ModuleContext): Promise<ShopModule> {
  const { config } = ctx;
  const sim = config.payments;
  const store = await openModuleStore<PaymentsDb>(config, 'payments', { payments: migrations, http: httpMigrations });
  const random = seededRandom(sim.seed);

  async function ledger(tx: UnitOfWork<PaymentsDb>, chargeId: string, kind: 'charge' | 'refund', amount: number): Promise<void> {
    await tx.db.insertInto('payments_ledger').values({ seq: undefined, charge_id: chargeId, kind, amount, at: Date.now() }).execute();
  }

  async function routes(app: FastifyInstance): Promise<void> {
    await app.register(idempotency, { store: store as unknown as Store<never>, identity: () => 'shop-internal' });
    const internal = internalOnly(config.internalKey);

    app.post<{ Body: { orderId?: string; amount: number; currency: string; paymentMethod?: (typeof PAYMENT_METHODS)[number] } }>(
      '/charges',
      {
        ...idem,
        preHandler: internal,
        schema: {
          body: {
            type: 'object',
            required: ['amount', 'currency'],
            additionalProperties: false,
            properties: {
              orderId: { type: 'string', maxLength: 64 },
              amount: { type: 'integer', minimum: 1, maximum: 1_000_000_000_000 },
              currency: { type: 'string', pattern: '^[A-Z]{3}$' },
              paymentMethod: { type: 'string', enum: [...PAYMENT_METHODS] },
            },
          },
        },
      },
      async (request, reply) => {
        const id = request.idempotency.key as string;
        const { amount, currency, orderId, paymentMethod = 'card_ok' } = request.body;
        // The processor's latency, then its verdict.
        await sleep(sim.latencyMs + Math.floor(random() * (sim.latencyJitterMs + 1)));
        if (paymentMethod === 'card_error' || random() < sim.errorRate) throw shopProblem('processor-unavailable', 503, 'Payment processor unavailable', 'the processor failed; retry with the same key');
        if (paymentMethod === 'card_declined' || keyedDraw(sim.seed, id) < sim.declineRate) {
          throw shopProblem('payment-declined', 402, 'Payment declined', 'the card was declined', { orderId });
        }
        return request.idempotency.transaction<PaymentsDb>(async (tx) => {
          const existing = await tx.forUpdate(tx.db.selectFrom('payments_charges').selectAll().where('id', '=', id)).executeTakeFirst();
          if (existing?.status === 'tombstone') throw shopProblem('charge-cancelled', 409, 'Charge cancelled', `charge ${id} was refunded before it arrived; refused`);
          if (existing !== undefined) return { chargeId: id, status: existing.status, amount: Number(existing.amount), currency: existing.currency };
          const at = Date.now();
          await tx.db.insertInto('payments_charges').values({ id, order_id: orderId ?? null, amount, currency, status: 'charged', created_at: at, updated_at: at }).execute();
          await ledger(tx, id, 'charge', amount);
          reply.code(201);
          return { chargeId: id, status: 'charged', amount, currency };
        });
      },
    );

    app.post<{ Params: { id: string } }>('/charges/:id/refund', { ...idem, preHandler: internal, schema: { params: idParam } }, async (request) =>
      request.idempotency.transaction<PaymentsDb>(async (tx) => {
        const { id } = request.params;
        const row = await tx.forUpdate(tx.db.selectFrom('payments_charges').selectAll().where('id', '=', id)).executeTakeFirst();
        const at = Date.now();
        if (row === undefined) {
          await tx.db.insertInto('payments_charges').values({ id, order_id: null, amount: 0, currency: 'XXX', status: 'tombstone', created_at: at, updated_at: at }).execute();
          return { chargeId: id, status: 'tombstone', refunded: 0 };
        }
        const amount = Number(row.amount);
        if (row.status !== 'charged') return { chargeId: id, status: row.status, refunded: row.status === 'refunded' ? amount : 0 };
        await tx.db.updateTable('payments_charges').set({ status: 'refunded', updated_at: at }).where('id', '=', id).execute();
        await ledger(tx, id, 'refund', amount);
        return { chargeId: id, status: 'refunded', refunded: amount };
      }),
    );

    app.get<{ Querystring: { orderId: string } }>(
      '/charges',
      { preHandler: internal, schema: { querystring: { type: 'object', required: ['orderId'], properties: { orderId: { type: 'string', minLength: 1, maxLength: 64 } } } } },
      async (request) => {
        const rows = await store.db.selectFrom('payments_charges').selectAll().where('order_id', '=', request.query.orderId).orderBy('created_at').execute();
        return { charges: rows.map((r) => ({ chargeId: r.id, orderId: r.order_id, amount: Number(r.amount), currency: r.currency, status: r.status })) };
      },
    );

    // The simulator's behaviour, changed at runtime (fault injection: an outage is `errorRate: 1`).
    const rate = { type: 'number', minimum: 0, maximum: 1 } as const;
    const ms = { type: 'integer', minimum: 0, maximum: 60_000 } as const;
    const simulator = () => ({ latencyMs: sim.latencyMs, latencyJitterMs: sim.latencyJitterMs, declineRate: sim.declineRate, errorRate: sim.errorRate });
    app.get('/simulator', { preHandler: internal }, () => Promise.resolve(simulator()));
    app.put<{ Body: Partial<Pick<typeof sim, 'latencyMs' | 'latencyJitterMs' | 'declineRate' | 'errorRate'>> }>(
      '/simulator',
      { preHandler: internal, schema: { body: { type: 'object', additionalProperties: false, minProperties: 1, properties: { latencyMs: ms, latencyJitterMs: ms, declineRate: rate, errorRate: rate } } } },
      (request) => {
        Object.assign(sim, request.body);
        return Promise.resolve(simulator());
      },
    );

    app.get('/ledger', { preHandler: internal }, async () => {
      const rows = await store.db.selectFrom('payments_ledger').select(['kind']).select((eb) => [eb.fn.sum<number>('amount').as('total'), eb.fn.countAll<number>().as('count')]).groupBy('kind').execute();
      const of = (kind: string) => rows.find((r) => r.kind === kind);
      const charged = Number(of('charge')?.total ?? 0);
      const refunded = Number(of('refund')?.total ?? 0);
      return { charged, refunded, net: charged - refunded, charges: Number(of('charge')?.count ?? 0), refunds: Number(of('refund')?.count ?? 0) };
    });

    // Internal read for the invariant checker (src/invariants): every charge with what the ledger holds for it, keyset-paged by id.
    app.get<{ Querystring: { after?: string; limit?: number } }>(
      '/internal/charges',
      { preHandler: internal, schema: { querystring: { type: 'object', additionalProperties: false, properties: { after: { type: 'string', minLength: 1, maxLength: 255 }, limit: { type: 'integer', minimum: 1, maximum: 1_000 } } } } },
      async (request) => {
        const limit = request.query.limit ?? 1_000;
        let query = store.db.selectFrom('payments_charges').select(['id', 'order_id', 'amount', 'currency', 'status']).orderBy('id').limit(limit);
        if (request.query.after !== undefined) query = query.where('id', '>', request.query.after);
        const rows = await query.execute();
        const ids = rows.map((r) => r.id);
        const sums = ids.length === 0 ? [] : await store.db.selectFrom('payments_ledger').select(['charge_id', 'kind']).select((eb) => eb.fn.sum<number>('amount').as('total')).where('charge_id', 'in', ids).groupBy(['charge_id', 'kind']).execute();
        const byKey = new Map(sums.map((x) => [`${x.charge_id}|${x.kind}`, Number(x.total)]));
        const sum = (id: string, kind: 'charge' | 'refund') => byKey.get(`${id}|${kind}`) ?? 0;
        return {
          charges: rows.map((r) => ({ chargeId: r.id, orderId: r.order_id, amount: Number(r.amount), currency: r.currency, status: r.status, charged: sum(r.id, 'charge'), refunded: sum(r.id, 'refund') })),
          next: rows.length === limit ? (rows.at(-1)?.id ?? null) : null,
        };
      },
    );
  }

  return {
    name: 'payments',
    routes,
    ready: () => store.db.selectFrom('payments_charges').select('id').limit(1).execute(),
    close: () => store.close(),
  };
}
