/**
 * A module database with the messaging tables and a small business table,
 * on SQLite or PostgreSQL, for the messaging tests and the crash test.
 */
import { openStore, type Store } from '@bulwark/store';
import { testDatabase, type TestDatabase } from '@bulwark/store/testing';
import { defineMessage } from '../message-type.js';
import { messagingMigrations, type MessagingTables } from '../schema/messaging-migrations.js';

export interface FixtureDb extends MessagingTables {
  effects: { message_id: string; group_name: string; value: number };
  orders: { id: string; status: string };
}

export const fixtureMigrations = [
  {
    id: '0001_fixture',
    up: async (db: Parameters<(typeof messagingMigrations)[number]['up']>[0]) => {
      await db.schema.createTable('orders').addColumn('id', 'text', (c) => c.primaryKey()).addColumn('status', 'text', (c) => c.notNull()).execute();
      await db.schema
        .createTable('effects')
        .addColumn('message_id', 'text', (c) => c.notNull())
        .addColumn('group_name', 'text', (c) => c.notNull())
        .addColumn('value', 'integer', (c) => c.notNull())
        .execute();
    },
  },
];

export const OrderPlaced = defineMessage('OrderPlaced', 1, (p) => {
  const v = p as { orderId?: unknown; n?: unknown } | null;
  if (typeof v?.orderId !== 'string') throw new Error('orderId must be a string');
  if (typeof v.n !== 'number') throw new Error('n must be a number');
  return { orderId: v.orderId, n: v.n };
});

export async function openFixtureStore(d: TestDatabase): Promise<Store<FixtureDb>> {
  return openStore<FixtureDb>({ module: d.module, url: d.url, migrations: { [d.module]: fixtureMigrations, messaging: messagingMigrations } });
}

export { testDatabase, type TestDatabase };
