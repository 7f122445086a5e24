/**
 * Streaming latency quantiles in bounded memory, over a recent time window:
 * what an adaptive hedge delay ("hedge after the observed p95") reads.
 */
import { systemClock, type Clock } from '../clock.js';
import { InvalidOptionError } from '../errors.js';
import * as check from '../options.js';

/**
 * Options of a `LatencyQuantile`.
 *
 * @example
 * ```ts
 * const options: LatencyQuantileOptions = { windowMs: 10_000, relativeAccuracy: 0.01 };
 * const latency = new LatencyQuantile(options);
 * ```
 */
export interface LatencyQuantileOptions {
  /** Length of one window: reads cover the current and the previous window. Default 30 s. */
  windowMs?: number;
  /** Relative error bound of every quantile read, 0 < α < 1. Default 0.02 (2 %). */
  relativeAccuracy?: number;
  /** Smallest latency told apart from 0. Default 0.001 ms (1 µs). */
  lowestMs?: number;
  /** Largest latency tracked; longer ones count as this. Default 3 600 000 ms (1 h). */
  highestMs?: number;
  clock?: Clock;
}

/** Buckets per block of the block sums that make a read cheap. A power of two. */
const BLOCK_SHIFT = 5;

/**
 * A streaming latency quantile estimator: a log-bucketed histogram with a
 * guaranteed relative error (the DDSketch bucketing, a cousin of HDR
 * histograms), kept over two rotating time windows so it follows recent
 * latency and forgets old latency.
 *
 * - **Accuracy**: bucket `i` holds the values in `(lowestMs·γ^(i-1), lowestMs·γ^i]`
 *   with `γ = (1 + α) / (1 - α)`, and reports them as `2·lowestMs·γ^i / (γ + 1)`:
 *   every quantile read is within `α` (`relativeAccuracy`, default 2 %) of the exact
 *   sample quantile of the same rank, whatever the distribution. Values below
 *   `lowestMs` count as 0; values above `highestMs` count as `highestMs`.
 * - **Memory**: fixed at construction, about 3 × 550 doubles for the defaults
 *   (1 µs to 1 h at 2 %), nothing per sample.
 * - **Cost**: `record` is one clock read, one `Math.log` and three array
 *   increments. `quantile` walks block sums of 32 buckets, then at most 32
 *   buckets (about 50 additions for the defaults), and is memoised until the
 *   next sample.
 * - **Recency**: time is cut into windows of `windowMs`; a read covers the
 *   current window and the previous one, so it always reflects between one and
 *   two windows of history. Rotation is lazy (on the next record or read) and
 *   costs one pass over the buckets per window.
 *
 * @example
 * ```ts
 * const latency = new LatencyQuantile({ windowMs: 30_000 });
 * latency.record(12.5);
 * const p95 = latency.quantile(0.95); // undefined until something is recorded
 * ```
 */
export class LatencyQuantile {
  readonly windowMs: number;
  readonly relativeAccuracy: number;
  readonly lowestMs: number;
  readonly highestMs: number;
  /** Number of buckets, the zero bucket included: the estimator's whole memory is three arrays of this length. */
  readonly buckets: number;
  private readonly clock: Clock;
  private readonly gamma: number;
  private readonly inverseLogGamma: number;
  /** Counts of the current window. */
  private current: Float64Array;
  /** Counts of the previous window. */
  private previous: Float64Array;
  /** `current + previous`, bucket by bucket: what reads walk. */
  private readonly combined: Float64Array;
  /** Sums of `combined` over blocks of `2^BLOCK_SHIFT` buckets. */
  private readonly blocks: Float64Array;
  private total = 0;
  private window = Number.NEGATIVE_INFINITY;
  /** Bumped on every change; the memo below is valid while it holds. */
  private version = 0;
  private memoVersion = -1;
  private memoQuantile = Number.NaN;
  private memoValue = 0;

