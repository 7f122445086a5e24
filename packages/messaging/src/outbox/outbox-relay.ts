/**
 * The outbox relay: publishes committed outbox rows to a transport, marks
 * them published, and cleans up old ones.
 *
 * - **Wake on commit.** A commit that adds to the outbox signals a sleeping
 *   relay (in-process on SQLite, NOTIFY on PostgreSQL), so a message leaves
 *   within a round trip of its commit; `pollIntervalMs` covers lost signals.
 *   On PostgreSQL only a sleeping relay is rung: before it sleeps a relay
 *   takes an exclusive advisory lock per partition it owns (waiting for
 *   writers in flight, then looking once more), and the outbox trigger
 *   NOTIFYs only when its shared lock on a written partition is refused. A
 *   NOTIFY per commit would serialize every commit in the database.
 * - **Several relays.** The outbox is split into partitions by ordering key;
 *   a relay owns partitions by a lease it renews (`leaseMs`), and another
 *   relay takes over a partition whose lease expired. On PostgreSQL a batch is
 *   also claimed `FOR UPDATE SKIP LOCKED`, so a relay that lost its lease
 *   mid-batch and its successor never publish the same rows side by side.
 *   A relay takes every free partition; relays do not rebalance among
 *   themselves (a standby takes over when the owner stops or dies).
 * - **Order.** Within a batch, messages of one key are published one after
 *   another and a failure stops the rest of that key; different keys go in
 *   parallel.
 * - **At least once, never lost.** A row is marked published only after the
 *   broker confirmed it. A crash between the two publishes it again: the
 *   broker's dedup id (the envelope id) or the consumer's inbox absorbs it.
 * - **Broker outage.** Failed publishes are counted on the row
 *   (`attempts`, `last_error`) and the relay backs off (full jitter, capped)
 *   before trying again.
 *
 * @example
 * ```ts
 * const relay = new OutboxRelay({ store, transport });
 * await relay.start();
 * // ... on shutdown
 * await relay.stop();
 * ```
 */
import { randomUUID } from 'node:crypto';
import { Backoff } from '@bulwark/resilience';
import { sql, type Compilable, type Kysely, type Store } from '@bulwark/store';
import { MessagingConfigError } from '../errors.js';
import type { MessagingTables } from '../schema/messaging-migrations.js';
import type { Transport } from '../transport/transport.js';
import { decodeEnvelope } from '../envelope-codec.js';
import { OUTBOX_SIGNAL } from './outbox.js';

export interface OutboxRelayOptions<DB = unknown> {
  store: Store<DB>;
  transport: Transport;
  /** Rows per batch. Default 200. */
  batchSize?: number;
  /** Look for work this often even without a commit signal. Default 1 000 ms. */
  pollIntervalMs?: number;
  /** A partition lease lasts this long and is renewed at a third of it. Default 15 000 ms. */
  leaseMs?: number;
  /** Published rows are deleted after this long. Default 24 h. */
  retentionMs?: number;
  /** This relay's name in the lease table. Default: a random id. */
  owner?: string;
}

export interface OutboxRelayEvents {
  published: { count: number; oldestLagMs: number };
  publishFailed: { error: unknown; attempts: number };
}

type Listener<E> = (event: E) => void;

interface PendingRow {
  seq: number;
  id: string;
  topic: string;
  key: string;
  body: string;
  created_at: number;
}

export class OutboxRelay<DB = unknown> {
  readonly owner: string;
  private readonly store: Store<DB>;
  private readonly db: Kysely<MessagingTables>;
  private readonly transport: Transport;
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  private readonly leaseMs: number;
  private readonly retentionMs: number;
  private readonly backoff = new Backoff({ baseMs: 50, capMs: 5_000 }, 'outboxRelay');
  private readonly listeners: { [K in keyof OutboxRelayEvents]: Listener<OutboxRelayEvents[K]>[] } = { published: [], publishFailed: [] };
  private partitions: number[] = [];
  private leaseValidUntil = 0;
  private nextLeaseAt = 0;
  private nextCleanupAt = 0;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private woken = false;
  private unlisten: (() => void) | undefined;
  /** PostgreSQL: the advisory lock class of this schema's outbox doorbell (see the notify trigger's migration). */
  private doorbell: number | undefined;

