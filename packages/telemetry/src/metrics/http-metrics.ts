/**
 * RED metrics for HTTP: requests, errors (by status class) and duration, per
 * route on the server side and per dependency on the client side.
 *
 * The hot path is kept cheap: one cached label set per (method, route,
 * status class), so recording allocates nothing after the first request of
 * its kind; the request counter is a plain number per label set, copied into
 * the prom-client counter when scraped (prom-client's `inc(labels)` hashes
 * the labels on every call); the duration goes to a prom-client histogram,
 * with the trace id as exemplar only for sampled traces (whose trace the
 * exemplar can link to).
 */
import type { Histogram } from 'prom-client';
import type { Metrics } from './metrics.js';

/** `2xx`, `4xx`, `5xx`, ... ; `error` for a request that got no response. */
export function statusClass(status: number): string {
  if (status >= 100 && status < 600) return CLASSES[Math.floor(status / 100)]!;
  return 'error';
}
const CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];

interface Observation {
  labels: Record<string, string>;
  value: number;
  exemplarLabels: Record<string, string>;
}

interface LabelSet {
  labels: Record<string, string>;
  /** Requests of this label set, copied into the counter at scrape time. */
  count: number;
  /** Reused for every observation of this label set (histograms with exemplars take one object). */
  plain: Observation;
  exemplar: Observation;
}

const NO_EXEMPLAR: Record<string, string> = Object.freeze({});

interface Family {
  name: string;
  help: string;
}

/** Shared shape of the server and client recorders. */
abstract class RedRecorder {
  private readonly cache = new Map<string, LabelSet>();
  private readonly duration: Histogram<string>;

  constructor(
    metrics: Metrics,
    counter: Family,
    histogram: Family,
    private readonly names: [string, string],
    private readonly maxSeries: number,
  ) {
    const cache = this.cache;
    const labelNames = [...names, 'status_class'];
    metrics.counter(counter.name, counter.help, labelNames, {
      collect() {
        this.reset();
        for (const set of cache.values()) this.inc(set.labels, set.count);
      },
    });
    this.duration = metrics.histogram(histogram.name, histogram.help, labelNames, { exemplars: true });
  }

  protected record(first: string, second: string, status: number, seconds: number, traceId: string | undefined): void {
    const cls = statusClass(status);
    const key = `${first}\u0000${second}\u0000${cls}`;
    let set = this.cache.get(key);
    if (set === undefined) {
      // Unbounded label values (a route per URL) would blow up the series count: fold the excess into "other".
      if (this.cache.size >= this.maxSeries && second !== 'other') return this.record(first, 'other', status, seconds, traceId);
      const labels = { [this.names[0]]: first, [this.names[1]]: second, status_class: cls };
      set = { labels, count: 0, plain: { labels, value: 0, exemplarLabels: NO_EXEMPLAR }, exemplar: { labels, value: 0, exemplarLabels: NO_EXEMPLAR } };
      this.cache.set(key, set);
    }
    set.count++;
    // With exemplars enabled, prom-client's histogram takes one object; an empty exemplar label set records none.
    const observation = traceId === undefined ? set.plain : set.exemplar;
    observation.value = seconds;
    if (traceId !== undefined) observation.exemplarLabels = { trace_id: traceId };
    (this.duration as unknown as { observe(o: Observation): void }).observe(observation);
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

  /** Records one served request; `traceId` only when its trace is sampled (becomes the exemplar). */
  observe(method: string, route: string, status: number, seconds: number, traceId?: string): void {
    this.record(method, route, status, seconds, traceId);
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
    this.record(method, dependency, status, seconds, traceId);
  }
}
