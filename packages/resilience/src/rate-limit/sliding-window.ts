/**
 * Sliding-window counter, the two-window approximation Cloudflare describes:
 * keep the count of the current fixed window and of the previous one, and
 * estimate the last `windowMs` as
 *
 *   previous × (windowMs − elapsed) / windowMs + current
 *
 * where `elapsed` is the time since the current window began: the previous
 * window's requests are assumed spread evenly, and slide out as time goes on.
 * Two counters per key, and no edge burst of twice the limit.
 *
 * The comparison is made multiplied through by `windowMs`, so with
 * whole-millisecond clocks and windows it is exact integer arithmetic.
 */
import * as check from '../options.js';
import type { WindowState } from './key-state.js';
import { decision, type RateLimitDecision } from './rate-limit-decision.js';

/**
 * Options of `slidingWindow()`.
 *
 * @example
 * ```ts
 * const options: SlidingWindowOptions = { limit: 100, windowMs: 60_000 };
 * ```
 */
export interface SlidingWindowOptions {
  /** Most requests (sum of costs) in any `windowMs`, as estimated. An integer >= 1. */
  limit: number;
  /** Length of the window. */
  windowMs: number;
}

/**
 * A sliding-window-counter rule, as plain data: JSON-safe, ready for configuration or a remote store.
 *
 * @example
 * ```ts
 * const rule: SlidingWindowRule = { algorithm: 'sliding-window', limit: 100, windowMs: 60_000 };
 * ```
 */
export interface SlidingWindowRule {
  readonly algorithm: 'sliding-window';
  readonly limit: number;
  readonly windowMs: number;
}

/**
 * A sliding-window-counter rule: at most `limit` in any `windowMs`, estimated
 * from two fixed windows.
 *
 * @example
 * ```ts
 * const login = rateLimiter({ rule: slidingWindow({ limit: 5, windowMs: 60_000 }), key: () => `login:${user}` });
 * ```
 */
export function slidingWindow(options: SlidingWindowOptions): SlidingWindowRule {
  const p = 'slidingWindow';
  return Object.freeze({
    algorithm: 'sliding-window',
    limit: check.integer(p, 'limit', options.limit, 1),
    windowMs: check.duration(p, 'windowMs', options.windowMs, { allowZero: false }),
  });
}

/** Counts `cost` at time `now` if the estimate allows it, updating `state` in place. */
export function takeSlidingWindow(rule: SlidingWindowRule, state: WindowState, now: number, cost: number): RateLimitDecision {
  const w = rule.windowMs;
  const limit = rule.limit;
  const index = Math.max(state.window, Math.floor(now / w));
  if (index !== state.window) {
    state.previous = index === state.window + 1 ? state.current : 0;
    state.current = 0;
    state.window = index;
  }
  const elapsed = Math.min(w, Math.max(0, now - index * w));
  // Room left in the window, times w: limit·w − previous·(w − elapsed) − current·w.
  const room = limit * w - state.previous * (w - elapsed) - state.current * w;
  if (cost * w <= room) {
    state.current += cost;
    return decision(true, limit, Math.floor((room - cost * w) / w), resetMs(state, w, elapsed), 0, 0);
  }
  const retryAfterMs = retryAfter(state.previous, state.current, limit, cost, w, elapsed);
  return decision(false, limit, Math.max(0, Math.floor(room / w)), resetMs(state, w, elapsed), retryAfterMs, 0);
}

/** Until both windows' counts have slid out. */
function resetMs(state: WindowState, w: number, elapsed: number): number {
  if (state.current > 0) return 2 * w - elapsed;
  return state.previous > 0 ? w - elapsed : 0;
}

/** Earliest wait after which `cost` fits, if nothing else is counted meanwhile. */
function retryAfter(previous: number, current: number, limit: number, cost: number, w: number, elapsed: number): number {
  if (cost > limit) return Infinity;
  // Later in this window: previous·(w − e) ≤ (limit − current − cost)·w.
  const spare = limit - current - cost;
  if (spare > 0 && previous > 0) return w - (spare * w) / previous - elapsed;
  // In the next window, where this window's count is the previous one: current·(w − e) ≤ (limit − cost)·w.
  const into = current > 0 ? Math.max(0, w - ((limit - cost) * w) / current) : 0;
  return w - elapsed + into;
}
