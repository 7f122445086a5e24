/**
 * A module's store: one unit-of-work API over SQLite (the embedded default)
 * and PostgreSQL, with Kysely as the one query layer for both.
 *
 * Each module owns its data: a SQLite file, or a PostgreSQL schema named for
 * the module. Business writes, outbox rows, inbox rows, idempotency records
 * and saga state of a module commit in one local transaction.
 *
 * Why Kysely: it is a typed SQL builder, not an ORM — the SQL stays visible
 * and portable, both engines have maintained dialects, transactions are
 * explicit, and raw SQL (`sql```) is there for what differs
 * (`FOR UPDATE SKIP LOCKED`, `pg_notify`).
 *
 * @example
 * ```ts
 * const store = await openStore<OrdersDb>({ module: 'orders', url: 'sqlite:./data/orders.db', migrations });
 * await store.transaction(async (tx) => {
 *   await tx.db.insertInto('orders').values(order).execute();
 *   await outbox.add(tx, 'orders', orderPlaced(order));
 * });
 * ```
 */
import { type EventEmitter } from 'node:events';
import { Kysely, sql, type Transaction } from 'kysely';
import { notifyWrite, postgresDialect, queueForCommit, type CommitFrame, type CommitWrite } from './commit-writes.js';
import { StoreConfigError } from './errors.js';
import { migrate, migrationSets, type MigrationReport, type Migrations } from './migrations.js';
import { CommitListener } from './postgres/commit-listener.js';
import { createPool, ensureSchema } from './postgres/postgres-pool.js';
import { type Durability } from './sqlite/open-sqlite.js';
import { acquireSqlite } from './sqlite/shared-sqlite.js';
import { checkModuleName, parseStoreUrl } from './store-url.js';

export type Dialect = 'sqlite' | 'postgres';

export interface StoreOptions {
  /** The owning module; names the Postgres schema. Lowercase letters, digits, underscores. */
  module: string;
  /** `sqlite:<file>`, `sqlite::memory:` or `postgres://...`. */
  url: string;
  /** The module's migrations, applied in order at open: one list, or named sets (see `Migrations`). */
  migrations?: Migrations;
  /** SQLite: `normal` (default; survives a process crash) or `full` (also survives power loss; fsync per commit). */
  durability?: Durability;
  /** SQLite: how long a writer waits for another process's write lock. Default 5 000 ms. */
  busyTimeoutMs?: number;
  /** PostgreSQL pool size. Default 10. */
  poolSize?: number;
}

/** One transaction of a module: every write in it commits together or not at all. */
export interface UnitOfWork<DB> {
  /** The transaction, as a Kysely instance. */
  readonly db: Transaction<DB>;
  readonly dialect: Dialect;
  readonly module: string;
  /** Runs `fn` after this transaction commits (never if it rolls back). */
  afterCommit(fn: () => void): void;
  /**
   * Locks the rows a select reads until this transaction ends: `FOR UPDATE` on
   * PostgreSQL; on SQLite the whole transaction already holds the write lock.
   *
   * @example
   * ```ts
   * const row = await tx.forUpdate(tx.db.selectFrom('stock').selectAll().where('sku', '=', sku)).executeTakeFirstOrThrow();
   * ```
   */
  forUpdate<Q extends { forUpdate(): Q }>(query: Q): Q;
  /**
   * Sends a commit signal on `channel` if, and when, this transaction commits:
   * in-process on SQLite, to every process through NOTIFY on PostgreSQL.
   */
  signal(channel: string): void;
  /**
   * Adds a write to this transaction's commit, for writes whose result the
   * transaction does not need (outbox messages, audit rows). On PostgreSQL
   * the commit writes travel with the COMMIT in one round trip instead of
   * one each; on SQLite they run just before it. `write` is called once, as
   * the transaction commits, so writes queued by several calls can be merged
   * into one statement; it returns the compiled query (`query.compile()`), or
   * `undefined` for nothing. A commit write that fails rolls the whole
   * transaction back and `transaction()` rejects with its error.
   */
  atCommit(write: CommitWrite): void;
}

export class Store<DB> {
  private readonly ownListeners: [string, () => void][] = [];
  private listener: CommitListener | undefined;
  private closed = false;

  private constructor(
    readonly module: string,
    readonly dialect: Dialect,
    /** For queries outside a transaction. */
    readonly db: Kysely<DB>,
    private readonly connectionString: string | undefined,
    private readonly migrations: Migrations,
    private readonly release: () => Promise<void>,
    /** SQLite: the commit signals shared by every store on the same file in this process. */
    private readonly signals: EventEmitter | undefined,
  ) {}

