/**
 * Backoff with jitter, as in Marc Brooker's "Exponential Backoff and Jitter":
 * full jitter spreads contending clients best and is the default.
 *
 *   none:         min(cap, base * m^n)
 *   full:         random(0, min(cap, base * m^n))
 *   equal:        t/2 + random(0, t/2), t = min(cap, base * m^n)
 *   decorrelated: min(cap, random(base, previous * 3))
 *
 * where n counts retries from 0.
 */
import { InvalidOptionError } from '../errors.js';
import * as check from '../options.js';

export type Jitter = 'full' | 'equal' | 'decorrelated' | 'none';

export interface BackoffOptions {
  /** `exponential` (default) grows by `multiplier`; `constant` always starts from `baseMs`. */
  kind?: 'exponential' | 'constant';
  /** First delay scale. Default 100 ms. */
  baseMs?: number;
  /** Upper bound of any delay. Default 10 s. */
  capMs?: number;
  /** Default 2. */
  multiplier?: number;
  /** Default `full`. */
  jitter?: Jitter;
}

export class Backoff {
  readonly kind: 'exponential' | 'constant';
  readonly baseMs: number;
  readonly capMs: number;
  readonly multiplier: number;
  readonly jitter: Jitter;

  constructor(options: BackoffOptions = {}, policy = 'retry') {
    this.kind = check.oneOf(policy, 'backoff.kind', options.kind ?? 'exponential', ['exponential', 'constant']);
    this.baseMs = check.duration(policy, 'backoff.baseMs', options.baseMs ?? 100);
    this.capMs = check.duration(policy, 'backoff.capMs', options.capMs ?? 10_000);
    this.multiplier = check.ratio(policy, 'backoff.multiplier', options.multiplier ?? 2, { min: 1, max: 1_000 });
    this.jitter = check.oneOf(policy, 'backoff.jitter', options.jitter ?? 'full', ['full', 'equal', 'decorrelated', 'none']);
    if (this.capMs < this.baseMs) throw new InvalidOptionError(policy, 'backoff.capMs', this.capMs, `at least backoff.baseMs (${this.baseMs})`);
  }

  /** The ceiling `min(cap, base * m^n)` for retry `n` (0-based). */
  ceiling(n: number): number {
    if (this.kind === 'constant') return Math.min(this.capMs, this.baseMs);
    // `m^n` overflows to Infinity for large n, and 0 * Infinity is NaN: a zero base stays zero.
    if (this.baseMs === 0) return 0;
    return Math.min(this.capMs, this.baseMs * this.multiplier ** n);
  }

  /**
   * Delay before retry `n` (0-based). `previous` is the delay before the last
   * retry (decorrelated jitter needs it; pass 0 for the first).
   */
  delay(n: number, previous: number, random: () => number): number {
    switch (this.jitter) {
      case 'none':
        return this.ceiling(n);
      case 'full':
        return random() * this.ceiling(n);
      case 'equal': {
        const t = this.ceiling(n);
        return t / 2 + random() * (t / 2);
      }
      case 'decorrelated': {
        const high = Math.max(this.baseMs, (previous > 0 ? previous : this.baseMs) * 3);
        return Math.min(this.capMs, this.baseMs + random() * (high - this.baseMs));
      }
    }
  }
}
