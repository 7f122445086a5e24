/**
 * A consumer that applies each message's effect exactly once, on top of the
 * at-least-once delivery of any transport.
 *
 * For each delivery, in one transaction of the consumer's own database: insert
 * the inbox row (consumer group, message id); if it was already there the
 * message was applied before and is only acked; otherwise run the handler.
 * The handler's writes and the inbox row commit together, so a crash at any
 * point leaves either both or neither, and the redelivery that follows is
 * applied once.
 *
 * Failures:
 * - a handler that throws is retried with backoff (a nak with delay);
 * - after `maxDeliveries` deliveries, or at once for an error marked
 *   `retryable: false`, the message is dead-lettered — recorded with the
 *   error and delivery count in the consumer's database
 *   (`messaging_dead_letters`) and set aside on the transport — and
 *   terminated, so it never blocks the consumer again;
 * - a delivery that is not an envelope, of a (type, version) with no
 *   handler, or whose payload fails its schema is dead-lettered at once;
 * - a message delivered more than `maxDeliveries` times without being
 *   settled (its handler keeps crashing the process) is dead-lettered before
 *   the handler runs again.
 *
 * @example
 * ```ts
 * const consumer = await consume({ store, transport, topic: 'orders', group: 'notifications', handlers });
 * // ... on shutdown
 * await consumer.stop();
 * ```
 */
import { Backoff, type BackoffOptions } from '@bulwark/resilience';
import type { Kysely, Store } from '@bulwark/store';
import { MessagingConfigError } from '../errors.js';
import type { MessagingTables } from '../schema/messaging-migrations.js';
import type { Delivery, Subscription, Transport } from '../transport/transport.js';
import type { Envelope } from '../envelope.js';
import type { HandlerContext, HandlerEntry, Handlers } from './handlers.js';
import { messagingInstrumentation } from '../instrumentation.js';

export interface ConsumerOptions<DB> {
  store: Store<DB>;
  transport: Transport;
  topic: string;
  group: string;
  handlers: Handlers<DB>;
  /** Deliveries before a failing message is dead-lettered. Default 5. */
  maxDeliveries?: number;
  /** Backoff between retries of a failing message. Default: full jitter from 200 ms, capped at 30 s. */
  backoff?: BackoffOptions;
  /** Messages handled at once. Default 1 (which keeps per-key order). */
  concurrency?: number;
  /**
   * Deliveries applied in one transaction (one multi-row inbox insert and one
   * commit for all of them). Default 1. A batch is what has arrived by the
   * next turn of the event loop, at most this many; if any handler fails, the
   * batch rolls back and each delivery is applied on its own. Per-key order
   * holds within a batch (handlers run in delivery order).
   */
  batchSize?: number;
  /** Visibility timeout on the transport. Default 30 s. */
  ackWaitMs?: number;
}

export type ConsumeOutcome = 'handled' | 'duplicate' | 'retry' | 'dead-lettered';

export interface ConsumerEvents {
  /** A delivery was dealt with: `lagMs` is the time since the message's fact happened. */
  settled: { outcome: ConsumeOutcome; type: string | undefined; durationMs: number; lagMs: number | undefined; deliveryCount: number; batch: number; error?: unknown };
}

type Listener = (event: ConsumerEvents['settled']) => void;

/** A delivery that passed the checks and waits for its transaction. */
interface Ready<DB> {
  delivery: Delivery;
  envelope: Envelope;
  entry: HandlerEntry<DB>;
  payload: unknown;
  report: (outcome: ConsumeOutcome, error?: unknown, batch?: number) => ConsumeOutcome;
}

export class Consumer<DB> {
  private readonly db: Kysely<MessagingTables>;
  private readonly backoff: Backoff;
  private readonly maxDeliveries: number;
  private readonly listeners: Listener[] = [];
  private readonly batchSize: number;
  private readonly pending: { ready: Ready<DB>; done: () => void }[] = [];
  private flushSoon: NodeJS.Immediate | undefined;
  private subscription: Subscription | undefined;

  constructor(private readonly options: ConsumerOptions<DB>) {
    if (typeof options.topic !== 'string' || options.topic === '') throw new MessagingConfigError('topic', 'must be a non-empty string');
    if (typeof options.group !== 'string' || options.group === '') throw new MessagingConfigError('group', 'must be a non-empty string');
    this.maxDeliveries = options.maxDeliveries ?? 5;
    if (!Number.isInteger(this.maxDeliveries) || this.maxDeliveries < 1) throw new MessagingConfigError('maxDeliveries', `must be an integer >= 1, got ${String(this.maxDeliveries)}`);
    this.batchSize = options.batchSize ?? 1;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw new MessagingConfigError('batchSize', `must be an integer >= 1, got ${String(this.batchSize)}`);
    this.backoff = new Backoff({ baseMs: 200, capMs: 30_000, ...options.backoff }, 'consumer');
    this.db = options.store.db as unknown as Kysely<MessagingTables>;
  }

