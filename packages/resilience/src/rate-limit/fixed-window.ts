/**
 * Fixed window: at most `limit` per window of `windowMs`, windows aligned to
 * multiples of `windowMs` on the store's clock. The simplest and cheapest
 * rule, but a client may spend a whole window's limit at the end of one window
 * and again at the start of the next: up to twice the limit in a short span.
 * The sliding window removes most of that edge burst.
 *
 * State per key: the current window's index and count.
 */
import * as check from '../options.js';
import type { WindowState } from './key-state.js';
import { decision, type RateLimitDecision } from './rate-limit-decision.js';

/**
 * Options of `fixedWindow()`.
 *
 * @example
 * ```ts
 * const options: FixedWindowOptions = { limit: 100, windowMs: 60_000 };
 * ```
 */
export interface FixedWindowOptions {
  /** Most requests (sum of costs) per window. An integer >= 1. */
  limit: number;
  /** Length of a window. */
  windowMs: number;
}

/**
 * A fixed-window rule, as plain data: JSON-safe, ready for configuration or a remote store.
 *
 * @example
 * ```ts
 * const rule: FixedWindowRule = { algorithm: 'fixed-window', limit: 100, windowMs: 60_000 };
 * ```
 */
export interface FixedWindowRule {
  readonly algorithm: 'fixed-window';
  readonly limit: number;
  readonly windowMs: number;
}

/**
 * A fixed-window rule: at most `limit` per window of `windowMs`.
 *
 * @example
 * ```ts
 * const exports = rateLimiter({ rule: fixedWindow({ limit: 100, windowMs: 3_600_000 }) });
 * ```
 */
export function fixedWindow(options: FixedWindowOptions): FixedWindowRule {
  const p = 'fixedWindow';
  return Object.freeze({
    algorithm: 'fixed-window',
    limit: check.integer(p, 'limit', options.limit, 1),
    windowMs: check.duration(p, 'windowMs', options.windowMs, { allowZero: false }),
  });
}

/** Counts `cost` in the window containing `now`, updating `state` in place. */
export function takeFixedWindow(rule: FixedWindowRule, state: WindowState, now: number, cost: number): RateLimitDecision {
  const index = Math.max(state.window, Math.floor(now / rule.windowMs));
  if (index !== state.window) {
    state.window = index;
    state.current = 0;
  }
  const untilNext = (index + 1) * rule.windowMs - now;
  const limit = rule.limit;
  if (state.current + cost <= limit) {
    state.current += cost;
    return decision(true, limit, limit - state.current, state.current > 0 ? untilNext : 0, 0, 0);
  }
  return decision(false, limit, limit - state.current, state.current > 0 ? untilNext : 0, cost > limit ? Infinity : untilNext, 0);
}
