/**
 * Inventory: stock per sku (`available + reserved + sold = initial`, always),
 * reservations with expiry, release, commit. A saga participant:
 *
 * - `POST /reservations` (Idempotency-Key = the saga's invoke key, which is
 *   also the reservation id) takes stock for every item or for none: each
 *   item is one guarded update (`available >= qty`) in one transaction, so on
 *   SQLite (one writer) or PostgreSQL (row locks) two orders for the last unit
 *   cannot both win. 409 `out-of-stock` / 422 `unknown-product` are refusals.
 * - `POST /reservations/:id/release` gives the stock back once; releasing a
 *   reservation that never arrived leaves a tombstone, so a late reserve with
 *   that key is refused (409 `reservation-cancelled`).
 * - `POST /reservations/:id/commit` turns held stock into sold (after the
 *   order's pivot). An expired reservation is re-taken if the stock is still
 *   there, else 409.
 * - a sweeper releases held reservations past `expires_at`.
 *
 * Public: `GET /stock/:sku`, `GET /stock?skus=A,B`. Internal/admin:
 * `PUT /stock/:sku` `{ available }`, `GET /reservations/:id`, `GET /totals`.
 */
import { httpMigrations, idempotency } from '@bulwark/http';
import type { Migration, Store, UnitOfWork } from '@bulwark/store';
import type { FastifyInstance } from 'fastify';
import { internalOnly, openModuleStore, shopProblem } from '../../platform.js';
import { SEED_PRODUCTS } from '../../seed.js';
import { SKU_PATTERN } from '../catalog/catalog.js';
import type { ModuleContext, ShopModule } from '../module.js';

type ReservationStatus = 'held' | 'released' | 'committed' | 'expired' | 'tombstone';

interface InventoryDb {
  inventory_stock: { sku: string; available: number; reserved: number; sold: number; initial: number; updated_at: number };
  inventory_reservations: { id: string; order_id: string | null; status: ReservationStatus; items: string; expires_at: number; created_at: number; updated_at: number };
}

interface Item {
  sku: string;
  qty: number;
}

const migrations: Migration[] = [
  {
    id: '20261201T1200_inventory',
    up: async (db) => {
      await db.schema
        .createTable('inventory_stock')
        .addColumn('sku', 'text', (c) => c.primaryKey())
        .addColumn('available', 'integer', (c) => c.notNull())
        .addColumn('reserved', 'integer', (c) => c.notNull())
        .addColumn('sold', 'integer', (c) => c.notNull())
        .addColumn('initial', 'integer', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('inventory_reservations')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('order_id', 'text')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('items', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('inventory_reservations_held').on('inventory_reservations').columns(['status', 'expires_at']).execute();
    },
  },
];

const idem = { config: { idempotency: { required: true } } } as const;
const idParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 255 } } } as const;

export interface InventoryModule extends ShopModule {
  /** Releases expired reservations now; returns how many. */
  sweep(): Promise<number>;
}

