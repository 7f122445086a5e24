/**
 * Counters and HDR histograms behind the load generator's figures. Latencies
 * are recorded in microseconds (3 significant digits, pure-JS histograms) and
 * reported in milliseconds.
 */
import { build, type Histogram } from 'hdr-histogram-js';
import type { KindStats, LatencySummary, PhaseStats } from './types.js';

export function histogram(): Histogram {
  // 1 µs .. 1 h, auto-resizing beyond; packed buckets keep many histograms small.
  return build({ useWebAssembly: false, bitBucketSize: 'packed', lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
}

/** Records a latency given in ms. */
export function record(h: Histogram, ms: number): void {
  h.recordValue(Math.max(1, Math.round(ms * 1000)));
}

const ms = (us: number): number => Math.round(us) / 1000;

export function summarize(h: Histogram): LatencySummary {
  const count = h.totalCount;
  if (count === 0) return { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p95: 0, p99: 0, p999: 0, max: 0 };
  return {
    count,
    min: ms(h.minNonZeroValue),
    mean: ms(h.mean),
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p95: ms(h.getValueAtPercentile(95)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
  };
}

export function percentileMs(h: Histogram, p: number): number {
  return h.totalCount === 0 ? 0 : ms(h.getValueAtPercentile(p));
}

export class KindAcc {
  sent = 0;
  ok = 0;
  failed = 0;
  readonly latency = histogram();

  merge(other: KindAcc): void {
    this.sent += other.sent;
    this.ok += other.ok;
    this.failed += other.failed;
    this.latency.add(other.latency);
  }

  stats(): KindStats {
    return { sent: this.sent, ok: this.ok, failed: this.failed, latency: summarize(this.latency) };
  }
}

/** One phase's (or the whole run's) counters while the run goes on. */
export class PhaseAcc {
  startMs = 0;
  durationMs = 0;
  scheduled = 0;
  sent = 0;
  completed = 0;
  ok = 0;
  failed = 0;
  dropped = 0;
  timedOut = 0;
  readonly networkErrors: Record<string, number> = {};
  readonly statuses: Record<string, number> = {};
  readonly latency = histogram();
  readonly okLatency = histogram();
  readonly lag = histogram();
  readonly byKind = new Map<string, KindAcc>();

  constructor(readonly name: string) {}

  kind(kind: string): KindAcc {
    let acc = this.byKind.get(kind);
    if (acc === undefined) this.byKind.set(kind, (acc = new KindAcc()));
    return acc;
  }

  merge(other: PhaseAcc): void {
    this.scheduled += other.scheduled;
    this.sent += other.sent;
    this.completed += other.completed;
    this.ok += other.ok;
    this.failed += other.failed;
    this.dropped += other.dropped;
    this.timedOut += other.timedOut;
    for (const [code, n] of Object.entries(other.networkErrors)) this.networkErrors[code] = (this.networkErrors[code] ?? 0) + n;
    for (const [status, n] of Object.entries(other.statuses)) this.statuses[status] = (this.statuses[status] ?? 0) + n;
    this.latency.add(other.latency);
    this.okLatency.add(other.okLatency);
    this.lag.add(other.lag);
    for (const [kind, acc] of other.byKind) this.kind(kind).merge(acc);
  }

  stats(): PhaseStats {
    const perSecond = (n: number): number => (this.durationMs > 0 ? round((n * 1000) / this.durationMs) : 0);
    const byKind: Record<string, KindStats> = {};
    for (const [kind, acc] of [...this.byKind].sort(([a], [b]) => a.localeCompare(b))) byKind[kind] = acc.stats();
    return {
      name: this.name,
      startMs: round(this.startMs),
      durationMs: round(this.durationMs),
      scheduled: this.scheduled,
      offeredRate: perSecond(this.scheduled),
      sent: this.sent,
      completed: this.completed,
      ok: this.ok,
      failed: this.failed,
      dropped: this.dropped,
      timedOut: this.timedOut,
      networkErrors: { ...this.networkErrors },
      statuses: { ...this.statuses },
      goodput: perSecond(this.ok),
      achievedRate: perSecond(this.completed - this.timedOut - sumValues(this.networkErrors)),
      errorRate: this.scheduled > 0 ? round(this.failed / this.scheduled, 4) : 0,
      latency: summarize(this.latency),
      okLatency: summarize(this.okLatency),
      byKind,
      schedulerLag: summarize(this.lag),
    };
  }
}

export function sumValues(record: Record<string, number>): number {
  let n = 0;
  for (const v of Object.values(record)) n += v;
  return n;
}

export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
