/** Retry budgets: how much extra load retries may add. */
import { systemClock, type Clock } from '../clock.js';
import { RatioBudget } from '../ratio-budget.js';

export interface RetryBudgetOptions {
  /** Retries allowed per request, on average, over the window. Default 0.1. */
  ratio?: number;
  /** Retries always allowed per second, whatever the traffic. Default 10. */
  minRetriesPerSecond?: number;
  /** Length of the sliding window. Default 10 s. */
  windowMs?: number;
  /** Slices of the window. Default 10. */
  buckets?: number;
  clock?: Clock;
}

export interface RetryBudgetSnapshot {
  requests: number;
  retries: number;
  /** Retries the budget would still grant now. */
  available: number;
}

/**
 * A retry budget: retries may add at most `ratio` of the recent requests, plus
 * a small floor of `minRetriesPerSecond` so a quiet client can still retry.
 * It is what keeps retries from multiplying an outage (Finagle's RetryBudget,
 * gRPC's retry throttling). One budget is shared by every call to one
 * dependency, usually across several retry policies.
 *
 * Counts live in a ring of `buckets` time slices covering `windowMs`; nothing
 * is stored per request.
 *
 * @example
 * ```ts
 * const budget = new RetryBudget({ ratio: 0.1, minRetriesPerSecond: 5 });
 * const call = retry({ maxAttempts: 3, budget });
 * ```
 */
export class RetryBudget {
  readonly ratio: number;
  readonly minRetriesPerSecond: number;
  readonly windowMs: number;
  private readonly budget: RatioBudget;

  constructor(options: RetryBudgetOptions = {}) {
    this.budget = new RatioBudget({
      policy: 'retryBudget',
      ratio: options.ratio ?? 0.1,
      minPerSecond: options.minRetriesPerSecond ?? 10,
      minPerSecondOption: 'minRetriesPerSecond',
      windowMs: options.windowMs ?? 10_000,
      buckets: options.buckets ?? 10,
      clock: options.clock ?? systemClock,
    });
    this.ratio = this.budget.ratio;
    this.minRetriesPerSecond = this.budget.minPerSecond;
    this.windowMs = this.budget.windowMs;
  }

  /** Counts one original request (not a retry). */
  recordRequest(): void {
    this.budget.recordRequest();
  }

  /** Takes one retry from the budget; false when it is spent. */
  tryRetry(): boolean {
    return this.budget.tryTake();
  }

  snapshot(): RetryBudgetSnapshot {
    const { requests, extra, available } = this.budget.totals();
    return { requests, retries: extra, available };
  }
}
