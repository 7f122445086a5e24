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
import type { Handlers } from './handlers.js';

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
  /** Visibility timeout on the transport. Default 30 s. */
  ackWaitMs?: number;
}

export type ConsumeOutcome = 'handled' | 'duplicate' | 'retry' | 'dead-lettered';

export interface ConsumerEvents {
  /** A delivery was dealt with: `lagMs` is the time since the message's fact happened. */
  settled: { outcome: ConsumeOutcome; type: string | undefined; durationMs: number; lagMs: number | undefined; deliveryCount: number; error?: unknown };
}

type Listener = (event: ConsumerEvents['settled']) => void;

export class Consumer<DB> {
  private readonly db: Kysely<MessagingTables>;
  private readonly backoff: Backoff;
  private readonly maxDeliveries: number;
  private readonly listeners: Listener[] = [];
  private subscription: Subscription | undefined;

  constructor(private readonly options: ConsumerOptions<DB>) {
    if (typeof options.topic !== 'string' || options.topic === '') throw new MessagingConfigError('topic', 'must be a non-empty string');
    if (typeof options.group !== 'string' || options.group === '') throw new MessagingConfigError('group', 'must be a non-empty string');
    this.maxDeliveries = options.maxDeliveries ?? 5;
    if (!Number.isInteger(this.maxDeliveries) || this.maxDeliveries < 1) throw new MessagingConfigError('maxDeliveries', `must be an integer >= 1, got ${String(this.maxDeliveries)}`);
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
    this.subscription = await transport.subscribe(topic, group, async (d) => void (await this.process(d)), {
      maxDeliveries: this.maxDeliveries + 2,
      ackWaitMs: this.options.ackWaitMs ?? 30_000,
      concurrency: this.options.concurrency ?? 1,
    });
  }

  /** Stops taking messages and waits for the ones in hand. */
  async stop(): Promise<void> {
    await this.subscription?.stop();
    this.subscription = undefined;
  }

  /** Handles one delivery. Public so tools (and replays) can drive it. */
  async process(delivery: Delivery): Promise<ConsumeOutcome> {
    const started = Date.now();
    const envelope = delivery.envelope;
    const report = (outcome: ConsumeOutcome, error?: unknown): ConsumeOutcome => {
      const lagMs = envelope === undefined ? undefined : started - Date.parse(envelope.occurredAt);
      this.emit({ outcome, type: envelope?.type, durationMs: Date.now() - started, lagMs, deliveryCount: delivery.deliveryCount, error });
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
    let payload: unknown;
    try {
      payload = entry.type.parse(envelope.payload);
    } catch (error) {
      return report(await this.deadLetter(delivery, `payload of ${envelope.type} v${envelope.version} failed its schema: ${errorText(error)}`));
    }
    try {
      const duplicate = await this.options.store.transaction(async (tx) => {
        const inbox = tx.db as unknown as Kysely<MessagingTables>;
        const inserted = await inbox
          .insertInto('messaging_inbox')
          .values({ consumer_group: this.options.group, message_id: envelope.id, handled_at: Date.now() })
          .onConflict((oc) => oc.columns(['consumer_group', 'message_id']).doNothing())
          .returning('message_id')
          .executeTakeFirst();
        if (inserted === undefined) return true;
        await entry.handle(payload, { tx, envelope, deliveryCount: delivery.deliveryCount });
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
