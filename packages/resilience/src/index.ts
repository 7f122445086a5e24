/**
 * `@bulwark/resilience`: call policies with production semantics and a fast
 * path measured in nanoseconds. No runtime dependencies.
 *
 * @example
 * ```ts
 * import { pipeline, deadline, retry, circuitBreaker, bulkhead, timeout } from '@bulwark/resilience';
 *
 * const payments = pipeline({
 *   deadline: deadline(2_000),
 *   retry: retry({ maxAttempts: 3 }),
 *   breaker: circuitBreaker({ failureRateThreshold: 50 }),
 *   bulkhead: bulkhead({ maxConcurrent: 10, maxQueue: 20 }),
 *   timeout: timeout(300),
 * });
 * const receipt = await payments.execute(({ signal }) => charge(order, { signal }), { idempotencyKey: order.id, idempotent: false });
 * ```
 */
export * from './errors.js';
export { isTransient, isDependencyFailure, retryAfterMsOf, parseRetryAfter, statusOf } from './classify.js';
export { systemClock, type Clock, type Timer } from './clock.js';
export { seededRandom } from './seeded-random.js';
export { type CallContext, type ExecuteOptions } from './scope.js';
export { type Operation, type Policy } from './policy.js';
export { channelName, type Listener, type EventMeta, type PolicyKind, type PolicyEvents } from './events.js';
export { timeout, deadline, TimeoutPolicy, type TimeoutOptions, type TimeoutEvents } from './timeout.js';
export { DEADLINE_HEADER, remainingBudgetMs, currentDeadline, outgoingDeadlineHeader, incomingBudgetMs, deadlineIn, type IncomingBudgetOptions } from './deadline-header.js';
export { retry, RetryPolicy, type RetryOptions, type RetryEvents, type GiveUpReason } from './retry/retry-policy.js';
export { Backoff, type BackoffOptions, type Jitter } from './retry/backoff.js';
export { RetryBudget, type RetryBudgetOptions, type RetryBudgetSnapshot } from './retry/retry-budget.js';
export {
  circuitBreaker,
  CircuitBreakerPolicy,
  type CircuitBreakerOptions,
  type CircuitBreakerEvents,
  type CircuitBreakerSnapshot,
  type CircuitState,
  type BreakerWindowOptions,
} from './breaker/circuit-breaker.js';
export { bulkhead, BulkheadPolicy, type BulkheadOptions, type BulkheadEvents, type BulkheadStats } from './bulkhead.js';
export { fallback, FallbackPolicy, type FallbackOptions, type FallbackEvents, type FallbackHandler } from './fallback.js';
export { pipeline, Pipeline, defaultOrder, type PipelineRoles } from './pipeline.js';
export {
  rateLimiter,
  RateLimiterPolicy,
  MemoryRateLimitStore,
  rateLimitRule,
  tokenBucket,
  slidingWindow,
  fixedWindow,
  leakyBucket,
  type RateLimiterOptions,
  type RateLimiterEvents,
  type RateLimitStore,
  type RateLimitDecision,
  type MemoryRateLimitStoreOptions,
  type RateLimitRule,
  type RateLimitRuleInput,
  type RateLimitAlgorithm,
  type TokenBucketOptions,
  type TokenBucketRule,
  type SlidingWindowOptions,
  type SlidingWindowRule,
  type FixedWindowOptions,
  type FixedWindowRule,
  type LeakyBucketOptions,
  type LeakyBucketRule,
} from './rate-limit/index.js';
export { hedge, HedgePolicy, HedgeBudget, LatencyQuantile, type HedgeOptions, type HedgeEvents, type QuantileDelay, type HedgeBudgetOptions, type HedgeBudgetSnapshot, type LatencyQuantileOptions } from './hedge/index.js';