  on(_type: 'settled', listener: Listener): () => void {
    this.listeners.push(listener);
    return () => void this.listeners.splice(this.listeners.indexOf(listener), 1);
  }

  async start(): Promise<void> {
    const { transport, topic, group } = this.options;
    // The broker's own limit is a safety net above ours: we dead-letter first, with the error.
    this.subscription = await transport.subscribe(topic, group, (d) => this.receive(d), {
      maxDeliveries: this.maxDeliveries + 2,
      ackWaitMs: this.options.ackWaitMs ?? 30_000,
      concurrency: Math.max(this.options.concurrency ?? 1, this.batchSize),
    });
  }

  /** Stops taking messages and waits for the ones in hand. */
  async stop(): Promise<void> {
    await this.subscription?.stop();
    this.subscription = undefined;
  }

  /** Handles one delivery on its own. Public so tools (and replays) can drive it. */
  async process(delivery: Delivery): Promise<ConsumeOutcome> {
    const ready = await this.prepare(delivery);
    return typeof ready === 'string' ? ready : this.applyOne(ready);
  }

  /** Handles a delivery from the transport: batched with others when `batchSize` > 1. */
  private async receive(delivery: Delivery): Promise<void> {
    const ready = await this.prepare(delivery);
    if (typeof ready === 'string') return;
    if (this.batchSize === 1) {
      await this.applyOne(ready);
      return;
    }
    await new Promise<void>((resolve) => {
      this.pending.push({ ready, done: resolve });
      if (this.pending.length >= this.batchSize) this.flush();
      else this.flushSoon ??= setImmediate(() => this.flush());
    });
  }

  /** Checks a delivery before any transaction: dead-letters what can never be handled. */
  private async prepare(delivery: Delivery): Promise<Ready<DB> | ConsumeOutcome> {
    const started = Date.now();
    const envelope = delivery.envelope;
    const report = (outcome: ConsumeOutcome, error?: unknown, batch = 1): ConsumeOutcome => {
      const lagMs = envelope === undefined ? undefined : started - Date.parse(envelope.occurredAt);
      this.emit({ outcome, type: envelope?.type, durationMs: Date.now() - started, lagMs, deliveryCount: delivery.deliveryCount, batch, error });
      return outcome;
    };
    if (envelope === undefined) return report(await this.deadLetter(delivery, `not an envelope: ${delivery.parseError?.message ?? 'unreadable'}`));
    if (delivery.deliveryCount > this.maxDeliveries) {
      return report(await this.deadLetter(delivery, `delivered ${delivery.deliveryCount} times without being settled; its handler may be crashing the process`));
    }
    const entry = this.options.handlers.get(envelope.type, envelope.version);
    if (entry === undefined) {
      return report(await this.deadLetter(delivery, `no handler for ${envelope.type} v${envelope.version} in group "${this.options.group}" (handles: ${this.options.handlers.handled().join(', ') || 'nothing'})`));
    }
    try {
      return { delivery, envelope, entry, payload: entry.type.parse(envelope.payload), report };
    } catch (error) {
      return report(await this.deadLetter(delivery, `payload of ${envelope.type} v${envelope.version} failed its schema: ${errorText(error)}`));
    }
  }

  /** Runs a handler, inside the installed instrumentation's context if there is one. */
  private runHandler(entry: HandlerEntry<DB>, payload: unknown, context: HandlerContext<DB>, batchSize: number): Promise<void> {
    const instrumentation = messagingInstrumentation();
    if (instrumentation === undefined) return entry.handle(payload, context);
    const { topic, group } = this.options;
    return instrumentation.handle({ topic, group, envelope: context.envelope, deliveryCount: context.deliveryCount, batchSize }, async () => {
      await entry.handle(payload, context);
    });
  }

