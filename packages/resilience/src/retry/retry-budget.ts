/** Retry budgets: how much extra load retries may add. */
import { systemClock, type Clock } from '../clock.js';
import * as check from '../options.js';
import { SlidingCounts } from '../sliding-counts.js';

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
  private readonly counts: SlidingCounts;
  private readonly floor: number;

  constructor(options: RetryBudgetOptions = {}) {
    this.ratio = check.ratio('retryBudget', 'ratio', options.ratio ?? 0.1, { min: 0, max: 1_000 });
    this.minRetriesPerSecond = check.ratio('retryBudget', 'minRetriesPerSecond', options.minRetriesPerSecond ?? 10, { min: 0, max: 1e9 });
    this.windowMs = check.duration('retryBudget', 'windowMs', options.windowMs ?? 10_000, { allowZero: false });
    const buckets = check.integer('retryBudget', 'buckets', options.buckets ?? 10, 1, 3_600);
    this.counts = new SlidingCounts(options.clock ?? systemClock, this.windowMs, buckets, 2);
    this.floor = (this.minRetriesPerSecond * this.windowMs) / 1000;
  }

  /** Counts one original request (not a retry). */
  recordRequest(): void {
    this.counts.add(REQUESTS);
  }

  /** Takes one retry from the budget; false when it is spent. */
  tryRetry(): boolean {
    if (this.counts.total(RETRIES) + 1 > this.floor + this.ratio * this.counts.total(REQUESTS)) return false;
    this.counts.add(RETRIES);
    return true;
  }

  snapshot(): RetryBudgetSnapshot {
    const requests = this.counts.total(REQUESTS);
    const retries = this.counts.total(RETRIES);
    return { requests, retries, available: Math.max(0, Math.floor(this.floor + this.ratio * requests - retries)) };
  }
}

const REQUESTS = 0;
const RETRIES = 1;
