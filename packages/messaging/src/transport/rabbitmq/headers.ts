/**
 * AMQP headers the transport reads and writes.
 *
 * - `x-delivery-count`: set by quorum queues on a redelivery, the number of
 *   earlier deliveries of this copy (requeues, consumers that closed).
 * - `x-bulwark-deliveries`: on a copy the transport made for a delayed nak,
 *   the deliveries before the copy, so the count goes on across copies.
 * - `x-bulwark-dead-letter-*`: on a message in a dead-letter queue that the
 *   transport put there, why and after how many deliveries.
 */
import type { Message, MessageProperties, MessagePropertyHeaders, Options } from 'amqplib';
import type { DeadLetterReason } from '../transport.js';
import { PUBLISH_ID_HEADER } from './publisher.js';

/** Deliveries before a delayed copy was made. */
export const DELIVERIES_HEADER = 'x-bulwark-deliveries';
/**
 * Headers on a message the transport set aside in a dead-letter queue.
 *
 * @example
 * ```ts
 * const error = message.properties.headers?.[DEAD_LETTER_HEADERS.error]; // 'handler failed: boom'
 * ```
 */
export const DEAD_LETTER_HEADERS = {
  error: 'x-bulwark-dead-letter-error',
  deliveries: 'x-bulwark-dead-letter-deliveries',
  group: 'x-bulwark-dead-letter-group',
  topic: 'x-bulwark-dead-letter-topic',
  at: 'x-bulwark-dead-lettered-at',
} as const;

const BROKER_HEADERS = ['x-delivery-count', 'x-death', 'x-first-death-exchange', 'x-first-death-queue', 'x-first-death-reason', 'x-last-death-exchange', 'x-last-death-queue', 'x-last-death-reason'];

function count(value: unknown): number | undefined {
  const n = typeof value === 'bigint' ? Number(value) : typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 ? n : undefined;
}

/**
 * 1-based: the deliveries before this copy (`x-bulwark-deliveries`), plus
 * the earlier deliveries of this copy (`x-delivery-count`; a redelivery
 * without it counts one), plus this one.
 */
export function deliveryCountOf(message: Message): number {
  const headers = message.properties.headers ?? {};
  const before = count(headers[DELIVERIES_HEADER]) ?? 0;
  const earlier = count(headers['x-delivery-count']) ?? (message.fields.redelivered ? 1 : 0);
  return before + earlier + 1;
}

/** The message's own headers, without what the broker or this transport added. */
export function ownHeaders(headers: MessagePropertyHeaders | undefined): Record<string, unknown> {
  const own: Record<string, unknown> = { ...headers };
  for (const name of [...BROKER_HEADERS, PUBLISH_ID_HEADER, DELIVERIES_HEADER, ...Object.values(DEAD_LETTER_HEADERS)]) delete own[name];
  return own;
}

export function deadLetterHeaders(headers: MessagePropertyHeaders | undefined, topic: string, reason: DeadLetterReason): Record<string, unknown> {
  return {
    ...ownHeaders(headers),
    [DEAD_LETTER_HEADERS.error]: reason.error,
    [DEAD_LETTER_HEADERS.deliveries]: reason.deliveries,
    [DEAD_LETTER_HEADERS.group]: reason.consumerGroup,
    [DEAD_LETTER_HEADERS.topic]: topic,
    [DEAD_LETTER_HEADERS.at]: new Date().toISOString(),
  };
}

/** A message read from a dead-letter queue. */
export interface RabbitDeadLetter {
  /** The message body as it was delivered. */
  raw: string;
  /** Why it was set aside. */
  error: string;
  /** Deliveries before it was set aside; 0 when RabbitMQ dead-lettered it and the limit is unknown here. */
  deliveries: number;
  /** The envelope id (AMQP `message-id`), when it had one. */
  messageId: string | undefined;
  /** The message's headers as stored. */
  headers: Record<string, unknown>;
}

const BROKER_REASONS: Record<string, string> = {
  delivery_limit: 'RabbitMQ dead-lettered it: redelivered more often than the queue\'s x-delivery-limit',
  rejected: 'RabbitMQ dead-lettered it: rejected by a consumer without requeue',
  expired: 'RabbitMQ dead-lettered it: its TTL expired',
  maxlen: 'RabbitMQ dead-lettered it: the queue was full',
};

/**
 * Reads a dead letter: the transport's own headers when it set the message
 * aside, else the broker's `x-first-death-reason` (the queue's
 * `x-delivery-limit` from `deliveryLimit` gives the deliveries).
 */
export function toDeadLetter(message: Message, deliveryLimit: number | undefined): RabbitDeadLetter {
  const headers: Record<string, unknown> = { ...message.properties.headers };
  const error = headers[DEAD_LETTER_HEADERS.error];
  const messageId: unknown = message.properties.messageId;
  const common = { raw: message.content.toString('utf8'), messageId: typeof messageId === 'string' ? messageId : undefined, headers };
  if (typeof error === 'string') return { ...common, error, deliveries: count(headers[DEAD_LETTER_HEADERS.deliveries]) ?? 0 };
  const firstDeath = headers['x-first-death-reason'];
  const reason = typeof firstDeath === 'string' ? firstDeath : 'unknown';
  const before = count(headers[DELIVERIES_HEADER]) ?? 0;
  const deliveries = reason === 'delivery_limit' && deliveryLimit !== undefined ? before + deliveryLimit + 1 : 0;
  return { ...common, error: BROKER_REASONS[reason] ?? `RabbitMQ dead-lettered it: ${reason}`, deliveries };
}

/** The properties a copy of `properties` keeps (persistent, JSON type, id...); headers are set by the caller. */
export function copyProperties(properties: MessageProperties | undefined): Options.Publish {
  const copy: Options.Publish = { persistent: true };
  if (properties === undefined) return copy;
  const { contentType, contentEncoding, messageId, type, timestamp, correlationId, appId } = properties as Partial<Record<keyof MessageProperties, unknown>>;
  if (typeof contentType === 'string') copy.contentType = contentType;
  if (typeof contentEncoding === 'string') copy.contentEncoding = contentEncoding;
  if (typeof messageId === 'string') copy.messageId = messageId;
  if (typeof type === 'string') copy.type = type;
  if (typeof timestamp === 'number') copy.timestamp = timestamp;
  if (typeof correlationId === 'string') copy.correlationId = correlationId;
  if (typeof appId === 'string') copy.appId = appId;
  return copy;
}
