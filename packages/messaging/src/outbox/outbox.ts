/**
 * The transactional outbox: `outbox.add(tx, topic, message)` writes the
 * message in the same transaction as the business change it announces, so
 * both commit or neither does. The relay publishes it afterwards; a commit
 * wakes the relay at once (a commit signal), polling covers the rest.
 *
 * The rows are written as the transaction commits (`UnitOfWork.atCommit`):
 * every message of a transaction in one multi-row insert which, on
 * PostgreSQL, travels with the COMMIT itself, so the outbox adds no round
 * trip to the business transaction. (Hence the transaction does not see its
 * own outbox rows before it commits; nothing should need to.)
 *
 * @example
 * ```ts
 * await store.transaction(async (tx) => {
 *   await tx.db.updateTable('orders').set({ status: 'CONFIRMED' }).where('id', '=', id).execute();
 *   await outbox.add(tx, 'orders', { type: OrderConfirmed, key: id, payload: { orderId: id } });
 * });
 * ```
 */
import { CompiledQuery, type UnitOfWork } from '@bulwark/store';
import { uuidv7, type Envelope } from '../envelope.js';
import { encodeEnvelope } from '../envelope-codec.js';
import { InvalidMessageError, MessagingConfigError } from '../errors.js';
import type { MessageType } from '../message-type.js';
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

/** id, topic, key, partition, body, created_at */
type OutboxRow = [string, string, string, number, string, number];

/** Rows per insert statement (SQLite allows 32 766 parameters per statement). */
const ROWS_PER_INSERT = 1_000;

/** One multi-row insert of `rows` in the dialect's placeholder style. */
function insertRows(dialect: UnitOfWork<unknown>['dialect'], rows: readonly OutboxRow[]): CompiledQuery {
  const parameters: unknown[] = [];
  const tuples: string[] = [];
  for (const row of rows) {
    const at = parameters.length;
    parameters.push(...row);
    tuples.push(dialect === 'postgres' ? `($${at + 1}, $${at + 2}, $${at + 3}, $${at + 4}, $${at + 5}, $${at + 6})` : '(?, ?, ?, ?, ?, ?)');
  }
  return CompiledQuery.raw(`insert into messaging_outbox (id, topic, key, partition, body, created_at) values ${tuples.join(', ')}`, parameters);
}

export class Outbox {
  /** The rows each open transaction has added, written as it commits. */
  private readonly pending = new WeakMap<object, OutboxRow[]>();

  /**
   * Validates `message` against its type and writes it to the outbox in `tx`
   * (as `tx` commits). Rejects with `InvalidMessageError` (writing nothing)
   * when the payload fails its schema. Resolves to the envelope that will be
   * published.
   */
  add<T, DB>(tx: UnitOfWork<DB>, topic: string, message: OutboxMessage<T>): Promise<Envelope<T>> {
    try {
      return Promise.resolve(this.queue(tx, topic, message));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private queue<T, DB>(tx: UnitOfWork<DB>, topic: string, message: OutboxMessage<T>): Envelope<T> {
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
    const row: OutboxRow = [envelope.id, topic, key, partitionOf(key), encodeEnvelope(envelope), now];
    let rows = this.pending.get(tx);
    if (rows === undefined || rows.length >= ROWS_PER_INSERT) {
      const batch: OutboxRow[] = (rows = []);
      this.pending.set(tx, batch);
      tx.atCommit(() => insertRows(tx.dialect, batch));
    }
    rows.push(row);
    // On PostgreSQL the outbox's insert trigger rings sleeping relays; elsewhere the store signals in-process.
    if (tx.dialect !== 'postgres') tx.signal(OUTBOX_SIGNAL);
    return envelope;
  }
}
