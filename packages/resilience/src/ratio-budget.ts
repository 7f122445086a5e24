/**
 * The arithmetic shared by the retry and hedge budgets: extra attempts may
 * add at most `ratio` of the requests of a sliding window, plus a floor of
 * `minPerSecond` so a quiet client still gets some. Nothing is stored per
 * request (a ring of time slices).
 */
import type { Clock } from './clock.js';
import * as check from './options.js';
import { SlidingCounts } from './sliding-counts.js';

export interface RatioBudgetSettings {
  policy: string;
  ratio: number;
  minPerSecond: number;
  minPerSecondOption: string;
  windowMs: number;
  buckets: number;
  clock: Clock;
}

const REQUESTS = 0;
const EXTRA = 1;

export class RatioBudget {
  readonly ratio: number;
  readonly minPerSecond: number;
  readonly windowMs: number;
  private readonly counts: SlidingCounts;
  private readonly floor: number;

  constructor(s: RatioBudgetSettings) {
    this.ratio = check.ratio(s.policy, 'ratio', s.ratio, { min: 0, max: 1_000 });
    this.minPerSecond = check.ratio(s.policy, s.minPerSecondOption, s.minPerSecond, { min: 0, max: 1e9 });
    this.windowMs = check.duration(s.policy, 'windowMs', s.windowMs, { allowZero: false });
    const buckets = check.integer(s.policy, 'buckets', s.buckets, 1, 3_600);
    this.counts = new SlidingCounts(s.clock, this.windowMs, buckets, 2);
    this.floor = (this.minPerSecond * this.windowMs) / 1000;
  }

  /** Counts one original request. */
  recordRequest(): void {
    this.counts.add(REQUESTS);
  }

  /** Takes one extra attempt from the budget; false when it is spent. */
  tryTake(): boolean {
    if (this.counts.total(EXTRA) + 1 > this.floor + this.ratio * this.counts.total(REQUESTS)) return false;
    this.counts.add(EXTRA);
    return true;
  }

  /** Requests and extra attempts in the window, and how many more extra attempts it grants now. */
  totals(): { requests: number; extra: number; available: number } {
    const requests = this.counts.total(REQUESTS);
    const extra = this.counts.total(EXTRA);
    return { requests, extra, available: Math.max(0, Math.floor(this.floor + this.ratio * requests - extra)) };
  }
}
