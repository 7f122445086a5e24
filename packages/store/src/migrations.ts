/**
 * Append-only migrations, in named sets. A module's own tables are one set;
 * a library that keeps tables in the module's database (the outbox and inbox
 * of `@bulwark/messaging`, saga state) ships its own set, so it can add
 * migrations later without touching the module's list.
 *
 * The store applies the migrations not yet applied, each in its own
 * transaction, under a lock, so several processes starting at once apply
 * each migration once. It records every applied id at its position in its
 * set and refuses to start when the code no longer lists it there (removed,
 * renamed or reordered). Editing an applied migration's body is not detected
 * (a function's source differs between build tools): review it as
 * append-only.
 *
 * @example
 * ```ts
 * const migrations: Migration[] = [
 *   { id: '20261123T1800_create_orders', up: (db) => db.schema.createTable('orders').addColumn('id', 'text', (c) => c.primaryKey()).execute() },
 * ];
 * await openStore({ module: 'orders', url, migrations: { orders: migrations, messaging: messagingMigrations } });
 * ```
 */
import { sql, type Kysely } from 'kysely';
import { MigrationMismatchError, StoreConfigError } from './errors.js';

/** One step of a schema. `up` receives a transaction and the dialect. */
export interface Migration {
  /** Unique in its set and ordered: a timestamp and a name, e.g. `20261123T1800_create_orders`. */
  readonly id: string;
  up(db: Kysely<unknown>, dialect: 'sqlite' | 'postgres'): Promise<unknown>;
}

/** A module's migrations: one list (the set named for the module), or named sets. */
export type Migrations = readonly Migration[] | Readonly<Record<string, readonly Migration[]>>;

export interface MigrationReport {
  applied: string[];
  alreadyApplied: number;
}

const TABLE = 'bulwark_migrations';

/** Normalises `migrations` to named sets, checking ids. */
export function migrationSets(module: string, migrations: Migrations): [string, readonly Migration[]][] {
  const sets: [string, readonly Migration[]][] = isList(migrations) ? [[module, migrations]] : Object.entries(migrations);
  for (const [name, list] of sets) {
    if (!Array.isArray(list)) throw new StoreConfigError(`migrations.${name}`, 'must be an array of migrations');
    const seen = new Set<string>();
    for (const [i, m] of (list as readonly (Migration | undefined)[]).entries()) {
      if (typeof m?.id !== 'string' || m.id === '' || typeof m.up !== 'function') {
        throw new StoreConfigError(`migrations.${name}[${i}]`, 'must have a non-empty string id and an up function');
      }
      if (seen.has(m.id)) throw new StoreConfigError(`migrations.${name}[${i}]`, `id "${m.id}" appears twice`);
      seen.add(m.id);
    }
  }
  return sets;
}

function isList(migrations: Migrations): migrations is readonly Migration[] {
  return Array.isArray(migrations);
}

/**
 * Applies pending migrations. `lock` runs its callback in a transaction that
 * holds the module's migration lock (an advisory lock on Postgres, the write
 * lock on SQLite).
 */
export async function migrate(
  module: string,
  dialect: 'sqlite' | 'postgres',
  migrations: Migrations,
  lock: <T>(fn: (tx: Kysely<unknown>) => Promise<T>) => Promise<T>,
): Promise<MigrationReport> {
  const sets = migrationSets(module, migrations);
  // Under the lock: two processes creating the table at once would collide on Postgres's catalog.
  await lock((tx) =>
    tx.schema
      .createTable(TABLE)
      .ifNotExists()
      .addColumn('set_name', 'text', (c) => c.notNull())
      .addColumn('id', 'text', (c) => c.notNull())
      .addColumn('position', 'integer', (c) => c.notNull())
      .addColumn('applied_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('bulwark_migrations_pk', ['set_name', 'id'])
      .execute(),
  );
  const applied: string[] = [];
  let alreadyApplied = 0;
  for (const [set, list] of sets) {
    for (const [position, migration] of list.entries()) {
      const done = await lock(async (tx) => {
        const rows = await sql<{ id: string; position: number }>`select id, position from ${sql.table(TABLE)} where set_name = ${set} order by position`.execute(tx);
        verifyPrefix(module, set, list, rows.rows);
        if (rows.rows.length > position) return false;
        await migration.up(tx, dialect);
        await sql`insert into ${sql.table(TABLE)} (set_name, id, position, applied_at) values (${set}, ${migration.id}, ${position}, ${new Date().toISOString()})`.execute(tx);
        return true;
      });
      if (done) applied.push(set === module ? migration.id : `${set}:${migration.id}`);
      else alreadyApplied++;
    }
  }
  return { applied, alreadyApplied };
}

function verifyPrefix(module: string, set: string, migrations: readonly Migration[], recorded: readonly { id: string; position: number }[]): void {
  const where = set === module ? '' : ` (set "${set}")`;
  for (const row of recorded) {
    const m = migrations[Number(row.position)];
    if (m === undefined) throw new MigrationMismatchError(module, row.id, `is applied in the database but missing from the code${where}`);
    if (m.id !== row.id) throw new MigrationMismatchError(module, row.id, `is applied at position ${row.position}${where}, where the code now has "${m.id}"`);
  }
}
