/**
 * Leaky bucket as a queue (a meter): requests pour into a bucket of
 * `capacity` that drains `drainRate` per `drainIntervalMs`, and each one
 * proceeds when the water ahead of it has drained, so admitted requests go
 * out evenly spaced, never in a burst. A request that would overflow the
 * bucket is refused; an admitted one carries `delayMs`, the wait before it
 * may proceed (at most `(capacity - cost) / drainRate` intervals).
 *
 * Admission is the token bucket's (both are the GCRA), only the token bucket
 * lets a burst through at once where this one spaces it out. State and units
 * are the token bucket's too: `used` water, `1 / drainIntervalMs` request per
 * unit, `drainRate` units drained per millisecond.
 */
import * as check from '../options.js';
import type { BucketState } from './key-state.js';
import { decision, type RateLimitDecision } from './rate-limit-decision.js';
import { drained } from './token-bucket.js';

/**
 * Options of `leakyBucket()`.
 *
 * @example
 * ```ts
 * const options: LeakyBucketOptions = { capacity: 10, drainRate: 5 }; // 5/s, up to 10 waiting
 * ```
 */
export interface LeakyBucketOptions {
  /** Most requests the bucket holds, the one about to proceed included. An integer >= 1. */
  capacity: number;
  /** Requests let out every `drainIntervalMs`. An integer >= 1. */
  drainRate: number;
  /** Default 1000: `drainRate` is then per second. */
  drainIntervalMs?: number;
}

/**
 * A leaky-bucket rule, as plain data: JSON-safe, ready for configuration or a remote store.
 *
 * @example
 * ```ts
 * const rule: LeakyBucketRule = { algorithm: 'leaky-bucket', capacity: 10, drainRate: 5, drainIntervalMs: 1_000 };
 * ```
 */
export interface LeakyBucketRule {
  readonly algorithm: 'leaky-bucket';
  readonly capacity: number;
  readonly drainRate: number;
  readonly drainIntervalMs: number;
}

/**
 * A leaky-bucket rule: requests proceed evenly spaced at `drainRate` per
 * `drainIntervalMs`, up to `capacity` waiting; the limiter delays each one
 * until its turn.
 *
 * @example
 * ```ts
 * // a partner API that allows 5 calls per second and no bursts: queue up to 10
 * const partner = rateLimiter({ rule: leakyBucket({ capacity: 10, drainRate: 5 }) });
 * ```
 */
export function leakyBucket(options: LeakyBucketOptions): LeakyBucketRule {
  const p = 'leakyBucket';
  return Object.freeze({
    algorithm: 'leaky-bucket',
    capacity: check.integer(p, 'capacity', options.capacity, 1),
    drainRate: check.integer(p, 'drainRate', options.drainRate, 1),
    drainIntervalMs: check.duration(p, 'drainIntervalMs', options.drainIntervalMs ?? 1000, { allowZero: false }),
  });
}

/**
 * Pours `cost` into the bucket at time `now`, updating `state` in place. A
 * request that would have to wait longer than `maxDelayMs` is refused too.
 */
export function takeLeakyBucket(rule: LeakyBucketRule, state: BucketState, now: number, cost: number, maxDelayMs: number): RateLimitDecision {
  const unit = rule.drainIntervalMs; // units per request
  const rate = rule.drainRate; // units drained per ms
  const full = rule.capacity * unit;
  const used = drained(state, now, rate);
  const need = cost * unit;
  const wait = used / rate; // until the water ahead of this request has drained
  if (used + need <= full && wait <= maxDelayMs) {
    state.used = used + need;
    return decision(true, rule.capacity, Math.floor((full - state.used) / unit), state.used / rate, 0, wait);
  }
  state.used = used;
  const retryAfterMs = cost > rule.capacity ? Infinity : Math.max((used + need - full) / rate, wait - maxDelayMs);
  return decision(false, rule.capacity, Math.floor((full - used) / unit), used / rate, retryAfterMs, 0);
}
