/**
 * Bounded-memory event counts over sliding windows: the engine never stores
 * an event, only per-bucket sums of good and total events.
 *
 * A {@link BucketRing} is one resolution (say 1-minute buckets kept for 6 h);
 * a {@link TieredCounts} writes every record into each ring and answers a
 * window from the finest ring that still covers it, so short alert windows are
 * minute-exact and the 30-day SLO window costs 721 hourly buckets, not 43 200.
 *
 * A window `(now - w, now]` rarely starts on a bucket boundary. The bucket it
 * starts in is counted pro rata, by the share of the bucket's elapsed time that
 * lies inside the window: exact for evenly spread traffic, and never off by
 * more than that one bucket's events otherwise.
 */

/** Good and total events in a window. */
export interface Counts {
  good: number;
  total: number;
}

/** One resolution: `ceil(spanMs / bucketMs) + 1` buckets in a ring, on absolute bucket numbers `floor(t / bucketMs)`. */
export class BucketRing {
  readonly size: number;
  private readonly good: Float64Array;
  private readonly total: Float64Array;
  /** Bucket number of the newest bucket written (`-Infinity` before the first record). */
  private head = -Infinity;

  constructor(
    readonly bucketMs: number,
    readonly spanMs: number,
  ) {
    this.size = Math.ceil(spanMs / bucketMs) + 1;
    this.good = new Float64Array(this.size);
    this.total = new Float64Array(this.size);
  }

  /** Adds counts at time `now`. Time only moves forward; a record older than the ring is dropped. */
  add(now: number, good: number, total: number): void {
    const b = Math.floor(now / this.bucketMs);
    if (b > this.head) this.advanceTo(b);
    else if (b <= this.head - this.size) return;
    const slot = this.slot(b);
    this.good[slot] = (this.good[slot] ?? 0) + good;
    this.total[slot] = (this.total[slot] ?? 0) + total;
  }

  /** Counts in `(now - windowMs, now]`; the window must fit in the span. */
  sum(now: number, windowMs: number): Counts {
    const start = now - windowMs;
    const first = Math.floor(start / this.bucketMs);
    const last = Math.floor(now / this.bucketMs);
    let good = 0;
    let total = 0;
    for (let b = last; b >= first; b--) {
      if (b > this.head) continue;
      if (b <= this.head - this.size) break;
      const slot = this.slot(b);
      const t = this.total[slot] ?? 0;
      if (t === 0) continue;
      const g = this.good[slot] ?? 0;
      const bucketStart = b * this.bucketMs;
      if (bucketStart >= start) {
        good += g;
        total += t;
        continue;
      }
      // The oldest bucket straddles the window start: count the share of its elapsed time inside the window.
      const elapsedEnd = Math.min(bucketStart + this.bucketMs, now);
      const elapsed = elapsedEnd - bucketStart;
      const share = elapsed <= 0 ? 1 : Math.max(0, elapsedEnd - start) / elapsed;
      good += g * share;
      total += t * share;
    }
    return { good, total };
  }

  private advanceTo(b: number): void {
    const steps = this.head === -Infinity ? this.size : Math.min(b - this.head, this.size);
    for (let i = 1; i <= steps; i++) {
      const slot = this.slot(b - steps + i);
      this.good[slot] = 0;
      this.total[slot] = 0;
    }
    this.head = b;
  }

  private slot(b: number): number {
    return ((b % this.size) + this.size) % this.size;
  }
}

/** How finely to count: fine buckets for short windows, coarse ones for long windows. */
export interface Resolution {
  /** Default 60 000 (1 min). */
  fineBucketMs: number;
  /** How long fine buckets are kept; windows up to this use them. Default 6 h. */
  fineSpanMs: number;
  /** Default 3 600 000 (1 h). Kept for the SLO window. */
  coarseBucketMs: number;
}

export const defaultResolution: Readonly<Resolution> = Object.freeze({ fineBucketMs: 60_000, fineSpanMs: 6 * 3_600_000, coarseBucketMs: 3_600_000 });

/** Every record goes into each ring; a window is read from the finest ring that covers it. */
export class TieredCounts {
  private readonly rings: BucketRing[];

  constructor(resolution: Resolution, longestWindowMs: number) {
    const fine = new BucketRing(resolution.fineBucketMs, resolution.fineSpanMs);
    this.rings = longestWindowMs <= resolution.fineSpanMs ? [fine] : [fine, new BucketRing(resolution.coarseBucketMs, longestWindowMs)];
  }

  add(now: number, good: number, total: number): void {
    for (const ring of this.rings) ring.add(now, good, total);
  }

  /** Counts in `(now - windowMs, now]` (windows beyond the longest are cut to it). */
  sum(now: number, windowMs: number): Counts {
    for (const ring of this.rings) {
      if (windowMs <= ring.spanMs) return ring.sum(now, windowMs);
    }
    const longest = this.rings[this.rings.length - 1] as BucketRing;
    return longest.sum(now, longest.spanMs);
  }

  /** Buckets held in all, the bound on memory (two doubles each). */
  get buckets(): number {
    return this.rings.reduce((n, r) => n + r.size, 0);
  }
}
