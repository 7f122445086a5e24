/**
 * The "from metrics" SLI: reads good/bad/total events out of prom-client
 * counters (or a histogram's `_count` / `_bucket{le=...}` series) by metric name
 * and label selector, and turns each reading into the increase since the last
 * one, as PromQL's `increase()` would (a counter that went down was reset, so
 * its whole new value is the increase).
 *
 * The engine polls every source once per evaluation and records the increases
 * into the same buckets that `record()` fills.
 */

/** Which series of which metric to count: `{ name: 'http_requests_total', labels: { route: '/orders' } }`. */
export interface MetricSelector {
  /** A counter's name, or a histogram/summary name suffixed `_count`, or a histogram name suffixed `_bucket` (give `labels.le`). */
  name: string;
  /** Series whose labels include all of these are summed. */
  labels?: Readonly<Record<string, string>>;
}

/** The part of a prom-client `Registry` the SLO engine uses. */
export interface MetricRegistry {
  getSingleMetric(name: string): unknown;
}

interface PromMetric {
  readonly name?: string;
  readonly labelNames?: readonly string[];
  get(): Promise<{ values: { value: number; labels: Record<string, string | number>; metricName?: string }[] }>;
}

/** A metric resolved from a selector: the prom-client object and which of its series to read. */
export interface ResolvedMetric {
  metric: PromMetric;
  /** The series name inside the metric's output (differs from the metric's name for histograms). */
  seriesName: string;
  kind: 'counter' | 'histogram' | 'summary';
}

/**
 * Finds the metric a selector names, or explains why it cannot be counted:
 * unknown name, a gauge (which goes up and down), a label the metric does not have.
 */
export function resolveMetric(registry: MetricRegistry, selector: MetricSelector): ResolvedMetric | string {
  const name = selector.name;
  const direct = asMetric(registry.getSingleMetric(name));
  let resolved: ResolvedMetric | undefined;
  if (direct !== undefined) {
    const kind = kindOf(direct);
    if (kind !== 'counter') return `metric "${name}" is a ${kind}; an SLI needs a counter (or a histogram's _count/_bucket series)`;
    resolved = { metric: direct, seriesName: name, kind };
  } else {
    const suffix = /_(count|bucket)$/.exec(name);
    const base = suffix === null ? undefined : asMetric(registry.getSingleMetric(name.slice(0, suffix.index)));
    if (base === undefined || suffix === null) return `unknown metric "${name}": no such metric in the registry`;
    const kind = kindOf(base);
    if (kind !== 'histogram' && kind !== 'summary') return `unknown metric "${name}": "${name.slice(0, suffix.index)}" is a ${kind}, not a histogram or summary`;
    if (suffix[1] === 'bucket' && (kind !== 'histogram' || selector.labels?.le === undefined)) return `metric "${name}" needs a histogram and a labels.le bucket bound`;
    resolved = { metric: base, seriesName: name, kind };
  }
  const known = new Set(resolved.metric.labelNames ?? []);
  if (resolved.seriesName.endsWith('_bucket')) known.add('le');
  for (const label of Object.keys(selector.labels ?? {})) {
    if (!known.has(label)) return `metric "${name}" has no label "${label}" (it has ${[...known].map((l) => `"${l}"`).join(', ') || 'none'})`;
  }
  return resolved;
}

/**
 * A cumulative reading of one selector that yields increases: the first poll
 * reads the baseline (counts from before the engine started are not the SLO's),
 * later polls return what was added since.
 */
export class MetricCounterReader {
  private last: number | undefined = undefined;

  constructor(
    private readonly resolved: ResolvedMetric,
    private readonly labels: Readonly<Record<string, string>>,
  ) {}

  /** Sum of the selected series right now. */
  async read(): Promise<number> {
    const { values } = await this.resolved.metric.get();
    let sum = 0;
    for (const sample of values) {
      if (this.resolved.kind !== 'counter' && sample.metricName !== this.resolved.seriesName) continue;
      if (!matches(sample.labels, this.labels)) continue;
      sum += sample.value;
    }
    return sum;
  }

  /** The increase since the previous call (0 on the first), reset-aware. */
  async increase(): Promise<number> {
    const now = await this.read();
    const previous = this.last;
    this.last = now;
    if (previous === undefined) return 0;
    return now >= previous ? now - previous : now;
  }
}

function matches(labels: Record<string, string | number>, selector: Readonly<Record<string, string>>): boolean {
  for (const [key, value] of Object.entries(selector)) {
    const actual = labels[key];
    if (actual === undefined || String(actual) !== value) return false;
  }
  return true;
}

function asMetric(value: unknown): PromMetric | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  return typeof (value as { get?: unknown }).get === 'function' ? (value as PromMetric) : undefined;
}

function kindOf(metric: PromMetric): string {
  // prom-client's classes: judged by constructor name so a second installed copy works too.
  let proto: unknown = Object.getPrototypeOf(metric);
  while (proto !== null && proto !== Object.prototype) {
    const name = (proto as { constructor?: { name?: string } }).constructor?.name;
    if (name === 'Counter' || name === 'Histogram' || name === 'Summary' || name === 'Gauge') return name.toLowerCase();
    proto = Object.getPrototypeOf(proto);
  }
  return 'unknown metric type';
}
