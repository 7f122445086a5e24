/**
 * What a rate limiter answers for one request: whether it may proceed, and the
 * figures an HTTP layer needs for `RateLimit-*` and `Retry-After` headers.
 * Times are whole milliseconds, rounded up, so waiting `retryAfterMs` (or
 * `delayMs`) is always long enough.
 */

/**
 * One rate-limit decision.
 *
 * @example
 * ```ts
 * const d = await limiter.take(`ip:${req.ip}`);
 * reply.header('RateLimit-Limit', d.limit).header('RateLimit-Remaining', d.remaining).header('RateLimit-Reset', Math.ceil(d.resetMs / 1000));
 * if (!d.allowed) return reply.code(429).header('Retry-After', Math.ceil(d.retryAfterMs / 1000)).send();
 * ```
 */
export interface RateLimitDecision {
  /** True when the request may proceed (after `delayMs`). */
  readonly allowed: boolean;
  /** The rule's limit: a bucket's capacity or a window's limit. */
  readonly limit: number;
  /** Requests of cost 1 that would still be admitted now, after this one. */
  readonly remaining: number;
  /** Milliseconds until the limit is fully restored (the bucket full, or the window reset); 0 when it already is. */
  readonly resetMs: number;
  /** When refused: milliseconds until the same request would be admitted, `Infinity` if it never can be (cost above the limit). 0 when allowed. */
  readonly retryAfterMs: number;
  /** Milliseconds the caller must wait before proceeding. Only a leaky bucket asks for a wait; 0 otherwise. */
  readonly delayMs: number;
}

/** Builds a decision (always with the same property order, so every decision shares one shape), rounding times up to whole ms. */
export function decision(allowed: boolean, limit: number, remaining: number, resetMs: number, retryAfterMs: number, delayMs: number): RateLimitDecision {
  return { allowed, limit, remaining, resetMs: ceilMs(resetMs), retryAfterMs: ceilMs(retryAfterMs), delayMs: ceilMs(delayMs) };
}

function ceilMs(ms: number): number {
  return ms > 0 ? Math.ceil(ms) : 0;
}
