/**
 * The tables `@bulwark/messaging` keeps in a module's own database, as a
 * migration set of their own: include them with
 * `openStore({ ..., migrations: { [module]: own, messaging: messagingMigrations } })`.
 *
 * - `messaging_outbox`: messages written in business transactions, until the relay publishes them.
 * - `messaging_outbox_lease`: which relay owns which partition of the outbox (per-key order).
 * - `messaging_inbox`: (consumer group, message id) of every message a consumer applied.
 * - `messaging_dead_letters`: messages a consumer gave up on, with the reason.
 */
import { sql, type Generated, type Migration } from '@bulwark/store';
import { OUTBOX_PARTITIONS } from '../outbox/partition.js';

export const messagingMigrations: readonly Migration[] = [
  {
    id: '20261123T1900_outbox',
    up: async (db, dialect) => {
      await db.schema
        .createTable('messaging_outbox')
        .addColumn('seq', dialect === 'postgres' ? 'bigserial' : 'integer', (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('topic', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('partition', 'integer', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('published_at', 'bigint')
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('last_error', 'text')
        .execute();
      await db.schema.createIndex('messaging_outbox_pending').on('messaging_outbox').columns(['partition', 'seq']).where(sql.ref('published_at'), 'is', null).execute();
      await db.schema.createIndex('messaging_outbox_published').on('messaging_outbox').column('published_at').where(sql.ref('published_at'), 'is not', null).execute();
      await db.schema
        .createTable('messaging_outbox_lease')
        .addColumn('partition', 'integer', (c) => c.primaryKey())
        .addColumn('owner', 'text')
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db
        .insertInto('messaging_outbox_lease' as never)
        .values(Array.from({ length: OUTBOX_PARTITIONS }, (_, partition) => ({ partition, owner: null, expires_at: 0 })))
        .execute();
    },
  },
  {
    id: '20261123T1901_inbox_and_dead_letters',
    up: async (db, dialect) => {
      await db.schema
        .createTable('messaging_inbox')
        .addColumn('consumer_group', 'text', (c) => c.notNull())
        .addColumn('message_id', 'text', (c) => c.notNull())
        .addColumn('handled_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('messaging_inbox_pk', ['consumer_group', 'message_id'])
        .execute();
      await db.schema.createIndex('messaging_inbox_handled').on('messaging_inbox').column('handled_at').execute();
      await db.schema
        .createTable('messaging_dead_letters')
        .addColumn('id', dialect === 'postgres' ? 'bigserial' : 'integer', (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('consumer_group', 'text', (c) => c.notNull())
        .addColumn('topic', 'text', (c) => c.notNull())
        .addColumn('message_id', 'text')
        .addColumn('type', 'text')
        .addColumn('version', 'integer')
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('error', 'text', (c) => c.notNull())
        .addColumn('deliveries', 'integer', (c) => c.notNull())
        .addColumn('dead_at', 'bigint', (c) => c.notNull())
        .addColumn('replayed_at', 'bigint')
        .execute();
      await db.schema.createIndex('messaging_dead_letters_group').on('messaging_dead_letters').columns(['consumer_group', 'id']).execute();
    },
  },
  {
    // On PostgreSQL an outbox insert signals the relays itself, in the same round trip:
    // a statement-level trigger NOTIFYs the channel `Store.onSignal('outbox')` listens on.
    id: '20261123T1930_outbox_notify_trigger',
    up: async (db, dialect) => {
      if (dialect !== 'postgres') return;
      await sql`
        create or replace function messaging_outbox_notify() returns trigger language plpgsql as $$
        begin
          perform pg_notify(left('bulwark_' || current_schema() || '_outbox', 63), '');
          return null;
        end $$`.execute(db);
      await sql`create trigger messaging_outbox_notify after insert on messaging_outbox for each statement execute function messaging_outbox_notify()`.execute(db);
    },
  },
  {
    // A NOTIFY on every commit serializes commits (PostgreSQL holds a database-wide lock from
    // pre-commit until the commit is flushed): 15k tps of small inserts fall to under 5k. So the
    // outbox rings only a sleeping relay. A relay going to sleep takes an exclusive session-level
    // advisory lock per partition it owns — (hashtext('bulwark_outbox:' || schema), partition) —
    // waiting for writers in flight; a writer tries a shared transaction-level lock on the
    // partitions it wrote to and NOTIFYs only when that fails, i.e. when a relay sleeps (or is
    // about to). A busy relay is not rung: it will find the rows in its next batch.
    id: '20261123T2000_outbox_notify_only_sleeping_relays',
    up: async (db, dialect) => {
      if (dialect !== 'postgres') return;
      await sql`
        create or replace function messaging_outbox_notify() returns trigger language plpgsql as $$
        begin
          if exists (
            select 1 from (select distinct partition from new_rows) written
            where not pg_try_advisory_xact_lock_shared(hashtext('bulwark_outbox:' || current_schema()), written.partition)
          ) then
            perform pg_notify(left('bulwark_' || current_schema() || '_outbox', 63), '');
          end if;
          return null;
        end $$`.execute(db);
      await sql`drop trigger messaging_outbox_notify on messaging_outbox`.execute(db);
      await sql`
        create trigger messaging_outbox_notify after insert on messaging_outbox
        referencing new table as new_rows
        for each statement execute function messaging_outbox_notify()`.execute(db);
    },
  },
  {
    // The relay marks rows by `seq` (the primary key), so the unique index on `id` only cost an
    // index entry per insert and per publish (marking a row published is never a HOT update: the
    // partial indexes read `published_at`). Ids are UUIDv7s made by `outbox.add`. SQLite cannot
    // drop a column constraint without rebuilding the table, and gains little from it: kept there.
    id: '20261123T2030_outbox_no_id_index',
    up: async (db, dialect) => {
      if (dialect !== 'postgres') return;
      await sql`alter table messaging_outbox drop constraint if exists messaging_outbox_id_key`.execute(db);
    },
  },
];

/** Row types of the messaging tables, for Kysely. */
export interface MessagingTables {
  messaging_outbox: {
    seq: Generated<number>;
    id: string;
    topic: string;
    key: string;
    partition: number;
    body: string;
    created_at: number;
    published_at: number | null;
    attempts: Generated<number>;
    last_error: string | null;
  };
  messaging_outbox_lease: { partition: number; owner: string | null; expires_at: number };
  messaging_inbox: { consumer_group: string; message_id: string; handled_at: number };
  messaging_dead_letters: {
    id: Generated<number>;
    consumer_group: string;
    topic: string;
    message_id: string | null;
    type: string | null;
    version: number | null;
    body: string;
    error: string;
    deliveries: number;
    dead_at: number;
    replayed_at: number | null;
  };
}
