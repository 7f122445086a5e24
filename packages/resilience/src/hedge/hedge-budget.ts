/**
 * The hedge budget: caps the extra load hedged requests may add, as a
 * fraction of recent requests. Same storage as `RetryBudget` (a ring of time
 * slices from `SlidingCounts`, nothing per request).
 */
import { systemClock, type Clock } from '../clock.js';
import * as check from '../options.js';
import { SlidingCounts } from '../sliding-counts.js';

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
  private readonly counts: SlidingCounts;
  private readonly floor: number;

  constructor(options: HedgeBudgetOptions = {}) {
    const p = 'hedgeBudget';
    this.ratio = check.ratio(p, 'ratio', options.ratio ?? 0.1, { min: 0, max: 1_000 });
    this.minHedgesPerSecond = check.ratio(p, 'minHedgesPerSecond', options.minHedgesPerSecond ?? 1, { min: 0, max: 1e9 });
    this.windowMs = check.duration(p, 'windowMs', options.windowMs ?? 10_000, { allowZero: false });
    const buckets = check.integer(p, 'buckets', options.buckets ?? 10, 1, 3_600);
    this.clock = options.clock ?? systemClock;
    this.counts = new SlidingCounts(this.clock, this.windowMs, buckets, 2);
    this.floor = (this.minHedgesPerSecond * this.windowMs) / 1000;
  }

  /** Counts one call (its primary attempt, not a hedge). */
  recordRequest(): void {
    this.counts.add(REQUESTS);
  }

  /** Takes one hedge from the budget; false when it is spent. */
  tryHedge(): boolean {
    if (this.counts.total(HEDGES) + 1 > this.floor + this.ratio * this.counts.total(REQUESTS)) return false;
    this.counts.add(HEDGES);
    return true;
  }

  /** The window's counts as of now. */
  snapshot(): HedgeBudgetSnapshot {
    const requests = this.counts.total(REQUESTS);
    const hedges = this.counts.total(HEDGES);
    return { requests, hedges, available: Math.max(0, Math.floor(this.floor + this.ratio * requests - hedges)) };
  }
}

const REQUESTS = 0;
const HEDGES = 1;
