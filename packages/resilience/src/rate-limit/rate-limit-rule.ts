/**
 * A rule is plain data (JSON-safe: an algorithm name and numbers), so it can
 * live in configuration, travel to another process, and be handed to a store
 * that evaluates it elsewhere, as a Redis script would.
 */
import { InvalidOptionError } from '../errors.js';
import { fixedWindow, type FixedWindowOptions, type FixedWindowRule } from './fixed-window.js';
import { leakyBucket, type LeakyBucketOptions, type LeakyBucketRule } from './leaky-bucket.js';
import { slidingWindow, type SlidingWindowOptions, type SlidingWindowRule } from './sliding-window.js';
import { tokenBucket, type TokenBucketOptions, type TokenBucketRule } from './token-bucket.js';

/**
 * Any validated rule. Switch on `algorithm` to read its fields.
 *
 * @example
 * ```ts
 * const perSecond = (r: RateLimitRule) => (r.algorithm === 'token-bucket' ? (r.refillRate * 1000) / r.refillIntervalMs : undefined);
 * ```
 */
export type RateLimitRule = TokenBucketRule | SlidingWindowRule | FixedWindowRule | LeakyBucketRule;

/**
 * The algorithms a rule may name.
 *
 * @example
 * ```ts
 * const algorithm: RateLimitAlgorithm = 'sliding-window';
 * ```
 */
export type RateLimitAlgorithm = RateLimitRule['algorithm'];

/**
 * A rule as written by hand or read from configuration; `algorithm` defaults to `"token-bucket"`.
 *
 * @example
 * ```ts
 * const input: RateLimitRuleInput = { capacity: 20, refillRate: 10 }; // a token bucket
 * ```
 */
export type RateLimitRuleInput =
  | (TokenBucketOptions & { algorithm?: 'token-bucket' })
  | (SlidingWindowOptions & { algorithm: 'sliding-window' })
  | (FixedWindowOptions & { algorithm: 'fixed-window' })
  | (LeakyBucketOptions & { algorithm: 'leaky-bucket' });

const algorithms: readonly RateLimitAlgorithm[] = ['token-bucket', 'sliding-window', 'fixed-window', 'leaky-bucket'];

/**
 * Validates a rule given as plain data and returns it frozen, defaults filled
 * in. Throws `InvalidOptionError` naming the offending field.
 *
 * @example
 * ```ts
 * const rule = rateLimitRule(JSON.parse('{"algorithm":"sliding-window","limit":100,"windowMs":60000}'));
 * ```
 */
export function rateLimitRule(input: RateLimitRuleInput): RateLimitRule {
  if (typeof input !== 'object' || input === null) throw new InvalidOptionError('rateLimiter', 'rule', input, 'a rate-limit rule object');
  switch (input.algorithm) {
    case undefined:
    case 'token-bucket':
      return tokenBucket(input);
    case 'sliding-window':
      return slidingWindow(input);
    case 'fixed-window':
      return fixedWindow(input);
    case 'leaky-bucket':
      return leakyBucket(input);
    default: {
      const algorithm: unknown = (input as { algorithm: unknown }).algorithm;
      throw new InvalidOptionError('rateLimiter', 'rule.algorithm', algorithm, `one of ${algorithms.map((a) => JSON.stringify(a)).join(', ')}`);
    }
  }
}

/** The rule's limit: a bucket's capacity or a window's limit. */
export function limitOf(rule: RateLimitRule): number {
  return rule.algorithm === 'token-bucket' || rule.algorithm === 'leaky-bucket' ? rule.capacity : rule.limit;
}
