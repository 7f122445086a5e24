/**
 * A participant for tests, crash tests and benchmarks: it records each
 * effect in its own table under the call's idempotency key, so repeating a
 * call changes nothing, and answers a repeat with the first answer.
 *
 * It follows the participant contract a saga relies on:
 * - `apply(key)` applies once per key; a repeat returns the same result;
 * - `undo(invokeKey, compensationKey)` undoes the effect of `invokeKey` once;
 *   when that effect never happened it records a *tombstone*, so a late
 *   `apply(invokeKey)` (a call still in flight when the saga gave up on it)
 *   is refused instead of applied after its compensation.
 */
import { sql, type Migration, type Store } from '@bulwark/store';

export interface LedgerTables {
  ledger_effects: { key: string; kind: string; undoes: string | null; at: number };
}

export const ledgerMigrations: readonly Migration[] = [
  {
    id: '20261123T2300_ledger',
    up: (db) =>
      db.schema
        .createTable('ledger_effects')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('undoes', 'text')
        .addColumn('at', 'bigint', (c) => c.notNull())
        .execute(),
  },
];

/** Refusal of an `apply` whose key was already compensated (final: not retryable). */
export class CompensatedKeyError extends Error {
  readonly retryable = false;
  constructor(readonly key: string) {
    super(`operation ${key} was compensated before it arrived; refused`);
    this.name = 'CompensatedKeyError';
  }
}

export class Ledger {
  constructor(readonly store: Store<unknown>) {}

  /** Applies the effect keyed `key` once; one small transaction. Resolves to whether this call applied it. */
  async apply(key: string): Promise<boolean> {
    const now = Date.now();
    const result = await sql<{ key: string }>`insert into ledger_effects (key, kind, undoes, at) values (${key}, 'do', null, ${now}) on conflict do nothing returning key`.execute(this.store.db);
    if (result.rows.length > 0) return true;
    const row = await sql<{ kind: string }>`select kind from ledger_effects where key = ${key}`.execute(this.store.db);
    if (row.rows[0]?.kind === 'tombstone') throw new CompensatedKeyError(key);
    return false;
  }

  /** Undoes `invokeKey` once (keyed `compensationKey`); a tombstone when it never happened. */
  async undo(invokeKey: string, compensationKey: string): Promise<boolean> {
    return this.store.transaction(async (tx) => {
      // Block a late apply of the invoke: take its key as a tombstone when it is free.
      const tomb = await sql<{ key: string }>`insert into ledger_effects (key, kind, undoes, at) values (${invokeKey}, 'tombstone', null, ${Date.now()}) on conflict do nothing returning key`.execute(tx.db);
      if (tomb.rows.length > 0) return false;
      const invoked = await sql<{ kind: string }>`select kind from ledger_effects where key = ${invokeKey}`.execute(tx.db);
      if (invoked.rows[0]?.kind !== 'do') return false;
      const undone = await sql<{ key: string }>`insert into ledger_effects (key, kind, undoes, at) values (${compensationKey}, 'undo', ${invokeKey}, ${Date.now()}) on conflict do nothing returning key`.execute(tx.db);
      return undone.rows.length > 0;
    });
  }

  /** Every effect, for assertions. */
  async effects(): Promise<{ key: string; kind: string; undoes: string | null }[]> {
    const rows = await sql<{ key: string; kind: string; undoes: string | null }>`select key, kind, undoes from ledger_effects order by at, key`.execute(this.store.db);
    return rows.rows;
  }
}
