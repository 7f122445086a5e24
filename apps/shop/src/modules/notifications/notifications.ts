/**
 * Notifications: consumes OrderConfirmed (asynchronously, after the order's
 * pivot) and records the confirmation email it "sends" in its own table. The
 * consumer's inbox makes the effect exactly-once per message; the unique
 * (order, kind) key makes it once per order even if the event were published
 * twice under different ids.
 *
 * Routes (`/api/notifications`, bearer token): `GET /emails` (the caller's),
 * internal `GET /emails?orderId=` (any order's).
 */
import { authenticate, bearerAuth } from '@bulwark/http/auth';
import { Consumer, Handlers, messagingMigrations } from '@bulwark/messaging';
import type { Migration } from '@bulwark/store';
import type { FastifyInstance } from 'fastify';
import { ORDERS_TOPIC, OrderConfirmed } from '../../contracts.js';
import { INTERNAL_KEY_HEADER, internalOnly, openModuleStore } from '../../platform.js';
import { consumerGroup } from '../../transports.js';
import type { ModuleContext, ShopModule } from '../module.js';

interface NotificationsDb {
  notification_emails: { id: string; order_id: string; user_id: string; kind: string; subject: string; body: string; sent_at: number };
}

const migrations: Migration[] = [
  {
    id: '20261201T1200_notifications',
    up: async (db) => {
      await db.schema
        .createTable('notification_emails')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('order_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('sent_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('notification_emails_once').on('notification_emails').columns(['order_id', 'kind']).unique().execute();
      await db.schema.createIndex('notification_emails_user').on('notification_emails').columns(['user_id', 'sent_at']).execute();
    },
  },
];

const money = (minor: number, currency: string): string => `${(minor / 100).toFixed(2)} ${currency}`;

export async function createNotificationsModule(ctx: ModuleContext): Promise<ShopModule> {
  const { config, transport, verifier } = ctx;
  const store = await openModuleStore<NotificationsDb>(config, 'notifications', { notifications: migrations, messaging: messagingMigrations });

  const handlers = new Handlers<NotificationsDb>().on(OrderConfirmed, async (order, { tx, envelope }) => {
    await tx.db
      .insertInto('notification_emails')
      .values({
        id: envelope.id,
        order_id: order.orderId,
        user_id: order.userId,
        kind: 'order-confirmed',
        subject: `Your order ${order.orderId} is confirmed`,
        body: `${order.items.map((i) => `${i.qty} x ${i.sku} at ${money(i.unitPrice, order.currency)}`).join('\n')}\nTotal: ${money(order.total, order.currency)}`,
        sent_at: Date.now(),
      })
      .onConflict((oc) => oc.doNothing())
      .execute();
  });
  const consumer = new Consumer({ store, transport, topic: ORDERS_TOPIC, group: consumerGroup(config, 'notifications'), handlers });

  async function routes(app: FastifyInstance): Promise<void> {
    await app.register(bearerAuth, { verifier, defaultAuth: false });
    const internal = internalOnly(config.internalKey);
    app.get<{ Querystring: { orderId?: string } }>(
      '/emails',
      { schema: { querystring: { type: 'object', properties: { orderId: { type: 'string', minLength: 1, maxLength: 64 } } } } },
      async (request) => {
        let query = store.db.selectFrom('notification_emails').selectAll().orderBy('sent_at', 'desc').limit(100);
        if (request.headers[INTERNAL_KEY_HEADER] !== undefined) {
          await internal(request);
        } else {
          // A customer sees their own emails only.
          const user = await authenticate(verifier, request);
          query = query.where('user_id', '=', (user as { sub: string }).sub);
        }
        if (request.query.orderId !== undefined) query = query.where('order_id', '=', request.query.orderId);
        const rows = await query.execute();
        return { emails: rows.map((r) => ({ id: r.id, orderId: r.order_id, kind: r.kind, subject: r.subject, body: r.body, sentAt: new Date(Number(r.sent_at)).toISOString() })) };
      },
    );
  }

  return {
    name: 'notifications',
    routes,
    start: () => consumer.start(),
    ready: () => store.db.selectFrom('notification_emails').select('id').limit(1).execute(),
    async close() {
      await consumer.stop();
      await store.close();
    },
  };
}
