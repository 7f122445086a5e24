/**
 * The envelope every message travels in, from the outbox through any
 * transport to a consumer. Plain JSON: the same bytes on every broker.
 */
import { randomFillSync } from 'node:crypto';

export interface Envelope<P = unknown> {
  /** UUIDv7: unique, and sortable by creation time. Brokers deduplicate on it. */
  readonly id: string;
  /** Message type, e.g. `OrderConfirmed`. */
  readonly type: string;
  /** Schema version of `payload` for this type, from 1. */
  readonly version: number;
  /** Ordering key (usually the aggregate id): messages with one key are delivered in order. */
  readonly key: string;
  /** ISO-8601 time the fact happened (the business transaction's time). */
  readonly occurredAt: string;
  /** Propagated context: `traceparent`, `correlation-id`, ... */
  readonly headers: Readonly<Record<string, string>>;
  readonly payload: P;
}

const random = Buffer.alloc(10);
let lastMs = 0;
let sequence = 0;

/**
 * A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then a 12-bit counter
 * that keeps ids made in the same millisecond in order, then 62 random bits.
 */
export function uuidv7(now: number = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    randomFillSync(random);
    sequence = random.readUInt16BE(0) & 0x07ff; // start low, leave room to count up
  } else {
    now = lastMs;
    sequence++;
    if (sequence > 0x0fff) {
      // 4096 ids in one millisecond: borrow the next millisecond.
      lastMs = now = lastMs + 1;
      randomFillSync(random);
      sequence = 0;
    } else randomFillSync(random, 2, 8);
  }
  const hex = now.toString(16).padStart(12, '0');
  const seq = (0x7000 | sequence).toString(16);
  const variant = ((random[2]! & 0x3f) | 0x80).toString(16).padStart(2, '0');
  const rest = random.subarray(3, 10).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${seq}-${variant}${rest.slice(0, 2)}-${rest.slice(2, 14)}`;
}

/** Reads the creation time (Unix ms) back out of a UUIDv7. */
export function uuidv7Time(id: string): number {
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
