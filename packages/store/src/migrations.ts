/**
 * Append-only, per-module migrations. Each module lists its migrations in
 * order; the store applies the ones not yet applied, each in its own
 * transaction, under a lock so that several processes starting at once apply
 * each migration once. The store records each applied id at its position and
 * refuses to start when the code no longer lists it there (removed, renamed
 * or reordered). Editing an applied migration's body is not detected (a
 * function's source differs between build tools); review it as append-only.
 *
 * @example
 * ```ts
 * const migrations: Migration[] = [
 *   { id: '20261123T1800_create_orders', up: (db) => db.schema.createTable('orders').addColumn('id', 'text', (c) => c.primaryKey()).execute() },
 * ];
 * ```
 */
import { sql, type Kysely } from 'kysely';
import { MigrationMismatchError, StoreConfigError } from './errors.js';

/** One step of a module's schema. `up` receives a transaction and the dialect. */
export interface Migration {
  /** Unique and ordered: a timestamp and a name, e.g. `20261123T1800_create_orders`. */
  readonly id: string;
  up(db: Kysely<unknown>, dialect: 'sqlite' | 'postgres'): Promise<unknown>;
}

export interface MigrationReport {
  applied: string[];
  alreadyApplied: number;
}

const TABLE = 'bulwark_migrations';

export function checkMigrations(module: string, migrations: readonly Migration[]): void {
  const seen = new Set<string>();
  for (const [i, m] of migrations.entries()) {
    if (typeof m?.id !== 'string' || m.id === '' || typeof m.up !== 'function') {
      throw new StoreConfigError(`migrations[${i}]`, `of module "${module}" must have a non-empty string id and an up function`);
    }
    if (seen.has(m.id)) throw new StoreConfigError(`migrations[${i}]`, `id "${m.id}" of module "${module}" appears twice`);
    seen.add(m.id);
  }
}

/**
 * Applies pending migrations. `lock` runs its callback in a transaction that
 * holds the module's migration lock (an advisory lock on Postgres, the write
 * lock on SQLite).
 */
export async function migrate(
  module: string,
  dialect: 'sqlite' | 'postgres',
  migrations: readonly Migration[],
  lock: <T>(fn: (tx: Kysely<unknown>) => Promise<T>) => Promise<T>,
): Promise<MigrationReport> {
  checkMigrations(module, migrations);
  // Under the lock: two processes creating the table at once would collide on Postgres's catalog.
  await lock((tx) =>
    tx.schema
      .createTable(TABLE)
      .ifNotExists()
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('position', 'integer', (c) => c.notNull())
      .addColumn('applied_at', 'text', (c) => c.notNull())
      .execute(),
  );
  const applied: string[] = [];
  let alreadyApplied = 0;
  for (const [position, migration] of migrations.entries()) {
    const done = await lock(async (tx) => {
      const rows = await sql<{ id: string; position: number }>`select id, position from ${sql.table(TABLE)} order by position`.execute(tx);
      const recorded = rows.rows;
      verifyPrefix(module, migrations, recorded);
      if (recorded.length > position) return false;
      await migration.up(tx, dialect);
      await sql`insert into ${sql.table(TABLE)} (id, position, applied_at) values (${migration.id}, ${position}, ${new Date().toISOString()})`.execute(tx);
      return true;
    });
    if (done) applied.push(migration.id);
    else alreadyApplied++;
  }
  return { applied, alreadyApplied };
}

function verifyPrefix(module: string, migrations: readonly Migration[], recorded: readonly { id: string; position: number }[]): void {
  for (const row of recorded) {
    const m = migrations[Number(row.position)];
    if (m === undefined) throw new MigrationMismatchError(module, row.id, 'is applied in the database but missing from the code');
    if (m.id !== row.id) throw new MigrationMismatchError(module, row.id, `is applied at position ${row.position}, where the code now has "${m.id}"`);
  }
}
