/**
 * The tables `@bulwark/saga` keeps in the owning module's database, as a
 * migration set of their own:
 * `openStore({ ..., migrations: { [module]: own, saga: sagaMigrations } })`.
 *
 * - `saga_instances`: one row per saga — definition and version, state,
 *   cursor, input and step outputs (JSON), the semantic lock key, and the
 *   lease (owner, epoch, expiry) of the orchestrator driving it.
 * - `saga_steps`: the step log, one row per finished invoke or
 *   compensation (outcome, attempts, start, end, error) — the timeline.
 * - `saga_audit`: operator actions, who and why.
 *
 * The semantic lock is a partial unique index: one saga per lock key among
 * the sagas that are running, compensating or stuck.
 */
import { sql, type Migration } from '@bulwark/store';

/** States a saga holds its lock in. */
export const LOCKING_STATES = ['running', 'compensating', 'stuck'] as const;

export const sagaMigrations: readonly Migration[] = [
  {
    id: '20261123T2200_saga_tables',
    up: async (db) => {
      await db.schema
        .createTable('saga_instances')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('phase', 'text', (c) => c.notNull())
        .addColumn('step_index', 'integer', (c) => c.notNull())
        .addColumn('input', 'text', (c) => c.notNull())
        .addColumn('outputs', 'text', (c) => c.notNull())
        .addColumn('lock_key', 'text')
        .addColumn('owner', 'text')
        .addColumn('lease_epoch', 'integer', (c) => c.notNull())
        .addColumn('lease_until', 'bigint', (c) => c.notNull())
        .addColumn('deadline_at', 'bigint')
        .addColumn('log_seq', 'integer', (c) => c.notNull())
        .addColumn('failed_step', 'text')
        .addColumn('error', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await sql`create unique index saga_instances_lock on saga_instances (lock_key) where lock_key is not null and state in ('running', 'compensating', 'stuck')`.execute(db);
      await sql`create index saga_instances_claimable on saga_instances (lease_until) where state in ('running', 'compensating')`.execute(db);
      await sql`create index saga_instances_queued on saga_instances (lock_key, created_at) where state = 'queued'`.execute(db);
      await db.schema.createIndex('saga_instances_state').on('saga_instances').columns(['state', 'created_at']).execute();
      await db.schema.createIndex('saga_instances_type').on('saga_instances').columns(['type', 'created_at']).execute();
      await db.schema
        .createTable('saga_steps')
        .addColumn('saga_id', 'text', (c) => c.notNull())
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('step', 'text', (c) => c.notNull())
        .addColumn('phase', 'text', (c) => c.notNull())
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('started_at', 'bigint', (c) => c.notNull())
        .addColumn('finished_at', 'bigint', (c) => c.notNull())
        .addColumn('error', 'text')
        .addPrimaryKeyConstraint('saga_steps_pk', ['saga_id', 'seq'])
        .execute();
      await db.schema
        .createTable('saga_audit')
        .addColumn('saga_id', 'text', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('before_state', 'text', (c) => c.notNull())
        .addColumn('after_state', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('saga_audit_saga').on('saga_audit').columns(['saga_id', 'at']).execute();
    },
  },
];
