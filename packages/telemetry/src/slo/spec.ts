/**
 * The declarative SLO spec and its validation.
 *
 * A spec says what "good" means (an SLI as good/total events), how good is
 * good enough (the objective, over a rolling window) and when to wake someone
 * (multiwindow, multi-burn-rate alert conditions; the Google SRE workbook's
 * four by default). Specs are plain data, so they can live in JSON or YAML
 * config; `validateSlos` turns them into the normalised {@link SloSpec} the
 * engine and the Prometheus exporter share, or throws one {@link SloSpecError}
 * listing every problem, each by its field path (`slos[2].objective`).
 */
import { DAY, MINUTE, formatDuration, parseDuration, type Duration } from './duration.js';
import { SloSpecError, type SloSpecIssue } from './errors.js';
import { resolveMetric, type MetricRegistry, type MetricSelector } from './metric-source.js';

/** `page` wakes a human now; `ticket` is for working hours. */
export type Severity = 'page' | 'ticket';

/**
 * One multiwindow burn-rate condition: it holds while the burn rate is above
 * `burnRate` over both the long window (significant budget spent) and the short
 * one (still happening now, so the alert resolves soon after recovery).
 */
export interface BurnRateAlertInput {
  severity: Severity;
  /** Multiple of the sustainable error rate, e.g. 14.4. */
  burnRate: number;
  longWindow: Duration;
  shortWindow: Duration;
}

/** Events counted in-process: the engine's `record()`, `recordGood()`, `recordBad()`. */
export interface EventsSliInput {
  kind: 'events';
}

/** Events read from prom-client metrics: `total` plus exactly one of `good` or `bad`. */
export interface MetricsSliInput {
  kind: 'metrics';
  total: MetricSelector;
  good?: MetricSelector;
  bad?: MetricSelector;
}

/** One SLO as written in config. */
export interface SloSpecInput {
  /** Unique, URL- and label-safe: letters, digits, `-`, `_`, `.`. */
  name: string;
  /** The service the SLO belongs to. */
  service: string;
  description?: string;
  /** Target fraction of good events, strictly between 0 and 1 (0.999 for "three nines"). */
  objective: number;
  /** Rolling SLO window in whole days. Default `'30d'`; `'28d'` keeps weekly cycles aligned. */
  window?: Duration;
  /** Default `{ kind: 'events' }`. */
  sli?: EventsSliInput | MetricsSliInput;
  /** Alert conditions. Default {@link defaultAlertPolicy}; `[]` for none. */
  alerts?: readonly BurnRateAlertInput[];
  /** Extra labels on exported rules and in status (team, tier, ...). */
  labels?: Readonly<Record<string, string>>;
}

/** A validated condition with its windows in milliseconds. */
export interface BurnRateAlert {
  severity: Severity;
  burnRate: number;
  longWindowMs: number;
  shortWindowMs: number;
}

export type Sli = EventsSliInput | { kind: 'metrics'; total: MetricSelector; good: MetricSelector | undefined; bad: MetricSelector | undefined };

/** A validated, normalised SLO. */
export interface SloSpec {
  readonly name: string;
  readonly service: string;
  readonly description: string;
  readonly objective: number;
  /** `1 - objective`, rounded to 12 decimals so `1 - 0.999` is exactly the double nearest 0.001. */
  readonly errorBudget: number;
  readonly windowMs: number;
  readonly sli: Sli;
  readonly alerts: readonly BurnRateAlert[];
  readonly labels: Readonly<Record<string, string>>;
}

/**
 * The SRE workbook's multiwindow, multi-burn-rate policy for a 30-day SLO
 * ("Alerting on SLOs", table 5-8): page at 2% of the budget in 1 h or 5% in
 * 6 h, ticket at 10% in 1 d or 10% in 3 d.
 */
export const defaultAlertPolicy: readonly BurnRateAlertInput[] = Object.freeze([
  { severity: 'page', burnRate: 14.4, longWindow: '1h', shortWindow: '5m' },
  { severity: 'page', burnRate: 6, longWindow: '6h', shortWindow: '30m' },
  { severity: 'ticket', burnRate: 3, longWindow: '1d', shortWindow: '2h' },
  { severity: 'ticket', burnRate: 1, longWindow: '3d', shortWindow: '6h' },
]);

