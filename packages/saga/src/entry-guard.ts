/**
 * Entry backpressure: refuses new sagas of a type while the share of its
 * recent sagas that failed (compensated or stuck) is above a threshold.
 * Outcomes are counted in a sliding window of time slices, so the guard
 * opens again by itself once the failures age out of the window.
 */
import { SagaConfigError } from './errors.js';

export interface EntryBreakerOptions {
  /** Failure share (0 < x < 1) above which new sagas are refused. Default 0.05. */
  failureRateThreshold?: number;
  /** Window of recent outcomes. Default 60 s. */
  windowMs?: number;
  /** Outcomes the window must hold before it judges. Default 20. */
  minimumSagas?: number;
}

const SLICES = 10;

export class EntryGuard {
  private readonly threshold: number;
  private readonly sliceMs: number;
  private readonly minimum: number;
  private readonly slices = new Map<string, { start: number[]; ok: number[]; failed: number[] }>();

  constructor(options: EntryBreakerOptions) {
    this.threshold = options.failureRateThreshold ?? 0.05;
    if (!(this.threshold > 0 && this.threshold < 1)) throw new SagaConfigError('entryBreaker.failureRateThreshold', `must be in (0, 1), got ${String(options.failureRateThreshold)}`);
    const windowMs = options.windowMs ?? 60_000;
    if (!(windowMs > 0) || !Number.isFinite(windowMs)) throw new SagaConfigError('entryBreaker.windowMs', `must be a positive number of milliseconds, got ${String(options.windowMs)}`);
    this.sliceMs = windowMs / SLICES;
    this.minimum = options.minimumSagas ?? 20;
    if (!Number.isInteger(this.minimum) || this.minimum < 1) throw new SagaConfigError('entryBreaker.minimumSagas', `must be an integer >= 1, got ${String(options.minimumSagas)}`);
  }

  record(type: string, failed: boolean, now: number): void {
    const s = this.window(type, now);
    const i = Math.floor(now / this.sliceMs) % SLICES;
    if (failed) (s.failed[i] as number)++;
    else (s.ok[i] as number)++;
  }

  /** The failure rate when it is above the threshold (refuse), else `undefined`. */
  refusal(type: string, now: number): { failureRate: number; retryAfterMs: number } | undefined {
    const s = this.window(type, now);
    let ok = 0;
    let failed = 0;
    for (let i = 0; i < SLICES; i++) {
      ok += s.ok[i] as number;
      failed += s.failed[i] as number;
    }
    const total = ok + failed;
    if (total < this.minimum || failed / total <= this.threshold) return undefined;
    return { failureRate: failed / total, retryAfterMs: Math.ceil(this.sliceMs - (now % this.sliceMs)) };
  }

  /** The type's slices, with the ones that fell out of the window emptied. */
  private window(type: string, now: number): { start: number[]; ok: number[]; failed: number[] } {
    let s = this.slices.get(type);
    if (s === undefined) {
      s = { start: new Array<number>(SLICES).fill(-1), ok: new Array<number>(SLICES).fill(0), failed: new Array<number>(SLICES).fill(0) };
      this.slices.set(type, s);
    }
    const current = Math.floor(now / this.sliceMs);
    for (let i = 0; i < SLICES; i++) {
      const slice = s.start[i] as number;
      if (slice !== -1 && current - slice >= SLICES) {
        s.start[i] = -1;
        s.ok[i] = 0;
        s.failed[i] = 0;
      }
    }
    const i = current % SLICES;
    if (s.start[i] !== current) {
      s.start[i] = current;
      s.ok[i] = 0;
      s.failed[i] = 0;
    }
    return s;
  }
}
