/**
 * The windows a circuit breaker judges the dependency by: the last N calls
 * (count-based) or the calls of the last N milliseconds (time-based).
 */
import type { Clock } from '../clock.js';
import { SlidingCounts } from '../sliding-counts.js';

export interface OutcomeCounts {
  calls: number;
  failures: number;
  slow: number;
}

export interface OutcomeWindow extends Readonly<OutcomeCounts> {
  record(failure: boolean, slow: boolean): void;
  counts(): OutcomeCounts;
  clear(): void;
}

const FAILURE = 1;
const SLOW = 2;

/** The last `size` outcomes, in a ring of bytes. */
export class CountWindow implements OutcomeWindow {
  private readonly ring: Uint8Array;
  private next = 0;
  calls = 0;
  failures = 0;
  slow = 0;

  constructor(readonly size: number) {
    this.ring = new Uint8Array(size);
  }

  record(failure: boolean, slow: boolean): void {
    const outcome = (failure ? FAILURE : 0) | (slow ? SLOW : 0);
    if (this.calls === this.size) {
      const evicted = this.ring[this.next]!;
      if ((evicted & FAILURE) !== 0) this.failures--;
      if ((evicted & SLOW) !== 0) this.slow--;
    } else this.calls++;
    this.ring[this.next] = outcome;
    if (failure) this.failures++;
    if (slow) this.slow++;
    this.next = this.next + 1 === this.size ? 0 : this.next + 1;
  }

  counts(): OutcomeCounts {
    return { calls: this.calls, failures: this.failures, slow: this.slow };
  }

  clear(): void {
    this.ring.fill(0);
    this.next = 0;
    this.calls = 0;
    this.failures = 0;
    this.slow = 0;
  }
}

/** The outcomes of the last `durationMs`, in `slices` time slices. */
export class TimeWindow implements OutcomeWindow {
  private readonly sliding: SlidingCounts;

  constructor(clock: Clock, durationMs: number, slices: number) {
    this.sliding = new SlidingCounts(clock, durationMs, slices, 3);
  }

  record(failure: boolean, slow: boolean): void {
    this.sliding.add(0);
    if (failure) this.sliding.add(1);
    if (slow) this.sliding.add(2);
  }

  get calls(): number {
    return this.sliding.total(0);
  }

  get failures(): number {
    return this.sliding.total(1);
  }

  get slow(): number {
    return this.sliding.total(2);
  }

  counts(): OutcomeCounts {
    return { calls: this.calls, failures: this.failures, slow: this.slow };
  }

  clear(): void {
    this.sliding.clear();
  }
}
