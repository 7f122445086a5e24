/**
 * Token bucket: a bucket holds up to `capacity` tokens and gains `refillRate`
 * tokens every `refillIntervalMs`, continuously. A request takes `cost`
 * tokens, or is refused when fewer are left. A full bucket lets a burst of
 * `capacity` through at once; the sustained rate is `refillRate` per interval.
 *
 * State per key is two numbers: `used` (tokens missing from a full bucket) and
 * `at` (when `used` was last brought up to date). They are kept in units of
 * `1 / refillIntervalMs` token, so the bucket refills exactly `refillRate`
 * units per millisecond and, on whole-millisecond clocks, every figure is an
 * integer: no drift from adding 0.1 + 0.2 tokens. This is the GCRA of
 * Redis-cell in another form, and ports to one Lua script as it stands.
 */
import * as check from '../options.js';
import type { BucketState } from './key-state.js';
import { decision, type RateLimitDecision } from './rate-limit-decision.js';

/**
 * Options of `tokenBucket()`.
 *
 * @example
 * ```ts
 * const options: TokenBucketOptions = { capacity: 20, refillRate: 10 }; // 10/s, bursts of 20
 * ```
 */
export interface TokenBucketOptions {
  /** Most tokens the bucket holds: the largest burst. An integer >= 1. */
  capacity: number;
  /** Tokens added every `refillIntervalMs`. An integer >= 1. */
  refillRate: number;
  /** Default 1000: `refillRate` is then per second. */
  refillIntervalMs?: number;
}

/**
 * A token-bucket rule, as plain data: JSON-safe, ready for configuration or a remote store.
 *
 * @example
 * ```ts
 * const rule: TokenBucketRule = { algorithm: 'token-bucket', capacity: 20, refillRate: 10, refillIntervalMs: 1_000 };
 * ```
 */
export interface TokenBucketRule {
  readonly algorithm: 'token-bucket';
  readonly capacity: number;
  readonly refillRate: number;
  readonly refillIntervalMs: number;
}

/**
 * A token-bucket rule (the default algorithm): bursts up to `capacity`, then
 * `refillRate` per `refillIntervalMs`.
 *
 * @example
 * ```ts
 * // 10 requests per second on average, bursts of up to 20
 * const search = rateLimiter({ rule: tokenBucket({ capacity: 20, refillRate: 10 }) });
 * ```
 */
export function tokenBucket(options: TokenBucketOptions): TokenBucketRule {
  const p = 'tokenBucket';
  return Object.freeze({
    algorithm: 'token-bucket',
    capacity: check.integer(p, 'capacity', options.capacity, 1),
    refillRate: check.integer(p, 'refillRate', options.refillRate, 1),
    refillIntervalMs: check.duration(p, 'refillIntervalMs', options.refillIntervalMs ?? 1000, { allowZero: false }),
  });
}

/** Takes `cost` tokens at time `now`, updating `state` in place. */
export function takeTokenBucket(rule: TokenBucketRule, state: BucketState, now: number, cost: number): RateLimitDecision {
  const unit = rule.refillIntervalMs; // units per token
  const rate = rule.refillRate; // units refilled per ms
  const full = rule.capacity * unit;
  const used = drained(state, now, rate);
  const need = cost * unit;
  if (used + need <= full) {
    state.used = used + need;
    return decision(true, rule.capacity, Math.floor((full - state.used) / unit), state.used / rate, 0, 0);
  }
  state.used = used;
  const retryAfterMs = cost > rule.capacity ? Infinity : (used + need - full) / rate;
  return decision(false, rule.capacity, Math.floor((full - used) / unit), used / rate, retryAfterMs, 0);
}

/** `state.used` brought forward to `now` at `rate` units per ms (a clock that steps back drains nothing). */
export function drained(state: BucketState, now: number, rate: number): number {
  if (now <= state.at) return state.used;
  const used = state.used - (now - state.at) * rate;
  state.at = now;
  return used > 0 ? used : 0;
}
