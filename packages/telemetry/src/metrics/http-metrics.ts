/**
 * RED metrics for HTTP: requests, errors (by status class) and duration, per
 * route on the server side and per dependency on the client side.
 *
 * The hot path does not touch prom-client: each label set (method, route or
 * dependency, status class) is a `RedSeries` holding a request count, the
 * duration histogram's bucket counts and sum, and the last trace id seen per
 * bucket; recording is a few additions, with no label hashing, no validation
 * and no allocation. prom-client reads the series when scraped: the counter
 * and the histogram are ordinary prom-client families whose `collect`
 * callbacks copy them in, so the exposition (both formats, exemplars on the
 * duration buckets for OpenMetrics) is prom-client's own. Exemplars are only
 * recorded for sampled traces, whose trace the exemplar can link to.
 *
 * Callers that see the same label set over and over (the Fastify plugin, per
 * route) keep the `RedSeries` that `series()` returns and record into it
 * directly; `observe()` looks it up by a key string.
 */
import type { Histogram } from 'prom-client';
import type { Metrics } from './metrics.js';

/** `2xx`, `4xx`, `5xx`, ... ; `error` for a request that got no response. */
export function statusClass(status: number): string {
  return CLASSES[statusClassIndex(status)]!;
}
const CLASSES = ['error', '1xx', '2xx', '3xx', '4xx', '5xx'];

/** 1-5 for the status classes `1xx`-`5xx`, 0 for `error` (no response, or a status outside 100-599). */
export function statusClassIndex(status: number): number {
  return status >= 100 && status < 600 ? Math.floor(status / 100) : 0;
}

/** An exemplar as prom-client renders it. */
interface PromExemplar {
  labelSet: Record<string, string>;
  value: number;
  timestamp: number;
}

/** The last sampled observation of a bucket. */
interface ExemplarSlot {
  traceId: string;
  value: number;
  /** Epoch seconds. */
  timestamp: number;
}

/** One label set of a RED family: its request count and duration histogram. */
export class RedSeries {
  /** Requests recorded (the counter; also the histogram's count). */
  count = 0;
  /** Sum of the recorded durations, in seconds. */
  sum = 0;
  /** Per-bucket counts, not cumulative; the last one counts values above the highest bound (+Inf). */
  readonly buckets: Float64Array;
  private exemplars: (ExemplarSlot | undefined)[] | undefined;

  constructor(
    readonly labels: Readonly<Record<string, string>>,
    private readonly bounds: readonly number[],
  ) {
    this.buckets = new Float64Array(bounds.length + 1);
  }

  /** Records one request that took `seconds`; `traceId` (a sampled trace's) becomes the exemplar of its bucket. */
  observe(seconds: number, traceId?: string): void {
    if (!Number.isFinite(seconds)) return;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    this.count++;
    this.sum += seconds;
    this.buckets[i]!++;
    if (traceId === undefined) return;
    const slots = (this.exemplars ??= []);
    const slot = slots[i];
    const timestamp = Date.now() / 1000;
    if (slot === undefined) slots[i] = { traceId, value: seconds, timestamp };
    else {
      slot.traceId = traceId;
      slot.value = seconds;
      slot.timestamp = timestamp;
    }
  }

  /** The entry prom-client's histogram keeps for a label set (bucket counts by bound, exemplars by bound, `-1` for +Inf). */
  toPromClient(): { labels: Record<string, string>; bucketValues: Record<string, number>; sum: number; count: number; bucketExemplars: Record<string, PromExemplar | null> } {
    const bucketValues: Record<string, number> = {};
    const bucketExemplars: Record<string, PromExemplar | null> = {};
    for (let i = 0; i <= this.bounds.length; i++) {
      const bound = i < this.bounds.length ? String(this.bounds[i]) : '-1';
      if (i < this.bounds.length) bucketValues[bound] = this.buckets[i]!;
      const slot = this.exemplars?.[i];
      bucketExemplars[bound] = slot === undefined ? null : { labelSet: { trace_id: slot.traceId }, value: slot.value, timestamp: slot.timestamp };
    }
    return { labels: { ...this.labels }, bucketValues, sum: this.sum, count: this.count, bucketExemplars };
  }
}

/** The series of one RED family (a counter and a histogram), shared by every recorder of that family in a registry. */
class RedFamily {
  readonly series = new Map<string, RedSeries>();
  constructor(readonly bounds: readonly number[]) {}
}

