/**
 * The hedge budget: caps the extra load hedged requests may add, as a
 * fraction of recent requests. Same storage as `RetryBudget` (a ring of time
 * slices from `SlidingCounts`, nothing per request).
 */
import { systemClock, type Clock } from '../clock.js';
import { RatioBudget } from '../ratio-budget.js';

/**
 * Options of a `HedgeBudget`.
 *
 * @example
 * ```ts
 * const options: HedgeBudgetOptions = { ratio: 0.05, minHedgesPerSecond: 2, windowMs: 30_000 };
 * const budget = new HedgeBudget(options);
 * ```
 */
export interface HedgeBudgetOptions {
  /** Hedges allowed per request, on average, over the window. Default 0.1. */
  ratio?: number;
  /** Hedges always allowed per second, whatever the traffic. Default 1. */
  minHedgesPerSecond?: number;
  /** Length of the sliding window. Default 10 s. */
  windowMs?: number;
  /** Slices of the window. Default 10. */
  buckets?: number;
  clock?: Clock;
}

/**
 * A budget's counts over its window, from `HedgeBudget.snapshot()`.
 *
 * @example
 * ```ts
 * const { requests, hedges, available } = budget.snapshot();
 * metrics.gauge('hedge_budget_available', available);
 * ```
 */
export interface HedgeBudgetSnapshot {
  requests: number;
  hedges: number;
  /** Hedges the budget would still grant now. */
  available: number;
}

/**
 * A hedge budget: hedges may add at most `ratio` of the recent requests as
 * extra load, plus a small floor of `minHedgesPerSecond` so a quiet client
 * still gets its tail cut. "The Tail at Scale" reports hedging at p95 costing
 * about 5 % extra load; the default cap of 10 % leaves room for that and
 * stops a latency spike (every call slow, so every call wants a hedge) from
 * doubling the load on a dependency that is slow because it is overloaded.
 *
 * It has the same shape as `RetryBudget` and the same storage (a ring of time
 * slices, nothing per request), but is a budget of its own rather than a
 * `RetryBudget` shared with retries, for two reasons:
 * - in a pipeline the retry policy sits outside the hedge, and both count
 *   requests: one shared budget would count every call once per retry
 *   attempt plus once more, and grant more than its ratio;
 * - hedges are spent on slowness while nothing fails. Sharing one allowance,
 *   a slow spell would use up the retries an outage needs next, and retries
 *   during an outage would take away the hedges that cut its tail.
 *
 * One budget may be shared by several hedge policies calling one dependency.
 *
 * @example
 * ```ts
 * const budget = new HedgeBudget({ ratio: 0.05, minHedgesPerSecond: 1 });
 * const search = hedge({ delay: { quantile: 0.95, initialMs: 50 }, budget });
 * ```
 */
export class HedgeBudget {
  readonly ratio: number;
  readonly minHedgesPerSecond: number;
  readonly windowMs: number;
  /** The clock the window turns on; a hedge policy using this budget must share it. */
  readonly clock: Clock;
  private readonly budget: RatioBudget;

  constructor(options: HedgeBudgetOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.budget = new RatioBudget({
      policy: 'hedgeBudget',
      ratio: options.ratio ?? 0.1,
      minPerSecond: options.minHedgesPerSecond ?? 1,
      minPerSecondOption: 'minHedgesPerSecond',
      windowMs: options.windowMs ?? 10_000,
      buckets: options.buckets ?? 10,
      clock: this.clock,
    });
    this.ratio = this.budget.ratio;
    this.minHedgesPerSecond = this.budget.minPerSecond;
    this.windowMs = this.budget.windowMs;
  }

  /** Counts one call (its primary attempt, not a hedge). */
  recordRequest(): void {
    this.budget.recordRequest();
  }

  /** Takes one hedge from the budget; false when it is spent. */
  tryHedge(): boolean {
    return this.budget.tryTake();
  }

  /** The window's counts as of now. */
  snapshot(): HedgeBudgetSnapshot {
    const { requests, extra, available } = this.budget.totals();
    return { requests, hedges: extra, available };
  }
}