  /**
   * Opens the module's store and applies its migrations. Stores on the same
   * SQLite file in one process share its connection (see `shared-sqlite.ts`).
   */
  static async open<DB>(options: StoreOptions): Promise<Store<DB>> {
    const module = checkModuleName(options.module);
    const location = parseStoreUrl(options.url);
    const migrations = options.migrations ?? [];
    migrationSets(module, migrations);
    if (location.dialect === 'sqlite') {
      const busyTimeoutMs = options.busyTimeoutMs ?? 5_000;
      if (!(busyTimeoutMs >= 0)) throw new StoreConfigError('busyTimeoutMs', `must be a non-negative number of milliseconds, got ${String(busyTimeoutMs)}`);
      const durability = options.durability ?? 'normal';
      if (durability !== 'normal' && durability !== 'full') throw new StoreConfigError('durability', `must be "normal" or "full", got ${JSON.stringify(durability)}`);
      const { db, signals, release } = acquireSqlite(location.path, { durability, busyTimeoutMs });
      return migrated(new Store<DB>(module, 'sqlite', db as Kysely<DB>, undefined, migrations, release, signals));
    }
    const poolSize = options.poolSize ?? 10;
    if (!Number.isInteger(poolSize) || poolSize < 1) throw new StoreConfigError('poolSize', `must be an integer >= 1, got ${String(poolSize)}`);
    const pool = createPool(location.connectionString, module, { max: poolSize, idleTimeoutMs: 30_000, connectTimeoutMs: 5_000 });
    try {
      await ensureSchema(pool, module, location.connectionString);
    } catch (error) {
      await pool.end();
      throw error;
    }
    const db = new Kysely<DB>({ dialect: postgresDialect({ pool }) });
    return migrated(new Store<DB>(module, 'postgres', db, location.connectionString, migrations, () => db.destroy(), undefined));
  }

  /**
   * Runs `fn` in one transaction; commits when it resolves, rolls back when
   * it throws (and rethrows). After a commit, runs the `afterCommit` hooks.
   */
  async transaction<T>(fn: (tx: UnitOfWork<DB>) => Promise<T>): Promise<T> {
    const hooks: (() => void)[] = [];
    const channels = new Set<string>();
    const frame: CommitFrame = { writes: [] };
    const postgres = this.dialect === 'postgres';
    const result = await this.db.transaction().execute(async (trx) => {
      const value = await fn({
        db: trx,
        dialect: this.dialect,
        module: this.module,
        afterCommit: (hook) => void hooks.push(hook),
        forUpdate: (query) => (postgres ? query.forUpdate() : query),
        signal: (channel) => void channels.add(channel),
        atCommit: (write) => void frame.writes.push(write),
      });
      if (postgres) {
        for (const channel of channels) frame.writes.push(notifyWrite(this.channelName(channel)));
        // The PostgreSQL driver sends them with the COMMIT (see commit-writes.ts).
        await queueForCommit(trx as Transaction<unknown>, frame);
      } else {
        for (const write of frame.writes.splice(0)) {
          const query = write();
          if (query !== undefined) await trx.executeQuery(query);
        }
      }
      return value;
    });
    if (this.signals !== undefined) for (const channel of channels) this.signals.emit(this.channelName(channel));
    for (const hook of hooks) {
      try {
        hook();
      } catch (error) {
        process.emitWarning(`bulwark store "${this.module}": an afterCommit hook threw: ${String(error)}`);
      }
    }
    return result;
  }

  /**
   * Calls `listener` after each commit that signalled `channel` (coalesced:
   * several commits may wake it once). Returns the function that stops it.
   */
  async onSignal(channel: string, listener: () => void): Promise<() => void> {
    const signals = this.signals;
    if (signals !== undefined) {
      const name = this.channelName(channel);
      signals.on(name, listener);
      this.ownListeners.push([name, listener]);
      return () => void signals.off(name, listener);
    }
    this.listener ??= new CommitListener(this.connectionString as string, `bulwark:${this.module}:listen`);
    return this.listener.listen(this.channelName(channel), listener);
  }

  /** Applies pending migrations (done by `open`; safe to call again). */
  async migrate(): Promise<MigrationReport> {
    return migrate(this.module, this.dialect, this.migrations, (fn) =>
      this.db.transaction().execute(async (trx) => {
        if (this.dialect === 'postgres') await sql`select pg_advisory_xact_lock(hashtext(${`bulwark_migrations:${this.module}`}))`.execute(trx);
        return fn(trx as unknown as Kysely<unknown>);
      }),
    );
  }

  /** Closes connections. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const [name, listener] of this.ownListeners) this.signals?.off(name, listener);
    await this.listener?.close();
    await this.release();
  }

  private channelName(channel: string): string {
    return `bulwark_${this.module}_${channel}`.slice(0, 63);
  }
}

/** Applies a new store's migrations; closes it if they fail. */
async function migrated<DB>(store: Store<DB>): Promise<Store<DB>> {
  try {
    await store.migrate();
    return store;
  } catch (error) {
    await store.close();
    throw error;
  }
}

/** Opens a module's store (see `Store.open`). */
export function openStore<DB>(options: StoreOptions): Promise<Store<DB>> {
  return Store.open<DB>(options);
}
