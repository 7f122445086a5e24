/**
 * `Metrics`: a prom-client `Registry` with the metric families Bulwark uses,
 * created once by name, and a scrape that serves both exposition formats.
 *
 * The registry is an OpenMetrics one, because prom-client records exemplars
 * only there; `scrape(accept)` negotiates: a scraper that accepts
 * `application/openmetrics-text` gets OpenMetrics with exemplars (trace ids on
 * the request-duration buckets), anyone else the Prometheus text format.
 * Scrapes are serialised, since the format is a property of the registry.
 *
 * Metric families are get-or-create by name (`counter`, `gauge`,
 * `histogram`), so two components asking for the same family share it; asking
 * with a different type or label set is a programming error and throws
 * `InvalidTelemetryOptionError`.
 *
 * @example
 * ```ts
 * const metrics = new Metrics({ defaultLabels: { service: 'orders' } });
 * const sold = metrics.counter('shop_items_sold_total', 'Items sold.', ['category']);
 * sold.inc({ category: 'books' });
 * const { contentType, body } = await metrics.scrape(request.headers.accept);
 * ```
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type OpenMetricsContentType, type PrometheusContentType } from 'prom-client';
import { InvalidTelemetryOptionError, requireName } from '../errors.js';

export interface MetricsOptions {
  /** Labels added to every series (e.g. `service`). */
  defaultLabels?: Record<string, string>;
  /** Also collect Node process metrics (event loop lag, GC, heap). Default false. */
  processMetrics?: boolean;
  /** Buckets (seconds) of the request-duration histograms. */
  durationBuckets?: number[];
}

/** What `scrape` returns: a body and the content type to send it with. */
export interface Scrape {
  contentType: string;
  body: string;
}

/** Request-duration buckets in seconds: 1 ms to 10 s. */
export const DEFAULT_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const OPENMETRICS = Registry.OPENMETRICS_CONTENT_TYPE;
const PROMETHEUS = Registry.PROMETHEUS_CONTENT_TYPE;

type Family = Counter<string> | Gauge<string> | Histogram<string>;

export class Metrics {
  readonly registry: Registry<OpenMetricsContentType | PrometheusContentType>;
  readonly durationBuckets: number[];
  private readonly families = new Map<string, { family: Family; type: string; labels: string }>();
  private readonly counterNames = new Map<Counter<string>, string>();
  private scraping: Promise<unknown> = Promise.resolve();

  constructor(options: MetricsOptions = {}) {
    this.registry = new Registry<OpenMetricsContentType | PrometheusContentType>();
    this.registry.setContentType(OPENMETRICS);
    if (options.defaultLabels !== undefined) this.registry.setDefaultLabels(options.defaultLabels);
    const buckets = options.durationBuckets ?? DEFAULT_DURATION_BUCKETS;
    if (!Array.isArray(buckets) || buckets.length === 0 || buckets.some((b, i) => typeof b !== 'number' || !(b > 0) || (i > 0 && b <= buckets[i - 1]!))) {
      throw new InvalidTelemetryOptionError('Metrics', 'durationBuckets', buckets, 'a non-empty, strictly increasing list of positive numbers');
    }
    this.durationBuckets = buckets;
    if (options.processMetrics === true) collectDefaultMetrics({ register: this.registry as Registry<OpenMetricsContentType> });
  }

  /** The counter `name` (created on first use); `collect` runs at each scrape to refresh it. */
  counter(name: string, help: string, labelNames: readonly string[] = [], options: { exemplars?: boolean; collect?: (this: Counter<string>) => void } = {}): Counter<string> {
    return this.family(name, 'counter', labelNames, () => {
      const counter = new Counter({ name, help, labelNames, registers: [this.registry], enableExemplars: options.exemplars === true, ...(options.collect === undefined ? {} : { collect: options.collect }) });
      this.counterNames.set(counter, name);
      return counter;
    }) as Counter<string>;
  }

  /** The gauge `name`; `collect` runs at each scrape to refresh it. */
  gauge(name: string, help: string, labelNames: readonly string[] = [], collect?: (this: Gauge<string>) => void | Promise<void>): Gauge<string> {
    return this.family(name, 'gauge', labelNames, () => new Gauge({ name, help, labelNames, registers: [this.registry], ...(collect === undefined ? {} : { collect }) })) as Gauge<string>;
  }

  /** The histogram `name`; `exemplars` records a trace id per bucket for OpenMetrics; `collect` runs at each scrape to refresh it. */
  histogram(name: string, help: string, labelNames: readonly string[] = [], options: { buckets?: number[]; exemplars?: boolean; collect?: (this: Histogram<string>) => void } = {}): Histogram<string> {
    return this.family(
      name,
      'histogram',
      labelNames,
      () =>
        new Histogram({
          name,
          help,
          labelNames,
          buckets: options.buckets ?? this.durationBuckets,
          registers: [this.registry],
          enableExemplars: options.exemplars === true,
          ...(options.collect === undefined ? {} : { collect: options.collect }),
        }),
    ) as Histogram<string>;
  }

  /**
   * Renders every metric. `accept` is the scraper's `Accept` header: OpenMetrics
   * (with exemplars) when it asks for `application/openmetrics-text`, the
   * Prometheus text format otherwise.
   */
  scrape(accept?: string): Promise<Scrape> {
    const open = typeof accept === 'string' && accept.includes('application/openmetrics-text');
    const run = this.scraping.then(async () => {
      const contentType = open ? OPENMETRICS : PROMETHEUS;
      this.registry.setContentType(contentType);
      try {
        return { contentType, body: await this.registry.metrics() };
      } finally {
        this.registry.setContentType(OPENMETRICS);
        // prom-client renames counters (drops `_total`) when rendering OpenMetrics; give the names back.
        for (const [counter, name] of this.counterNames) (counter as unknown as { name: string }).name = name;
      }
    });
    this.scraping = run.catch(() => undefined);
    return run;
  }

  /** The sum of the series of `name` whose labels include `labels` (a histogram's count), or undefined when none match. */
  async value(name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
    const family = this.families.get(name)?.family;
    if (family === undefined) return undefined;
    const data = await family.get();
    const wanted = Object.entries(labels);
    const suffix = family instanceof Histogram ? `${name}_count` : name;
    let sum: number | undefined;
    for (const v of data.values as { labels: Record<string, unknown>; value: number; metricName?: string }[]) {
      if (family instanceof Histogram && v.metricName !== suffix) continue;
      if (wanted.every(([k, x]) => String(v.labels[k]) === x)) sum = (sum ?? 0) + v.value;
    }
    return sum;
  }

  private family(name: string, type: string, labelNames: readonly string[], create: () => Family): Family {
    requireName('Metrics', 'name', name);
    const labels = labelNames.join(',');
    const existing = this.families.get(name);
    if (existing !== undefined) {
      if (existing.type !== type || existing.labels !== labels) throw new InvalidTelemetryOptionError('Metrics', name, { type, labelNames }, `the same type and labels it was created with (${existing.type} [${existing.labels}])`);
      return existing.family;
    }
    let family: Family;
    try {
      family = create();
    } catch (error) {
      throw new InvalidTelemetryOptionError('Metrics', name, { type, labelNames }, `a valid metric definition (${error instanceof Error ? error.message : String(error)})`);
    }
    this.families.set(name, { family, type, labels });
    return family;
  }
}
