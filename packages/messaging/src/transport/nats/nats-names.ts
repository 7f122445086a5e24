/**
 * How topics and consumer groups map to JetStream names and subjects.
 *
 * Stream and consumer names may not contain `.`, `*`, `>`, whitespace or
 * path separators, so a topic such as `orders.confirmed` cannot name a
 * stream as it is. The mapping below keeps the common case readable and
 * stays injective: two different topics never share a stream.
 */
import { createHash } from 'node:crypto';

/** Names made only of these characters map by turning dots into `_` (no `_` in the input, so no collision). */
const READABLE = /^[A-Za-z0-9.-]+$/;
const MAX_NAME = 96;
/** A valid NATS subject with no wildcards: dot-separated, non-empty tokens, no whitespace. */
const LITERAL_SUBJECT = /^[^\s.*>]+(\.[^\s.*>]+)*$/;

function shortHash(value: string): string {
  return createHash('sha256').update(value).digest('hex').slice(0, 8);
}

/**
 * A JetStream-safe name (`[A-Za-z0-9_-]`) for a topic or group.
 *
 * ```ts
 * natsSafeName('orders.confirmed'); // 'orders_confirmed'
 * natsSafeName('billing_v2');      // 'billing_v2_<8 hex digits>' (lossy mapping, so hashed)
 * ```
 */
export function natsSafeName(value: string): string {
  if (value === '') throw new TypeError('a NATS name cannot be empty');
  let name = READABLE.test(value) ? value.replaceAll('.', '_') : `${value.replace(/[^A-Za-z0-9-]/g, '_')}_${shortHash(value)}`;
  if (name.length > MAX_NAME) name = `${name.slice(0, MAX_NAME - 9)}_${shortHash(value)}`;
  return name;
}

/**
 * The stream that holds `topic`: `streamPrefix` + the topic made safe.
 *
 * ```ts
 * topicStreamName('orders.confirmed', 'BULWARK_'); // 'BULWARK_orders_confirmed'
 * ```
 */
export function topicStreamName(topic: string, streamPrefix: string): string {
  return `${streamPrefix}${natsSafeName(topic)}`;
}

/**
 * The stream that holds every dead letter of a transport: `streamPrefix` + `DLQ`.
 *
 * ```ts
 * deadLetterStreamName('BULWARK_'); // 'BULWARK_DLQ'
 * ```
 */
export function deadLetterStreamName(streamPrefix: string): string {
  return `${streamPrefix}DLQ`;
}

/**
 * The durable consumer of a consumer group (one per topic stream).
 *
 * ```ts
 * groupConsumerName('billing.invoices'); // 'billing_invoices'
 * ```
 */
export function groupConsumerName(group: string): string {
  return natsSafeName(group);
}

/** Throws unless `topic` is a literal NATS subject (no wildcards, no empty tokens, no whitespace). */
export function assertValidTopic(topic: string): void {
  if (!LITERAL_SUBJECT.test(topic)) {
    throw new TypeError(`invalid topic ${JSON.stringify(topic)}: a NATS topic is dot-separated non-empty tokens without whitespace, '*' or '>'`);
  }
}

/** Throws unless `prefix` is usable at the start of a stream name. */
export function assertValidStreamPrefix(prefix: string): void {
  if (!/^[A-Za-z0-9_-]*$/.test(prefix)) throw new TypeError(`invalid streamPrefix ${JSON.stringify(prefix)}: use only letters, digits, '_' and '-'`);
}

/** Throws unless `prefix` is empty or a subject prefix ending in a dot (`app.`). */
export function assertValidSubjectPrefix(option: string, prefix: string, allowEmpty: boolean): void {
  if (prefix === '' && allowEmpty) return;
  if (!prefix.endsWith('.') || !LITERAL_SUBJECT.test(prefix.slice(0, -1))) {
    throw new TypeError(`invalid ${option} ${JSON.stringify(prefix)}: use literal subject tokens ending with a dot, e.g. 'app.'`);
  }
}