  constructor(options: OutboxRelayOptions<DB>) {
    this.store = options.store;
    this.db = options.store.db as unknown as Kysely<MessagingTables>;
    this.transport = options.transport;
    this.batchSize = positiveInt('batchSize', options.batchSize ?? 200);
    this.pollIntervalMs = positiveInt('pollIntervalMs', options.pollIntervalMs ?? 1_000);
    this.leaseMs = positiveInt('leaseMs', options.leaseMs ?? 15_000);
    this.retentionMs = positiveInt('retentionMs', options.retentionMs ?? 24 * 3_600_000);
    this.owner = options.owner ?? `relay-${randomUUID()}`;
  }

  on<K extends keyof OutboxRelayEvents>(type: K, listener: Listener<OutboxRelayEvents[K]>): () => void {
    const list = this.listeners[type] as Listener<OutboxRelayEvents[K]>[];
    list.push(listener);
    return () => void list.splice(list.indexOf(listener), 1);
  }

  /** The partitions this relay owns right now. */
  ownedPartitions(): readonly number[] {
    return Date.now() < this.leaseValidUntil ? this.partitions : [];
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.unlisten = await this.store.onSignal(OUTBOX_SIGNAL, () => this.poke());
    if (this.store.dialect === 'postgres') {
      const { rows } = await sql<{ k: number }>`select hashtext('bulwark_outbox:' || current_schema()) as k`.execute(this.db);
      this.doorbell = rows[0]?.k;
    }
    this.loop = this.run();
  }

  /** Finishes the batch in flight, releases its leases and stops. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.unlisten?.();
    this.poke();
    await this.loop;
    await this.db
      .updateTable('messaging_outbox_lease')
      .set({ owner: null, expires_at: 0 })
      .where('owner', '=', this.owner)
      .execute()
      .catch(() => undefined);
  }

  /** Publishes what is pending now, once (for tests and tools); returns how many rows were published. */
  async relayOnce(): Promise<number> {
    await this.renewLeases(Date.now());
    return this.publishBatch();
  }

  private poke(): void {
    this.woken = true;
    this.wake?.();
  }

  private async run(): Promise<void> {
    let failures = 0;
    let previousDelay = 0;
    while (this.running) {
      try {
        const now = Date.now();
        if (now >= this.nextLeaseAt) await this.renewLeases(now);
        if (now >= this.nextCleanupAt) await this.cleanup(now);
        this.woken = false;
        const published = await this.publishBatch();
        failures = 0;
        // Work found: look again at once. Only an empty look sleeps — a relay that tried to sleep
        // after every partial batch would wait on the doorbell locks while writers, finding the
        // lock wanted, ring (and a NOTIFY serializes commits).
        if (published > 0 || this.woken) continue;
        await this.sleep();
      } catch (error) {
        failures++;
        this.emit('publishFailed', { error, attempts: failures });
        previousDelay = this.backoff.delay(failures - 1, previousDelay, Math.random);
        await this.idle(previousDelay, false);
      }
    }
  }

  /**
   * Sleeps until a commit signal, the poll interval or `stop()`. On
   * PostgreSQL it first takes the doorbell locks of its partitions (so
   * writers from now on ring), then looks once more for rows committed
   * before that, and holds the locks (on a connection of its own) while it
   * sleeps. If writers in flight keep it from the locks for `DOORBELL_WAIT`,
   * it does not sleep: it goes back to work.
   */
  private async sleep(): Promise<void> {
    const partitions = this.ownedPartitions();
    if (this.doorbell === undefined || partitions.length === 0) return this.idle(this.pollIntervalMs);
    const lock = `select pg_advisory_lock(${this.doorbell}, p) from unnest(array[${partitions.join(',')}]::int[]) p`;
    await this.db.connection().execute(async (conn) => {
      try {
        // One round trip; if the lock times out the implicit transaction rolls the SET back too.
        await sql.raw(`set lock_timeout = ${DOORBELL_WAIT_MS}; ${lock}; reset lock_timeout`).execute(conn);
      } catch {
        await sql.raw('select pg_advisory_unlock_all()').execute(conn).catch(() => undefined);
        return; // writers in flight: there is work coming, no sleep
      }
      try {
        const pending = await sql.raw(`select 1 from messaging_outbox where published_at is null and partition in (${partitions.join(',')}) limit 1`).execute(conn);
        if (pending.rows.length === 0 && !this.woken) await this.idle(this.pollIntervalMs);
      } finally {
        // Released at once on waking, so writers stop ringing while this relay works.
        await sql.raw('select pg_advisory_unlock_all()').execute(conn).catch(() => undefined);
      }
    });
  }

