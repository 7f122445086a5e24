/**
 * Rate limiting: rules as plain data, stores that evaluate them, and the
 * `rateLimiter` policy.
 *
 * @example
 * ```ts
 * import { rateLimiter, tokenBucket } from '@bulwark/resilience';
 * const limiter = rateLimiter({ rule: tokenBucket({ capacity: 20, refillRate: 10 }) });
 * ```
 */
export { tokenBucket, type TokenBucketOptions, type TokenBucketRule } from './token-bucket.js';
export { slidingWindow, type SlidingWindowOptions, type SlidingWindowRule } from './sliding-window.js';
export { fixedWindow, type FixedWindowOptions, type FixedWindowRule } from './fixed-window.js';
export { leakyBucket, type LeakyBucketOptions, type LeakyBucketRule } from './leaky-bucket.js';
export { rateLimitRule, type RateLimitRule, type RateLimitRuleInput, type RateLimitAlgorithm } from './rate-limit-rule.js';
export { type RateLimitDecision } from './rate-limit-decision.js';
export { type RateLimitStore } from './rate-limit-store.js';
export { MemoryRateLimitStore, type MemoryRateLimitStoreOptions } from './memory-store.js';
export { rateLimiter, RateLimiterPolicy, type RateLimiterOptions, type RateLimiterEvents } from './rate-limiter.js';
