/**
 * The embedded transport: a durable message bus inside a database, for the
 * `monolith` topology — no broker to run. Every process that opens the same
 * database (SQLite file or PostgreSQL schema) shares the bus.
 *
 * - Publishing writes the message once per topic (its envelope id
 *   deduplicates) and one delivery row per consumer group, in one transaction.
 * - A consumer claims deliveries in order, marking them in flight until
 *   `ackWaitMs` from now (the visibility timeout): a consumer that dies
 *   holding one lets it be claimed again, counted as a redelivery. On
 *   PostgreSQL claims use `FOR UPDATE SKIP LOCKED`; on SQLite the write lock
 *   serialises them.
 * - A commit wakes consumers in the same process at once; consumers in other
 *   processes find new work within `pollIntervalMs`.
 *
 * @example
 * ```ts
 * const transport = await connectEmbeddedTransport({ url: 'sqlite:./data/bus.db' });
 * ```
 */
import { openStore, sql, type Kysely, type Store } from '@bulwark/store';
import type { Envelope } from '../../envelope.js';
import { encodeEnvelope } from '../../envelope-codec.js';
import { MessagingConfigError } from '../../errors.js';
import type { DeadLetterReason, Delivery, DeliveryHandler, SubscribeOptions, Subscription, Transport, TransportCapabilities } from '../transport.js';
import { busMigrations, type BusTables } from './bus-migrations.js';
import { EmbeddedSubscription } from './embedded-subscription.js';

export const BUS_SIGNAL = 'bus';

export interface EmbeddedTransportOptions {
  /** Where the bus lives: opens a store of module `bus` there. Give this or `store`. */
  url?: string;
  /** An open store whose migrations include the `bus` set (`busMigrations`). */
  store?: Store<unknown>;
  /** The module (Postgres schema) the bus opens with `url`. Default `bus`. */
  module?: string;
  /** How often consumers look for work signalled by other processes. Default 100 ms. */
  pollIntervalMs?: number;
  /** Messages are kept (for dedup) this long after every group settled them. Default 10 min. */
  retentionMs?: number;
}

export class EmbeddedTransport implements Transport {
  readonly name = 'embedded';
  readonly capabilities: TransportCapabilities = { dedup: true };
  readonly db: Kysely<BusTables>;
  private readonly subscriptions = new Set<EmbeddedSubscription>();
  private unlisten: (() => void) | undefined;
  private cleanupTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    readonly store: Store<unknown>,
    private readonly ownsStore: boolean,
    readonly pollIntervalMs: number,
    private readonly retentionMs: number,
  ) {
    this.db = store.db as unknown as Kysely<BusTables>;
  }

  /** Starts listening for commit signals and the cleanup timer (done by `connectEmbeddedTransport`). */
  async start(): Promise<void> {
    this.unlisten = await this.store.onSignal(BUS_SIGNAL, () => {
      for (const s of this.subscriptions) s.poke();
    });
    this.cleanupTimer = setInterval(() => void this.cleanup().catch(() => undefined), Math.min(60_000, this.retentionMs));
    this.cleanupTimer.unref();
  }

  async publish(topic: string, envelope: Envelope): Promise<void> {
    this.assertOpen();
    const now = Date.now();
    await this.store.transaction(async (tx) => {
      const db = tx.db as unknown as Kysely<BusTables>;
      const inserted = await db
        .insertInto('bus_messages')
        .values({ topic, id: envelope.id, body: encodeEnvelope(envelope), published_at: now })
        .onConflict((oc) => oc.columns(['topic', 'id']).doNothing())
        .returning('seq')
        .executeTakeFirst();
      if (inserted === undefined) return; // a duplicate: stored once
      await sql`
        insert into bus_deliveries (group_name, topic, seq, state, deliveries, available_at)
        select group_name, topic, ${Number(inserted.seq)}, 'ready', 0, ${now} from bus_groups where topic = ${topic}`.execute(tx.db);
      tx.signal(BUS_SIGNAL);
    });
  }

  async subscribe(topic: string, group: string, handler: DeliveryHandler, options: SubscribeOptions = {}): Promise<Subscription> {
    this.assertOpen();
    const settings = {
      maxDeliveries: positive('maxDeliveries', options.maxDeliveries ?? 10),
      ackWaitMs: positive('ackWaitMs', options.ackWaitMs ?? 30_000),
      concurrency: positive('concurrency', options.concurrency ?? 1),
    };
    await this.db.insertInto('bus_groups').values({ topic, group_name: group }).onConflict((oc) => oc.columns(['topic', 'group_name']).doNothing()).execute();
    const subscription = new EmbeddedSubscription(this, topic, group, handler, settings, () => this.subscriptions.delete(subscription));
    this.subscriptions.add(subscription);
    subscription.start();
    return subscription;
  }

  async deadLetter(topic: string, group: string, delivery: Delivery, reason: DeadLetterReason): Promise<void> {
    await this.db
      .insertInto('bus_dead_letters')
      .values({ topic, group_name: group, body: delivery.raw, error: reason.error, deliveries: reason.deliveries, dead_at: Date.now() })
      .execute();
  }

  /** What `deadLetter` set aside for (topic, group), oldest first. */
  async deadLetters(topic: string, group: string): Promise<{ raw: string; error: string; deliveries: number }[]> {
    const rows = await this.db.selectFrom('bus_dead_letters').select(['body', 'error', 'deliveries']).where('topic', '=', topic).where('group_name', '=', group).orderBy('id').execute();
    return rows.map((r) => ({ raw: r.body, error: r.error, deliveries: Number(r.deliveries) }));
  }

  /** Deletes messages every group has settled, once they are past the retention (dedup) window. */
  async cleanup(now = Date.now()): Promise<void> {
    await this.db
      .deleteFrom('bus_messages')
      .where('published_at', '<', now - this.retentionMs)
      .where((eb) => eb.not(eb.exists(eb.selectFrom('bus_deliveries').select('seq').whereRef('bus_deliveries.seq', '=', 'bus_messages.seq').whereRef('bus_deliveries.topic', '=', 'bus_messages.topic'))))
      .execute();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unlisten?.();
    if (this.cleanupTimer !== undefined) clearInterval(this.cleanupTimer);
    await Promise.all([...this.subscriptions].map((s) => s.stop()));
    if (this.ownsStore) await this.store.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new MessagingConfigError('transport', 'the embedded transport is closed');
  }
}

/** Opens (or joins) an embedded bus. */
export async function connectEmbeddedTransport(options: EmbeddedTransportOptions): Promise<EmbeddedTransport> {
  const pollIntervalMs = positive('pollIntervalMs', options.pollIntervalMs ?? 100);
  const retentionMs = positive('retentionMs', options.retentionMs ?? 600_000);
  let store = options.store;
  const ownsStore = store === undefined;
  if (store === undefined) {
    if (options.url === undefined) throw new MessagingConfigError('url', 'give the bus database url, or an open store');
    store = await openStore({ module: options.module ?? 'bus', url: options.url, migrations: { bus: busMigrations } });
  }
  const transport = new EmbeddedTransport(store, ownsStore, pollIntervalMs, retentionMs);
  await transport.start();
  return transport;
}

function positive(key: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new MessagingConfigError(key, `must be an integer >= 1, got ${String(value)}`);
  return value;
}