  /** Waits `ms`, or until a commit signal (when `wakeable`) or `stop()`. */
  private idle(ms: number, wakeable = true): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = wakeable ? done : () => (this.running ? undefined : done());
    });
  }

  private async renewLeases(now: number): Promise<void> {
    const rows = await this.db
      .updateTable('messaging_outbox_lease')
      .set({ owner: this.owner, expires_at: now + this.leaseMs })
      .where((eb) => eb.or([eb('owner', '=', this.owner), eb('expires_at', '<', now)]))
      .returning('partition')
      .execute();
    this.partitions = rows.map((r) => Number(r.partition)).sort((a, b) => a - b);
    this.leaseValidUntil = now + this.leaseMs;
    this.nextLeaseAt = now + this.leaseMs / 3;
  }

  private async cleanup(now: number): Promise<void> {
    this.nextCleanupAt = now + 60_000;
    await this.db.deleteFrom('messaging_outbox').where('published_at', '<', now - this.retentionMs).execute();
  }

  private async publishBatch(): Promise<number> {
    const partitions = this.ownedPartitions();
    if (partitions.length === 0) return 0;
    let result: { published: number; failed: boolean; error: unknown };
    if (this.store.dialect === 'postgres') {
      // The claim's row locks are held while publishing; the outcome (published or failed) is
      // written as commit writes, so it costs no round trip of its own, and only then is a
      // failure raised for the backoff.
      result = await this.store.transaction(async (tx) => {
        const db = tx.db as unknown as Kysely<MessagingTables>;
        const rows = await sql<PendingRow>`
          select seq, id, topic, key, body, created_at from messaging_outbox
          where published_at is null and partition in (${sql.join(partitions)})
          order by seq limit ${this.batchSize}
          for update skip locked`.execute(db);
        return this.publishRows(rows.rows, db, (query) => tx.atCommit(() => query.compile()));
      });
    } else {
      const rows = await this.db
        .selectFrom('messaging_outbox')
        .select(['seq', 'id', 'topic', 'key', 'body', 'created_at'])
        .where('published_at', 'is', null)
        .where('partition', 'in', partitions)
        .orderBy('seq')
        .limit(this.batchSize)
        .execute();
      result = await this.publishRows(rows, this.db, (query) => query.execute());
    }
    if (result.failed) throw result.error;
    return result.published;
  }

  /** Publishes `rows` (key by key, in order), marks the published ones and records a failure, through `write`. */
  private async publishRows(
    rows: readonly PendingRow[],
    db: Kysely<MessagingTables>,
    write: (query: Compilable & { execute(): Promise<unknown> }) => unknown,
  ): Promise<{ published: number; failed: boolean; error: unknown }> {
    if (rows.length === 0) return { published: 0, failed: false, error: undefined };
    const byKey = new Map<string, PendingRow[]>();
    for (const row of rows) {
      const list = byKey.get(row.key);
      if (list === undefined) byKey.set(row.key, [row]);
      else list.push(row);
    }
    const published: number[] = [];
    let oldest = Number.POSITIVE_INFINITY;
    let failure: { error: unknown; row: PendingRow } | undefined;
    await Promise.all(
      [...byKey.values()].map(async (chain) => {
        for (const row of chain) {
          try {
            await this.transport.publish(row.topic, decodeEnvelope(row.body));
            published.push(Number(row.seq));
            oldest = Math.min(oldest, Number(row.created_at));
          } catch (error) {
            failure ??= { error, row };
            return; // the rest of this key waits, to keep its order
          }
        }
      }),
    );
    const now = Date.now();
    if (published.length > 0) {
      await write(db.updateTable('messaging_outbox').set({ published_at: now }).where('seq', 'in', published));
      this.emit('published', { count: published.length, oldestLagMs: now - oldest });
    }
    if (failure === undefined) return { published: published.length, failed: false, error: undefined };
    const { error, row } = failure;
    await write(
      db
        .updateTable('messaging_outbox')
        .set((eb) => ({ attempts: eb('attempts', '+', 1), last_error: String((error as Error)?.message ?? error).slice(0, 2_000) }))
        .where('seq', '=', row.seq),
    );
    return { published: published.length, failed: true, error };
  }

  private emit<K extends keyof OutboxRelayEvents>(type: K, event: OutboxRelayEvents[K]): void {
    for (const listener of this.listeners[type] as Listener<OutboxRelayEvents[K]>[]) {
      try {
        listener(event);
      } catch (error) {
        process.emitWarning(`bulwark outbox relay: a "${type}" listener threw: ${String(error)}`);
      }
    }
  }
}

/** How long a relay going to sleep waits for the writers in flight before it gives up sleeping. */
const DOORBELL_WAIT_MS = 250;

function positiveInt(key: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new MessagingConfigError(key, `must be an integer >= 1, got ${String(value)}`);
  return value;
}
