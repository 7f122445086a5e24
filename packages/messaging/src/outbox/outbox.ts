/**
 * The transactional outbox: `outbox.add(tx, topic, message)` writes the
 * message in the same transaction as the business change it announces, so
 * both commit or neither does. The relay publishes it afterwards; a commit
 * wakes the relay at once (a commit signal), polling covers the rest.
 *
 * @example
 * ```ts
 * await store.transaction(async (tx) => {
 *   await tx.db.updateTable('orders').set({ status: 'CONFIRMED' }).where('id', '=', id).execute();
 *   await outbox.add(tx, 'orders', { type: OrderConfirmed, key: id, payload: { orderId: id } });
 * });
 * ```
 */
import type { Kysely, UnitOfWork } from '@bulwark/store';
import { uuidv7, type Envelope } from '../envelope.js';
import { encodeEnvelope } from '../envelope-codec.js';
import { InvalidMessageError, MessagingConfigError } from '../errors.js';
import type { MessageType } from '../message-type.js';
import type { MessagingTables } from '../schema/messaging-migrations.js';
import { partitionOf } from './partition.js';
import { messagingInstrumentation } from '../instrumentation.js';

/** The commit signal that wakes relays. */
export const OUTBOX_SIGNAL = 'outbox';

export interface OutboxMessage<T> {
  type: MessageType<T>;
  /** Ordering key, usually the aggregate id: one key's messages are delivered in order. */
  key: string;
  payload: T;
  /** Context to propagate: `traceparent`, `correlation-id`, ... */
  headers?: Record<string, string>;
  /** When the fact happened. Default: now. */
  occurredAt?: Date;
}

export class Outbox {
  /**
   * Validates `message` against its type and writes it to the outbox in `tx`.
   * Throws `InvalidMessageError` (writing nothing) when the payload fails its
   * schema. Returns the envelope that will be published.
   */
  async add<T, DB>(tx: UnitOfWork<DB>, topic: string, message: OutboxMessage<T>): Promise<Envelope<T>> {
    if (typeof topic !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$/.test(topic)) {
      throw new MessagingConfigError('topic', `${JSON.stringify(topic)} must be letters, digits, _ . - (dots separate levels)`);
    }
    const { type, key } = message;
    if (typeof key !== 'string' || key === '') throw new InvalidMessageError(type.type, type.version, 'an ordering key (a non-empty string) is required');
    let payload: T;
    try {
      payload = type.parse(message.payload);
    } catch (error) {
      throw new InvalidMessageError(type.type, type.version, (error as Error).message ?? String(error), { cause: error });
    }
    const headers: Record<string, string> = { ...message.headers };
    for (const [name, value] of Object.entries(headers)) {
      if (typeof value !== 'string') throw new InvalidMessageError(type.type, type.version, `header "${name}" must be a string`);
    }
    const instrumentation = messagingInstrumentation();
    if (instrumentation !== undefined) {
      const injected: Record<string, string> = {};
      instrumentation.inject(injected);
      for (const name of Object.keys(injected)) {
        if (headers[name] === undefined) headers[name] = injected[name]!;
      }
    }
    const now = Date.now();
    const envelope: Envelope<T> = {
      id: uuidv7(now),
      type: type.type,
      version: type.version,
      key,
      occurredAt: (message.occurredAt ?? new Date(now)).toISOString(),
      headers,
      payload,
    };
    await (tx.db as unknown as Kysely<MessagingTables>)
      .insertInto('messaging_outbox')
      .values({ id: envelope.id, topic, key, partition: partitionOf(key), body: encodeEnvelope(envelope), created_at: now })
      .execute();
    // On PostgreSQL the outbox's insert trigger sends the NOTIFY; elsewhere the store signals in-process.
    if (tx.dialect !== 'postgres') tx.signal(OUTBOX_SIGNAL);
    return envelope;
  }
}
