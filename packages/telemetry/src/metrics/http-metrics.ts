/**
 * RED metrics for HTTP: requests, errors (by status class) and duration, per
 * route on the server side and per dependency on the client side.
 *
 * The hot path caches one label object per (method, route, status class), so
 * recording a request allocates nothing after the first of its kind, and
 * attaches an exemplar (the trace id) only for sampled traces, whose trace the
 * exemplar can link to.
 */
import type { Counter, Histogram } from 'prom-client';
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
  /** Reused for every observation of this label set (histograms with exemplars take one object). */
  plain: Observation;
  exemplar: Observation;
}

const NO_EXEMPLAR: Record<string, string> = Object.freeze({});

/** Shared shape of the server and client recorders. */
abstract class RedRecorder {
  private readonly cache = new Map<string, LabelSet>();
  constructor(
    private readonly requests: Counter<string>,
    private readonly duration: Histogram<string>,
    private readonly maxSeries: number,
  ) {}

  protected record(first: string, second: string, status: number, seconds: number, traceId: string | undefined, firstName: string, secondName: string): void {
    const cls = statusClass(status);
    const key = `${first}\u0000${second}\u0000${cls}`;
    let set = this.cache.get(key);
    if (set === undefined) {
      // Unbounded label values (a route per URL) would blow up the series count: fold the excess.
      if (this.cache.size >= this.maxSeries) return this.record(first, 'other', status, seconds, traceId, firstName, secondName);
      const labels = { [firstName]: first, [secondName]: second, status_class: cls };
      set = { labels, plain: { labels, value: 0, exemplarLabels: NO_EXEMPLAR }, exemplar: { labels, value: 0, exemplarLabels: NO_EXEMPLAR } };
      this.cache.set(key, set);
    }
    this.requests.inc(set.labels);
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
      metrics.counter('bulwark_http_server_requests_total', 'HTTP requests served, by method, route and status class.', ['method', 'route', 'status_class']),
      metrics.histogram('bulwark_http_server_request_duration_seconds', 'Time to serve an HTTP request, by method, route and status class.', ['method', 'route', 'status_class'], { exemplars: true }),
      maxSeries,
    );
  }

  /** Records one served request; `traceId` only when its trace is sampled (becomes the exemplar). */
  observe(method: string, route: string, status: number, seconds: number, traceId?: string): void {
    this.record(method, route, status, seconds, traceId, 'method', 'route');
  }
}

/** Client-side RED per dependency: `bulwark_http_client_requests_total`, `bulwark_http_client_request_duration_seconds`. */
export class HttpClientMetrics extends RedRecorder {
  constructor(metrics: Metrics, maxSeries = 500) {
    super(
      metrics.counter('bulwark_http_client_requests_total', 'Outgoing HTTP requests, by dependency, method and status class (error: no response).', ['dependency', 'method', 'status_class']),
      metrics.histogram('bulwark_http_client_request_duration_seconds', 'Time to the response headers of an outgoing HTTP request, by dependency, method and status class.', ['dependency', 'method', 'status_class'], { exemplars: true }),
      maxSeries,
    );
  }

  /** Records one outgoing request. */
  observe(dependency: string, method: string, status: number, seconds: number, traceId?: string): void {
    this.record(method, dependency, status, seconds, traceId, 'method', 'dependency');
  }
}