  constructor(options: LatencyQuantileOptions = {}) {
    const p = 'latencyQuantile';
    this.windowMs = check.duration(p, 'windowMs', options.windowMs ?? 30_000, { allowZero: false });
    const alpha = options.relativeAccuracy ?? 0.02;
    if (typeof alpha !== 'number' || !(alpha > 0 && alpha < 1)) {
      throw new InvalidOptionError(p, 'relativeAccuracy', alpha, 'a number strictly between 0 and 1');
    }
    this.relativeAccuracy = alpha;
    this.lowestMs = check.duration(p, 'lowestMs', options.lowestMs ?? 0.001, { allowZero: false });
    this.highestMs = check.duration(p, 'highestMs', options.highestMs ?? 3_600_000, { allowZero: false });
    if (this.highestMs <= this.lowestMs) throw new InvalidOptionError(p, 'highestMs', this.highestMs, `greater than lowestMs (${this.lowestMs})`);
    this.clock = options.clock ?? systemClock;
    this.gamma = (1 + alpha) / (1 - alpha);
    this.inverseLogGamma = 1 / Math.log(this.gamma);
    // Bucket 0 holds the values below `lowestMs`; bucket `i ≥ 1` holds (lowest·γ^(i-2), lowest·γ^(i-1)].
    const logBuckets = Math.ceil(Math.log(this.highestMs / this.lowestMs) * this.inverseLogGamma) + 1;
    if (logBuckets > 1_000_000) {
      throw new InvalidOptionError(p, 'relativeAccuracy', alpha, `coarse enough for at most a million buckets between lowestMs and highestMs (${logBuckets} needed)`);
    }
    this.buckets = logBuckets + 1;
    this.current = new Float64Array(this.buckets);
    this.previous = new Float64Array(this.buckets);
    this.combined = new Float64Array(this.buckets);
    this.blocks = new Float64Array((this.buckets >> BLOCK_SHIFT) + 1);
  }

  /** Records one latency sample, in milliseconds. `NaN` is ignored. */
  record(ms: number): void {
    if (Number.isNaN(ms)) return;
    this.rotate();
    const i = this.indexOf(ms);
    this.current[i]! += 1;
    this.combined[i]! += 1;
    this.blocks[i >> BLOCK_SHIFT]! += 1;
    this.total += 1;
    this.version++;
  }

  /** Samples the estimator currently covers (the current and the previous window). */
  get count(): number {
    this.rotate();
    return this.total;
  }

  /**
   * The `q`-quantile (0 ≤ q ≤ 1) of the samples currently covered: the value
   * of rank `max(1, ⌈q·count⌉)` in sorted order, within `relativeAccuracy`.
   * `undefined` when there are no samples.
   */
  quantile(q: number): number | undefined {
    this.rotate();
    if (this.total === 0) return undefined;
    if (this.memoVersion === this.version && this.memoQuantile === q) return this.memoValue;
    const rank = Math.max(1, Math.ceil(q * this.total));
    const blocks = this.blocks;
    let seen = 0;
    let block = 0;
    while (block < blocks.length - 1 && seen + blocks[block]! < rank) seen += blocks[block++]!;
    const combined = this.combined;
    let i = block << BLOCK_SHIFT;
    const end = Math.min(combined.length, i + (1 << BLOCK_SHIFT)) - 1;
    while (i < end && seen + combined[i]! < rank) seen += combined[i++]!;
    const value = this.valueOf(i);
    this.memoVersion = this.version;
    this.memoQuantile = q;
    this.memoValue = value;
    return value;
  }

  /** Forgets every sample. */
  clear(): void {
    this.current.fill(0);
    this.previous.fill(0);
    this.combined.fill(0);
    this.blocks.fill(0);
    this.total = 0;
    this.version++;
  }

  private indexOf(ms: number): number {
    if (!(ms >= this.lowestMs)) return 0;
    const i = Math.ceil(Math.log(ms / this.lowestMs) * this.inverseLogGamma) + 1;
    return i < this.buckets ? i : this.buckets - 1;
  }

  /** The value bucket `i` reports: the point of least relative error to both its bounds. */
  private valueOf(i: number): number {
    if (i === 0) return 0;
    const value = (2 * this.lowestMs * this.gamma ** (i - 1)) / (this.gamma + 1);
    return value < this.highestMs ? value : this.highestMs;
  }

  /** Turns the windows to the current time. */
  private rotate(): void {
    const window = Math.floor(this.clock.now() / this.windowMs);
    if (window === this.window) return;
    const elapsed = window - this.window;
    this.window = window;
    if (this.total === 0) return;
    if (elapsed === 1) {
      // The current window becomes the previous one; what was previous is dropped.
      const dropped = this.previous;
      this.previous = this.current;
      dropped.fill(0);
      this.current = dropped;
      this.combined.set(this.previous);
      this.blocks.fill(0);
      let total = 0;
      for (let i = 0; i < this.combined.length; i++) {
        const n = this.combined[i]!;
        if (n !== 0) {
          this.blocks[i >> BLOCK_SHIFT]! += n;
          total += n;
        }
      }
      this.total = total;
      this.version++;
    } else {
      this.clear();
    }
  }
}