/** Validation options. */
export interface ValidateOptions {
  /** Checks metric SLIs against this registry: unknown names, gauges and unknown labels are errors. */
  registry?: MetricRegistry;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const LABEL = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_WINDOW_DAYS = 90;

/**
 * Validates a list of SLO specs (the `slos` array of a config file) and
 * returns them normalised. Throws {@link SloSpecError} naming every bad field.
 *
 * @example
 * ```ts
 * const [checkout] = validateSlos([{ name: 'checkout-availability', service: 'orders', objective: 0.999 }]);
 * ```
 */
export function validateSlos(input: unknown, options: ValidateOptions = {}): SloSpec[] {
  const issues: SloSpecIssue[] = [];
  if (!Array.isArray(input)) throw new SloSpecError([{ path: 'slos', message: `must be an array of SLO specs, got ${describe(input)}` }]);
  const specs: SloSpec[] = [];
  const seen = new Map<string, number>();
  (input as unknown[]).forEach((raw, i) => {
    const path = `slos[${i}]`;
    const spec = validateOne(raw, path, issues, options);
    if (spec === undefined) return;
    const previous = seen.get(spec.name);
    if (previous !== undefined) issues.push({ path: `${path}.name`, message: `duplicate name ${JSON.stringify(spec.name)} (also slos[${previous}])` });
    seen.set(spec.name, i);
    specs.push(spec);
  });
  if (issues.length > 0) throw new SloSpecError(issues);
  return specs;
}

function validateOne(raw: unknown, path: string, issues: SloSpecIssue[], options: ValidateOptions): SloSpec | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    issues.push({ path, message: `must be an object, got ${describe(raw)}` });
    return undefined;
  }
  const s = raw as Record<string, unknown>;
  const before = issues.length;
  const bad = (field: string, message: string): void => {
    issues.push({ path: `${path}.${field}`, message });
  };

  const name = s.name;
  if (typeof name !== 'string' || !NAME.test(name)) bad('name', `must be a non-empty string of letters, digits, "-", "_", "." (starting with a letter or digit), got ${describe(name)}`);
  const service = s.service;
  if (typeof service !== 'string' || service.trim() === '') bad('service', `must be a non-empty string, got ${describe(service)}`);
  const description = s.description ?? '';
  if (typeof description !== 'string') bad('description', `must be a string, got ${describe(description)}`);

  const objective = s.objective;
  if (typeof objective !== 'number' || !(objective > 0 && objective < 1)) bad('objective', `must be a number strictly between 0 and 1 (0.999 for 99.9%), got ${describe(objective)}`);
  // Checks that depend on the objective or the window are skipped when those are wrong themselves.
  const errorBudget = typeof objective === 'number' && objective > 0 && objective < 1 ? roundBudget(1 - objective) : NaN;

  const parsedWindow = parseDuration(s.window ?? '30d');
  const windowOk = parsedWindow !== undefined && parsedWindow % DAY === 0 && parsedWindow <= MAX_WINDOW_DAYS * DAY;
  if (!windowOk) bad('window', `must be a whole number of days between 1d and ${MAX_WINDOW_DAYS}d (default "30d"; "28d" is common), got ${describe(s.window)}`);
  const windowMs = windowOk ? parsedWindow : undefined;

  const sli = validateSli(s.sli, `${path}.sli`, issues, options);
  const alerts = validateAlerts(s.alerts, `${path}.alerts`, issues, windowMs, errorBudget);

  const labels: Record<string, string> = {};
  if (s.labels !== undefined) {
    if (typeof s.labels !== 'object' || s.labels === null || Array.isArray(s.labels)) bad('labels', `must be an object of string values, got ${describe(s.labels)}`);
    else {
      for (const [key, value] of Object.entries(s.labels)) {
        if (!LABEL.test(key) || key.startsWith('__') || key.startsWith('sloth_')) bad(`labels.${key}`, 'must be a Prometheus label name (not starting with "__" or "sloth_")');
        else if (typeof value !== 'string') bad(`labels.${key}`, `must be a string, got ${describe(value)}`);
        else labels[key] = value;
      }
    }
  }

  if (issues.length > before) return undefined;
  return Object.freeze({
    name: name as string,
    service: service as string,
    description: description as string,
    objective: objective as number,
    errorBudget,
    windowMs: windowMs as number,
    sli: sli as Sli,
    alerts: alerts as BurnRateAlert[],
    labels: Object.freeze(labels),
  });
}

function validateSli(raw: unknown, path: string, issues: SloSpecIssue[], options: ValidateOptions): Sli | undefined {
  if (raw === undefined) return { kind: 'events' };
  if (typeof raw !== 'object' || raw === null) {
    issues.push({ path, message: `must be { kind: "events" } or { kind: "metrics", total, good | bad }, got ${describe(raw)}` });
    return undefined;
  }
  const sli = raw as Record<string, unknown>;
  if (sli.kind === 'events') return { kind: 'events' };
  if (sli.kind !== 'metrics') {
    issues.push({ path: `${path}.kind`, message: `must be "events" or "metrics", got ${describe(sli.kind)}` });
    return undefined;
  }
  const before = issues.length;
  const total = validateSelector(sli.total, `${path}.total`, issues, options);
  if (sli.total === undefined) issues.push({ path: `${path}.total`, message: 'is required for a metrics SLI' });
  if ((sli.good === undefined) === (sli.bad === undefined)) {
    issues.push({ path: `${path}.good`, message: 'give exactly one of "good" or "bad" next to "total"' });
  }
  const good = sli.good === undefined ? undefined : validateSelector(sli.good, `${path}.good`, issues, options);
  const bad = sli.bad === undefined ? undefined : validateSelector(sli.bad, `${path}.bad`, issues, options);
  if (issues.length > before || total === undefined) return undefined;
  return { kind: 'metrics', total, good, bad };
}

