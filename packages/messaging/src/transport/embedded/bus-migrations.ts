/**
 * The embedded transport's tables: a durable message bus inside a database
 * (SQLite by default), shared by every process that opens it.
 *
 * - `bus_messages`: each published envelope once per topic (the envelope id deduplicates).
 * - `bus_groups`: the consumer groups of each topic.
 * - `bus_deliveries`: one row per (group, message): state, deliveries so far, and when it may be
 *   handed out next (the visibility timeout of a claimed delivery, or a nak's delay).
 * - `bus_dead_letters`: what consumers set aside, with the reason.
 */
import { sql, type Generated, type Migration } from '@bulwark/store';

export const busMigrations: readonly Migration[] = [
  {
    id: '20261123T1910_bus',
    up: async (db, dialect) => {
      const serial = dialect === 'postgres' ? 'bigserial' : 'integer';
      await db.schema
        .createTable('bus_messages')
        .addColumn('seq', serial, (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('topic', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('published_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('bus_messages_topic_id', ['topic', 'id'])
        .execute();
      await db.schema
        .createTable('bus_groups')
        .addColumn('topic', 'text', (c) => c.notNull())
        .addColumn('group_name', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('bus_groups_pk', ['topic', 'group_name'])
        .execute();
      await db.schema
        .createTable('bus_deliveries')
        .addColumn('group_name', 'text', (c) => c.notNull())
        .addColumn('topic', 'text', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('deliveries', 'integer', (c) => c.notNull())
        .addColumn('available_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('bus_deliveries_pk', ['group_name', 'topic', 'seq'])
        .execute();
      await db.schema
        .createIndex('bus_deliveries_ready')
        .on('bus_deliveries')
        .columns(['group_name', 'topic', 'seq'])
        .where(sql.ref('state'), 'in', ['ready', 'inflight'])
        .execute();
      await db.schema
        .createTable('bus_dead_letters')
        .addColumn('id', serial, (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('topic', 'text', (c) => c.notNull())
        .addColumn('group_name', 'text', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('error', 'text', (c) => c.notNull())
        .addColumn('deliveries', 'integer', (c) => c.notNull())
        .addColumn('dead_at', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
];

export interface BusTables {
  bus_messages: { seq: Generated<number>; topic: string; id: string; body: string; published_at: number };
  bus_groups: { topic: string; group_name: string };
  bus_deliveries: { group_name: string; topic: string; seq: number; state: 'ready' | 'inflight' | 'done' | 'dead'; deliveries: number; available_at: number };
  bus_dead_letters: { id: Generated<number>; topic: string; group_name: string; body: string; error: string; deliveries: number; dead_at: number };
}
