/**
 * Counters over a sliding time window, kept as a ring of time slices. Adding
 * costs a clock read and an array write; old slices are cleared lazily when
 * the ring turns. Used by the retry budget, the hedge budget and the circuit
 * breaker's time-based window.
 */
import type { Clock } from './clock.js';

export class SlidingCounts {
  private readonly sliceMs: number;
  private readonly slices: number;
  private readonly fields: number;
  /** `slices * fields` counts, slice-major. */
  private readonly counts: Float64Array;
  private readonly totals: Float64Array;
  private slice = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly clock: Clock,
    windowMs: number,
    slices: number,
    fields: number,
  ) {
    this.sliceMs = windowMs / slices;
    this.slices = slices;
    this.fields = fields;
    this.counts = new Float64Array(slices * fields);
    this.totals = new Float64Array(fields);
  }

  add(field: number, amount = 1): void {
    const base = this.advance() * this.fields;
    this.counts[base + field]! += amount;
    this.totals[field]! += amount;
  }

  /** Sum of `field` over the window, as of now. */
  total(field: number): number {
    this.advance();
    return this.totals[field]!;
  }

  /** Forgets everything. */
  clear(): void {
    this.counts.fill(0);
    this.totals.fill(0);
  }

  /** Turns the ring to the current slice; returns its index. */
  private advance(): number {
    const slice = Math.floor(this.clock.now() / this.sliceMs);
    const n = this.slices;
    if (slice !== this.slice) {
      const stale = slice - this.slice >= n ? n : Math.max(0, slice - this.slice);
      if (stale === n) {
        this.counts.fill(0);
        this.totals.fill(0);
      } else {
        for (let k = 1; k <= stale; k++) {
          const base = mod(this.slice + k, n) * this.fields;
          for (let f = 0; f < this.fields; f++) {
            this.totals[f]! -= this.counts[base + f]!;
            this.counts[base + f] = 0;
          }
        }
      }
      this.slice = slice;
    }
    return mod(slice, n);
  }
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}