function validateSelector(raw: unknown, path: string, issues: SloSpecIssue[], options: ValidateOptions): MetricSelector | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'object' || raw === null) {
    issues.push({ path, message: `must be { name, labels? }, got ${describe(raw)}` });
    return undefined;
  }
  const r = raw as Record<string, unknown>;
  if (typeof r.name !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(r.name)) {
    issues.push({ path: `${path}.name`, message: `must be a Prometheus metric name, got ${describe(r.name)}` });
    return undefined;
  }
  const labels: Record<string, string> = {};
  if (r.labels !== undefined) {
    if (typeof r.labels !== 'object' || r.labels === null) {
      issues.push({ path: `${path}.labels`, message: `must be an object of string values, got ${describe(r.labels)}` });
      return undefined;
    }
    for (const [key, value] of Object.entries(r.labels)) {
      if (!LABEL.test(key) || typeof value !== 'string') {
        issues.push({ path: `${path}.labels.${key}`, message: `must be a label name with a string value, got ${describe(value)}` });
        return undefined;
      }
      labels[key] = value;
    }
  }
  const selector: MetricSelector = { name: r.name, labels };
  if (options.registry !== undefined) {
    const resolved = resolveMetric(options.registry, selector);
    if (typeof resolved === 'string') {
      issues.push({ path: `${path}.name`, message: resolved });
      return undefined;
    }
  }
  return selector;
}

function validateAlerts(raw: unknown, path: string, issues: SloSpecIssue[], windowMs: number | undefined, errorBudget: number): BurnRateAlert[] | undefined {
  const list = raw ?? defaultAlertPolicy;
  if (!Array.isArray(list)) {
    issues.push({ path, message: `must be an array of { severity, burnRate, longWindow, shortWindow }, got ${describe(raw)}` });
    return undefined;
  }
  const before = issues.length;
  const alerts: BurnRateAlert[] = [];
  (list as unknown[]).forEach((entry, j) => {
    const at = `${path}[${j}]`;
    if (typeof entry !== 'object' || entry === null) {
      issues.push({ path: at, message: `must be an object, got ${describe(entry)}` });
      return;
    }
    const a = entry as Record<string, unknown>;
    const n = issues.length;
    if (a.severity !== 'page' && a.severity !== 'ticket') issues.push({ path: `${at}.severity`, message: `must be "page" or "ticket", got ${describe(a.severity)}` });
    const burnRate = a.burnRate;
    if (typeof burnRate !== 'number' || !Number.isFinite(burnRate) || burnRate <= 0) {
      issues.push({ path: `${at}.burnRate`, message: `must be a positive finite number, got ${describe(burnRate)}` });
    } else if (Number.isFinite(errorBudget) && burnRate * errorBudget >= 1) {
      const max = roundBudget(1 / errorBudget);
      issues.push({ path: `${at}.burnRate`, message: `${burnRate}x can never be reached: at this objective a 100% error rate burns ${max}x (give this SLO its own alerts)` });
    }
    const longMs = parseDuration(a.longWindow);
    const shortMs = parseDuration(a.shortWindow);
    if (longMs === undefined || longMs < MINUTE) issues.push({ path: `${at}.longWindow`, message: `must be a duration of at least 1m ("1h", "6h", ...), got ${describe(a.longWindow)}` });
    if (shortMs === undefined || shortMs < MINUTE) issues.push({ path: `${at}.shortWindow`, message: `must be a duration of at least 1m ("5m", "30m", ...), got ${describe(a.shortWindow)}` });
    if (longMs !== undefined && shortMs !== undefined && shortMs >= longMs) {
      issues.push({ path: `${at}.shortWindow`, message: `must be shorter than longWindow (${formatDuration(shortMs)} >= ${formatDuration(longMs)})` });
    }
    if (longMs !== undefined && windowMs !== undefined && longMs > windowMs) {
      issues.push({ path: `${at}.longWindow`, message: `must fit in the SLO window (${formatDuration(longMs)} > ${formatDuration(windowMs)})` });
    }
    if (issues.length > n) return;
    alerts.push({ severity: a.severity as Severity, burnRate: burnRate as number, longWindowMs: longMs as number, shortWindowMs: shortMs as number });
  });
  return issues.length > before ? undefined : alerts;
}

/** `1 - objective` without the float noise (`1 - 0.999` is 0.0010000000000000009; this is 0.001). */
export function roundBudget(value: number): number {
  return Math.round(value * 1e12) / 1e12;
}

/** Every window a spec's alerts and budget are computed over, ascending and unique. */
export function windowsOf(spec: SloSpec): number[] {
  const set = new Set<number>([spec.windowMs]);
  for (const a of spec.alerts) {
    set.add(a.longWindowMs);
    set.add(a.shortWindowMs);
  }
  return [...set].sort((a, b) => a - b);
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    return JSON.stringify(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