const families = new WeakMap<Metrics, Map<string, RedFamily>>();

interface Family {
  name: string;
  help: string;
}

/** The family `histogram.name` of `metrics`, created (with its prom-client counter and histogram) on first use. */
function redFamily(metrics: Metrics, counter: Family, histogram: Family, labelNames: string[]): RedFamily {
  let byName = families.get(metrics);
  if (byName === undefined) families.set(metrics, (byName = new Map<string, RedFamily>()));
  const existing = byName.get(histogram.name);
  if (existing !== undefined) return existing;
  const family = new RedFamily(metrics.durationBuckets);
  const series = family.series;
  metrics.counter(counter.name, counter.help, labelNames, {
    collect() {
      this.reset();
      for (const s of series.values()) this.inc(s.labels, s.count);
    },
  });
  metrics.histogram(histogram.name, histogram.help, labelNames, {
    exemplars: true,
    collect(this: Histogram<string>) {
      // prom-client keeps a histogram's label sets in `hashMap`, keyed by a string of the labels; ours go in under their own key.
      const map = (this as unknown as { hashMap: Record<string, unknown> }).hashMap;
      for (const [key, s] of series) map[`bulwark:${key}`] = s.toPromClient();
    },
  });
  byName.set(histogram.name, family);
  return family;
}

/** Shared shape of the server and client recorders. */
abstract class RedRecorder {
  private readonly family: RedFamily;

  constructor(
    metrics: Metrics,
    counter: Family,
    histogram: Family,
    private readonly names: [string, string],
    private readonly maxSeries: number,
  ) {
    this.family = redFamily(metrics, counter, histogram, [...names, 'status_class']);
  }

  /** The series of a label set; past `maxSeries` label sets, new `second` values fold into `"other"`. */
  protected seriesOf(first: string, second: string, status: number): RedSeries {
    const cls = CLASSES[statusClassIndex(status)]!;
    const key = `${first}\u0000${second}\u0000${cls}`;
    const cache = this.family.series;
    let set = cache.get(key);
    if (set === undefined) {
      // Unbounded label values (a route per URL) would blow up the series count: fold the excess into "other".
      if (cache.size >= this.maxSeries && second !== 'other') return this.seriesOf(first, 'other', status);
      set = new RedSeries({ [this.names[0]]: first, [this.names[1]]: second, status_class: cls }, this.family.bounds);
      cache.set(key, set);
    }
    return set;
  }
}

/** Server-side RED: `bulwark_http_server_requests_total` and `bulwark_http_server_request_duration_seconds`. */
export class HttpServerMetrics extends RedRecorder {
  constructor(metrics: Metrics, maxSeries = 2_000) {
    super(
      metrics,
      { name: 'bulwark_http_server_requests_total', help: 'HTTP requests served, by method, route and status class.' },
      { name: 'bulwark_http_server_request_duration_seconds', help: 'Time to serve an HTTP request, by method, route and status class.' },
      ['method', 'route'],
      maxSeries,
    );
  }

  /** The series of (method, route, status class): keep it to record a label set without looking it up. */
  series(method: string, route: string, status: number): RedSeries {
    return this.seriesOf(method, route, status);
  }

  /** Records one served request; `traceId` only when its trace is sampled (becomes the exemplar). */
  observe(method: string, route: string, status: number, seconds: number, traceId?: string): void {
    this.seriesOf(method, route, status).observe(seconds, traceId);
  }
}

/** Client-side RED per dependency: `bulwark_http_client_requests_total`, `bulwark_http_client_request_duration_seconds`. */
export class HttpClientMetrics extends RedRecorder {
  constructor(metrics: Metrics, maxSeries = 500) {
    super(
      metrics,
      { name: 'bulwark_http_client_requests_total', help: 'Outgoing HTTP requests, by method, dependency and status class (error: no response).' },
      { name: 'bulwark_http_client_request_duration_seconds', help: 'Time to the response headers of an outgoing HTTP request, by method, dependency and status class.' },
      ['method', 'dependency'],
      maxSeries,
    );
  }

  /** Records one outgoing request. */
  observe(dependency: string, method: string, status: number, seconds: number, traceId?: string): void {
    this.seriesOf(method, dependency, status).observe(seconds, traceId);
  }
}