export async function createInventoryModule(ctx: ModuleContext): Promise<InventoryModule> {
  const { config } = ctx;
  const store: Store<InventoryDb> = await openModuleStore<InventoryDb>(config, 'inventory', { inventory: migrations, http: httpMigrations });
  if (config.seed.catalog) {
    const at = Date.now();
    await store.transaction(async (tx) => {
      for (const p of SEED_PRODUCTS) {
        await tx.db.insertInto('inventory_stock').values({ sku: p.sku, available: p.stock, reserved: 0, sold: 0, initial: p.stock, updated_at: at }).onConflict((oc) => oc.doNothing()).execute();
      }
    });
  }

  /** Moves `qty` of each item between columns; false (and nothing moved by this call) when a guard fails. */
  async function take(tx: UnitOfWork<InventoryDb>, items: readonly Item[], to: 'reserved' | 'sold'): Promise<{ ok: true } | { ok: false; sku: string; available: number | undefined }> {
    for (const item of [...items].sort((a, b) => (a.sku < b.sku ? -1 : 1))) {
      const result = await tx.db
        .updateTable('inventory_stock')
        .set((eb) => ({ available: eb('available', '-', item.qty), [to]: eb(to, '+', item.qty), updated_at: Date.now() }))
        .where('sku', '=', item.sku)
        .where('available', '>=', item.qty)
        .executeTakeFirst();
      if (result.numUpdatedRows === 0n) {
        const row = await tx.db.selectFrom('inventory_stock').select('available').where('sku', '=', item.sku).executeTakeFirst();
        return { ok: false, sku: item.sku, available: row?.available };
      }
    }
    return { ok: true };
  }

  async function giveBack(tx: UnitOfWork<InventoryDb>, items: readonly Item[]): Promise<void> {
    for (const item of items) {
      await tx.db
        .updateTable('inventory_stock')
        .set((eb) => ({ available: eb('available', '+', item.qty), reserved: eb('reserved', '-', item.qty), updated_at: Date.now() }))
        .where('sku', '=', item.sku)
        .execute();
    }
  }

  async function release(tx: UnitOfWork<InventoryDb>, id: string, to: 'released' | 'expired'): Promise<ReservationStatus> {
    const row = await tx.forUpdate(tx.db.selectFrom('inventory_reservations').selectAll().where('id', '=', id)).executeTakeFirst();
    const at = Date.now();
    if (row === undefined) {
      // Never reserved (the reserve timed out before it arrived, or was refused): remember, so a late reserve is refused.
      await tx.db.insertInto('inventory_reservations').values({ id, order_id: null, status: 'tombstone', items: '[]', expires_at: at, created_at: at, updated_at: at }).execute();
      return 'tombstone';
    }
    if (row.status !== 'held') return row.status;
    await giveBack(tx, JSON.parse(row.items) as Item[]);
    await tx.db.updateTable('inventory_reservations').set({ status: to, updated_at: at }).where('id', '=', id).execute();
    return to;
  }

  async function sweep(): Promise<number> {
    const due = await store.db.selectFrom('inventory_reservations').select('id').where('status', '=', 'held').where('expires_at', '<', Date.now()).limit(100).execute();
    let n = 0;
    for (const { id } of due) {
      const status = await store.transaction(async (tx) => {
        const row = await tx.forUpdate(tx.db.selectFrom('inventory_reservations').select(['status', 'expires_at']).where('id', '=', id)).executeTakeFirst();
        if (row?.status !== 'held' || Number(row.expires_at) >= Date.now()) return row?.status;
        return release(tx, id, 'expired');
      });
      if (status === 'expired') n++;
    }
    return n;
  }

  const stockView = (r: { sku: string; available: number; reserved: number; sold: number }) => ({ sku: r.sku, available: r.available, reserved: r.reserved, sold: r.sold });

  async function routes(app: FastifyInstance): Promise<void> {
    await app.register(idempotency, { store: store as unknown as Store<never>, identity: () => 'shop-internal' });
    const internal = internalOnly(config.internalKey);

    app.get<{ Params: { sku: string } }>('/stock/:sku', { schema: { params: { type: 'object', properties: { sku: { type: 'string', pattern: SKU_PATTERN } } } } }, async (request) => {
      const row = await store.db.selectFrom('inventory_stock').selectAll().where('sku', '=', request.params.sku).executeTakeFirst();
      if (row === undefined) throw shopProblem('unknown-product', 404, 'Unknown product', `no stock record for ${request.params.sku}`, { sku: request.params.sku });
      return stockView(row);
    });

    app.get<{ Querystring: { skus: string } }>('/stock', { schema: { querystring: { type: 'object', required: ['skus'], properties: { skus: { type: 'string', minLength: 1, maxLength: 4_000 } } } } }, async (request) => {
      const skus = [...new Set(request.query.skus.split(',').filter((s) => s !== ''))];
      const rows = skus.length === 0 ? [] : await store.db.selectFrom('inventory_stock').selectAll().where('sku', 'in', skus).execute();
      return { stock: rows.map(stockView) };
    });

    app.get('/totals', { preHandler: internal }, async () => {
      const rows = await store.db.selectFrom('inventory_stock').selectAll().orderBy('sku').execute();
      return { stock: rows.map((r) => ({ ...stockView(r), initial: r.initial })) };
    });

    app.put<{ Params: { sku: string }; Body: { available: number } }>(
      '/stock/:sku',
      {
        preHandler: internal,
        schema: {
          params: { type: 'object', properties: { sku: { type: 'string', pattern: SKU_PATTERN } } },
          body: { type: 'object', required: ['available'], additionalProperties: false, properties: { available: { type: 'integer', minimum: 0, maximum: 1_000_000_000 } } },
        },
      },
      async (request) =>
        store.transaction(async (tx) => {
          const { sku } = request.params;
          const row = await tx.forUpdate(tx.db.selectFrom('inventory_stock').selectAll().where('sku', '=', sku)).executeTakeFirst();
          const at = Date.now();
          const available = request.body.available;
          if (row === undefined) {
            await tx.db.insertInto('inventory_stock').values({ sku, available, reserved: 0, sold: 0, initial: available, updated_at: at }).execute();
            return { sku, available, reserved: 0, sold: 0 };
          }
          // A stock count: the difference is booked to `initial`, so the invariant keeps holding.
          await tx.db.updateTable('inventory_stock').set({ available, initial: row.initial + (available - row.available), updated_at: at }).where('sku', '=', sku).execute();
          return { sku, available, reserved: row.reserved, sold: row.sold };
        }),
    );

    app.post<{ Body: { orderId?: string; items: Item[] } }>(
      '/reservations',
      {
        ...idem,
        preHandler: internal,
        schema: {
          body: {
            type: 'object',
            required: ['items'],
            additionalProperties: false,
            properties: {
              orderId: { type: 'string', maxLength: 64 },
              items: {
                type: 'array',
                minItems: 1,
                maxItems: 1_000,
                items: { type: 'object', required: ['sku', 'qty'], additionalProperties: false, properties: { sku: { type: 'string', pattern: SKU_PATTERN }, qty: { type: 'integer', minimum: 1, maximum: 1_000_000 } } },
              },
            },
          },
        },
      },
      async (request, reply) => {
        const id = request.idempotency.key as string;
        const items = merge(request.body.items);
        return request.idempotency.transaction<InventoryDb>(async (tx) => {
          const existing = await tx.forUpdate(tx.db.selectFrom('inventory_reservations').selectAll().where('id', '=', id)).executeTakeFirst();
          if (existing?.status === 'tombstone') throw shopProblem('reservation-cancelled', 409, 'Reservation cancelled', `reservation ${id} was released before it arrived; refused`);
          if (existing !== undefined) return { reservationId: id, status: existing.status, expiresAt: new Date(Number(existing.expires_at)).toISOString() };
          const taken = await take(tx, items, 'reserved');
          if (!taken.ok) {
            if (taken.available === undefined) throw shopProblem('unknown-product', 422, 'Unknown product', `no stock record for ${taken.sku}`, { sku: taken.sku });
            throw shopProblem('out-of-stock', 409, 'Out of stock', `${taken.sku}: ${taken.available} available`, { sku: taken.sku, available: taken.available });
          }
          const at = Date.now();
          const expiresAt = at + config.inventory.reservationTtlMs;
          await tx.db.insertInto('inventory_reservations').values({ id, order_id: request.body.orderId ?? null, status: 'held', items: JSON.stringify(items), expires_at: expiresAt, created_at: at, updated_at: at }).execute();
          reply.code(201);
          return { reservationId: id, status: 'held', expiresAt: new Date(expiresAt).toISOString() };
        });
      },
    );

    app.post<{ Params: { id: string } }>('/reservations/:id/release', { ...idem, preHandler: internal, schema: { params: idParam } }, async (request) =>
      request.idempotency.transaction<InventoryDb>(async (tx) => ({ reservationId: request.params.id, status: await release(tx, request.params.id, 'released') })),
    );

    app.post<{ Params: { id: string } }>('/reservations/:id/commit', { ...idem, preHandler: internal, schema: { params: idParam } }, async (request) =>
      request.idempotency.transaction<InventoryDb>(async (tx) => {
        const { id } = request.params;
        const row = await tx.forUpdate(tx.db.selectFrom('inventory_reservations').selectAll().where('id', '=', id)).executeTakeFirst();
        if (row === undefined || row.status === 'tombstone' || row.status === 'released') throw shopProblem('reservation-not-held', 409, 'Reservation not held', `reservation ${id} is ${row?.status ?? 'unknown'}`);
        const items = JSON.parse(row.items) as Item[];
        if (row.status === 'held') {
          for (const item of items) {
            await tx.db
              .updateTable('inventory_stock')
              .set((eb) => ({ reserved: eb('reserved', '-', item.qty), sold: eb('sold', '+', item.qty), updated_at: Date.now() }))
              .where('sku', '=', item.sku)
              .execute();
          }
        } else if (row.status === 'expired') {
          // Swept before the order was confirmed: take the stock again if it is still there.
          const taken = await take(tx, items, 'sold');
          if (!taken.ok) throw shopProblem('reservation-not-held', 409, 'Reservation not held', `reservation ${id} expired and ${taken.sku} is gone`);
        }
        await tx.db.updateTable('inventory_reservations').set({ status: 'committed', updated_at: Date.now() }).where('id', '=', id).execute();
        return { reservationId: id, status: 'committed' };
      }),
    );

    app.get<{ Params: { id: string } }>('/reservations/:id', { preHandler: internal, schema: { params: idParam } }, async (request) => {
      const row = await store.db.selectFrom('inventory_reservations').selectAll().where('id', '=', request.params.id).executeTakeFirst();
      if (row === undefined) throw shopProblem('unknown-reservation', 404, 'Unknown reservation', `no reservation ${request.params.id}`);
      return { reservationId: row.id, orderId: row.order_id, status: row.status, items: JSON.parse(row.items) as Item[], expiresAt: new Date(Number(row.expires_at)).toISOString() };
    });
  }

  let timer: NodeJS.Timeout | undefined;
  let sweeping: Promise<unknown> = Promise.resolve();
  return {
    name: 'inventory',
    routes,
    sweep,
    start() {
      timer = setInterval(() => {
        sweeping = sweep().catch(() => 0);
      }, config.inventory.sweepIntervalMs);
      timer.unref();
    },
    ready: () => store.db.selectFrom('inventory_stock').select('sku').limit(1).execute(),
    async close() {
      clearInterval(timer);
      await sweeping;
      await store.close();
    },
  };
}

/** One line per sku (two lines of one sku would otherwise each pass the guard alone). */
function merge(items: readonly Item[]): Item[] {
  const bySku = new Map<string, number>();
  for (const { sku, qty } of items) bySku.set(sku, (bySku.get(sku) ?? 0) + qty);
  return [...bySku].map(([sku, qty]) => ({ sku, qty }));
}
