/**
 * Dead letters on NATS: the raw message published to
 * `<deadLetterSubjectPrefix><group>.<topic>`, captured by the `<prefix>DLQ`
 * stream, with the reason in `Bulwark-*` headers.
 */
import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { headers, nanos, type MsgHdrs } from '@nats-io/transport-node';
import type { DeadLetterReason, Delivery } from '../transport.js';
import { NatsDelivery } from './nats-delivery.js';

/**
 * Header names of a dead letter, for tools that read the DLQ stream directly.
 *
 * ```ts
 * const error = msg.headers?.get(DeadLetterHeaders.error);
 * ```
 */
export const DeadLetterHeaders = {
  error: 'Bulwark-Error',
  deliveries: 'Bulwark-Deliveries',
  consumerGroup: 'Bulwark-Consumer-Group',
  topic: 'Bulwark-Topic',
  deadLetteredAt: 'Bulwark-Dead-Lettered-At',
  stream: 'Bulwark-Source-Stream',
  streamSequence: 'Bulwark-Source-Sequence',
} as const;

/**
 * A message set aside by `deadLetter`, as `readNatsDeadLetters` returns it.
 *
 * ```ts
 * const [letter] = await readNatsDeadLetters(transport, 'orders.confirmed', 'billing');
 * console.log(letter?.error, letter?.deliveries);
 * ```
 */
export interface NatsDeadLetter {
  /** The message as it was delivered. */
  raw: string;
  /** Why it was set aside. */
  error: string;
  /** Deliveries it had when it was set aside. */
  deliveries: number;
  consumerGroup: string;
  topic: string;
  /** ISO-8601 time it was set aside. */
  deadLetteredAt: string;
  /** Its sequence in the dead-letter stream (for replay or removal). */
  sequence: number;
}

const MAX_ERROR_CHARS = 8_192;
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/**
 * Header values cannot hold CR/LF and lose outer whitespace: percent-encode
 * `%`, control characters and outer whitespace, nothing else, so the value
 * stays readable in `nats` tooling.
 */
export function encodeHeaderText(text: string): string {
  const escape = (c: string): string => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `%${code.toString(16).toUpperCase().padStart(2, '0')}` : `%u${code.toString(16).toUpperCase().padStart(4, '0')}`;
  };
  // eslint-disable-next-line no-control-regex
  const inner = text.replace(/[%\u0000-\u001f\u007f]/g, escape);
  return inner.replace(/^\s|\s$/g, escape);
}

export function decodeHeaderText(text: string): string {
  return text.replace(/%u([0-9A-F]{4})|%([0-9A-F]{2})/g, (_, wide: string | undefined, byte: string | undefined) => String.fromCharCode(Number.parseInt(wide ?? byte ?? '', 16)));
}

export interface DeadLetterTarget {
  subject: string;
  topic: string;
  group: string;
}

export async function publishDeadLetter(js: JetStreamClient, target: DeadLetterTarget, delivery: Delivery, reason: DeadLetterReason, timeoutMs: number): Promise<void> {
  const h: MsgHdrs = headers();
  h.set(DeadLetterHeaders.error, encodeHeaderText(reason.error.slice(0, MAX_ERROR_CHARS)));
  h.set(DeadLetterHeaders.deliveries, String(reason.deliveries));
  h.set(DeadLetterHeaders.consumerGroup, encodeHeaderText(reason.consumerGroup || target.group));
  h.set(DeadLetterHeaders.topic, target.topic);
  h.set(DeadLetterHeaders.deadLetteredAt, new Date().toISOString());
  let msgID: string | undefined;
  let data: Uint8Array = encoder.encode(delivery.raw);
  if (delivery instanceof NatsDelivery) {
    data = delivery.data;
    h.set(DeadLetterHeaders.stream, delivery.stream);
    h.set(DeadLetterHeaders.streamSequence, String(delivery.streamSequence));
    // Setting the same delivery aside twice (a retried call) stores it once.
    msgID = `${target.subject}:${delivery.stream}:${delivery.streamSequence}:${delivery.deliveryCount}`;
  }
  await js.publish(target.subject, data, { headers: h, timeout: timeoutMs, ...(msgID === undefined ? {} : { msgID }) });
}

function toDeadLetter(msg: JsMsg): NatsDeadLetter {
  const get = (name: string): string => decodeHeaderText(msg.headers?.get(name) ?? '');
  return {
    raw: decoder.decode(msg.data),
    error: get(DeadLetterHeaders.error),
    deliveries: Number.parseInt(get(DeadLetterHeaders.deliveries), 10) || 0,
    consumerGroup: get(DeadLetterHeaders.consumerGroup),
    topic: get(DeadLetterHeaders.topic),
    deadLetteredAt: get(DeadLetterHeaders.deadLetteredAt),
    sequence: msg.seq,
  };
}

/** Reads up to `limit` dead letters on `subject` of `stream`, oldest first, through a short-lived consumer. */
export async function fetchDeadLetters(jsm: JetStreamManager, js: JetStreamClient, stream: string, subject: string, limit: number): Promise<NatsDeadLetter[]> {
  const info = await jsm.consumers.add(stream, {
    filter_subject: subject,
    ack_policy: AckPolicy.None,
    deliver_policy: DeliverPolicy.All,
    inactive_threshold: nanos(60_000),
    mem_storage: true,
  });
  try {
    const wanted = Math.min(info.num_pending, limit);
    const letters: NatsDeadLetter[] = [];
    const consumer = await js.consumers.get(stream, info.name);
    while (letters.length < wanted) {
      const before = letters.length;
      const batch = await consumer.fetch({ max_messages: Math.min(wanted - letters.length, 256), expires: 2_000 });
      for await (const msg of batch) letters.push(toDeadLetter(msg));
      if (letters.length === before) break; // nothing more came: do not spin
    }
    return letters;
  } finally {
    await jsm.consumers.delete(stream, info.name).catch(() => undefined);
  }
}
