/**
 * The state a store keeps for one key: a handful of numbers, as a Redis hash
 * would hold them. Buckets read `used` and `at`; windows read `window`,
 * `current` and `previous`. Algorithms see only their own view of it.
 */
import type { RateLimitAlgorithm } from './rate-limit-rule.js';

/** A bucket: `used` units of its capacity as of time `at`. */
export interface BucketState {
  used: number;
  at: number;
}

/** A window: index of the current window (`floor(now / windowMs)`), its count and the previous window's. */
export interface WindowState {
  window: number;
  current: number;
  previous: number;
}

/** One key's state in the memory store. Mutated in place, so a decision allocates nothing else. */
export class KeyState implements BucketState, WindowState {
  used = 0;
  window = Number.NEGATIVE_INFINITY;
  current = 0;
  previous = 0;
  /** Time at which the key holds nothing any more: forgetting it then changes no decision. */
  restoredAt = 0;

  constructor(
    public algorithm: RateLimitAlgorithm,
    public at: number,
  ) {}

  /** Starts afresh, for another algorithm. */
  reset(algorithm: RateLimitAlgorithm, now: number): void {
    this.algorithm = algorithm;
    this.at = now;
    this.used = 0;
    this.window = Number.NEGATIVE_INFINITY;
    this.current = 0;
    this.previous = 0;
    this.restoredAt = 0;
  }
}