  /** One delivery, one transaction: the inbox row and the handler's effects commit together. */
  private async applyOne(ready: Ready<DB>): Promise<ConsumeOutcome> {
    const { delivery, envelope, entry, payload, report } = ready;
    try {
      const duplicate = await this.options.store.transaction(async (tx) => {
        const inserted = await this.insertInbox(tx.db as unknown as Kysely<MessagingTables>, [envelope.id]);
        if (!inserted.has(envelope.id)) return true;
        await this.runHandler(entry, payload, { tx, envelope, deliveryCount: delivery.deliveryCount }, 1);
        return false;
      });
      await delivery.ack();
      return report(duplicate ? 'duplicate' : 'handled');
    } catch (error) {
      const permanent = (error as { retryable?: unknown } | null)?.retryable === false;
      if (permanent || delivery.deliveryCount >= this.maxDeliveries) {
        const why = permanent ? 'not retryable' : `failed ${delivery.deliveryCount} deliveries`;
        return report(await this.deadLetter(delivery, `handler ${why}: ${errorText(error)}`), error);
      }
      await delivery.nak(Math.ceil(this.backoff.delay(delivery.deliveryCount - 1, 0, Math.random)));
      return report('retry', error);
    }
  }

  /**
   * Several deliveries in one transaction: one multi-row inbox insert, then
   * each new message's handler. If any handler fails the whole batch rolls
   * back and every delivery is applied again on its own, so one bad message
   * costs its batch a retry, never an effect.
   */
  private flush(): void {
    if (this.flushSoon !== undefined) {
      clearImmediate(this.flushSoon);
      this.flushSoon = undefined;
    }
    const batch = this.pending.splice(0, this.pending.length);
    if (batch.length === 0) return;
    void this.applyBatch(batch.map((b) => b.ready)).finally(() => {
      for (const b of batch) b.done();
    });
  }

  private async applyBatch(batch: Ready<DB>[]): Promise<void> {
    if (batch.length === 1) {
      await this.applyOne(batch[0]!).catch(() => undefined);
      return;
    }
    let applied: boolean[];
    try {
      applied = await this.options.store.transaction(async (tx) => {
        const inserted = await this.insertInbox(tx.db as unknown as Kysely<MessagingTables>, batch.map((r) => r.envelope.id));
        const fresh: boolean[] = [];
        for (const { envelope, entry, payload, delivery } of batch) {
          // The first delivery of an id in the batch applies it; later ones are duplicates.
          const isNew = inserted.delete(envelope.id);
          fresh.push(isNew);
          if (isNew) await this.runHandler(entry, payload, { tx, envelope, deliveryCount: delivery.deliveryCount }, batch.length);
        }
        return fresh;
      });
    } catch {
      for (const ready of batch) await this.applyOne(ready).catch(() => undefined);
      return;
    }
    await Promise.all(
      batch.map(async (ready, i) => {
        await ready.delivery.ack().catch(() => undefined);
        ready.report(applied[i] === true ? 'handled' : 'duplicate', undefined, batch.length);
      }),
    );
  }

  private async insertInbox(db: Kysely<MessagingTables>, ids: string[]): Promise<Set<string>> {
    const now = Date.now();
    const rows = await db
      .insertInto('messaging_inbox')
      .values(ids.map((message_id) => ({ consumer_group: this.options.group, message_id, handled_at: now })))
      .onConflict((oc) => oc.columns(['consumer_group', 'message_id']).doNothing())
      .returning('message_id')
      .execute();
    return new Set(rows.map((r) => r.message_id));
  }

  /** Records the message as dead in the consumer's database and on the transport, then terminates it. */
  private async deadLetter(delivery: Delivery, error: string): Promise<ConsumeOutcome> {
    const { topic, group, transport } = this.options;
    const envelope = delivery.envelope;
    try {
      await this.db
        .insertInto('messaging_dead_letters')
        .values({
          consumer_group: group,
          topic,
          message_id: envelope?.id ?? null,
          type: envelope?.type ?? null,
          version: envelope?.version ?? null,
          body: delivery.raw,
          error,
          deliveries: delivery.deliveryCount,
          dead_at: Date.now(),
          replayed_at: null,
        })
        .execute();
      await transport.deadLetter(topic, group, delivery, { error, deliveries: delivery.deliveryCount, consumerGroup: group });
    } catch (recordError) {
      // Could not set it aside: leave it to be redelivered rather than lose it.
      await delivery.nak(1_000);
      throw recordError;
    }
    await delivery.term();
    return 'dead-lettered';
  }

  private emit(event: ConsumerEvents['settled']): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        process.emitWarning(`bulwark consumer: a listener threw: ${String(error)}`);
      }
    }
  }
}

/** Creates and starts a consumer. */
export async function consume<DB>(options: ConsumerOptions<DB>): Promise<Consumer<DB>> {
  const consumer = new Consumer(options);
  await consumer.start();
  return consumer;
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 2_000);
}
