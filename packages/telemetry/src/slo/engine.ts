/**
 * The in-process SLO engine: counts good/total events into bounded buckets,
 * computes error budget and burn rates over any window, and evaluates the
 * multiwindow, multi-burn-rate alert conditions of each SLO on a timer.
 *
 * - `record()` is a few additions into fixed-size arrays: it never allocates,
 *   evaluates or waits. Evaluation runs every `evaluateEveryMs` on the
 *   injected clock (or when `evaluate()` / `tick()` is called).
 * - Burn rate over a window = error ratio in the window / error budget
 *   (`1 - objective`). 1x spends the budget exactly by the end of the SLO
 *   window; 14.4x spends 2% of a 30-day budget in one hour.
 * - A condition holds while both its windows burn strictly faster than its
 *   threshold (a relative 1e-9 of slack absorbs float noise, so exactly 1x does
 *   not flap on the 1x ticket). The conditions of one severity are OR-ed into
 *   one alert per SLO and severity, as Sloth's rules do.
 * - Transitions (firing, resolved) are emitted as `alert` events, kept in a
 *   bounded history, and handed to the sinks (webhooks), which deliver them in
 *   the background.
 */
import { systemClock, type Clock, type Timer } from '@bulwark/resilience';
import { Counter, type Registry } from 'prom-client';
import type { AlertSink, ConditionStatus, SloAlert } from './alert.js';
import { TieredCounts, defaultResolution, type Resolution } from './buckets.js';
import { formatDuration } from './duration.js';
import { InvalidRecordError, SloNotFoundError, SloSpecError } from './errors.js';
import { Emitter } from './events.js';
import { MetricCounterReader, resolveMetric, type MetricRegistry } from './metric-source.js';
import { EVENTS_TOTAL_METRIC, GOOD_EVENTS_METRIC } from './prometheus-rules.js';
import { validateSlos, windowsOf, type Severity, type SloSpec, type SloSpecInput } from './spec.js';

export interface SloEngineOptions {
  slos: readonly SloSpecInput[];
  /** Default: the system clock. Tests pass a `VirtualClock`. */
  clock?: Clock;
  /** Wall time for the ISO timestamps on alerts. Default `Date.now`. */
  wallClock?: () => number;
  /** How often to poll metric SLIs and evaluate alerts. Default 10 000 ms; 0 turns the timer off (call `tick()` yourself). */
  evaluateEveryMs?: number;
  /**
   * A prom-client registry. Required when an SLI reads metrics (the spec's
   * metric names are checked against it). When it is a full `Registry`, events
   * SLIs are also published to it as `bulwark_slo_events_total` and
   * `bulwark_slo_good_events_total{slo, service}`, the series the exported
   * Prometheus rules read.
   */
  registry?: MetricRegistry;
  /** Where alert transitions go besides the `alert` event: webhooks (`webhook({ url })`) or your own. */
  sinks?: readonly AlertSink[];
  /** Bucket sizes. Default 1-minute buckets for windows up to 6 h, hourly ones beyond. */
  resolution?: Partial<Resolution>;
  /** Transitions kept for `history()`. Default 200. */
  historyLimit?: number;
}

/** Error budget over the SLO window. */
export interface BudgetStatus {
  /** Events in the window. */
  totalEvents: number;
  badEvents: number;
  /** Bad events the objective allows for the events seen: `(1 - objective) * totalEvents`. */
  allowedBadEvents: number;
  /** `allowedBadEvents - badEvents` (negative when overspent). */
  remainingEvents: number;
  /** `1 - badEvents / allowedBadEvents`: 1 untouched, 0 spent, negative overspent. 1 when there is no traffic. */
  remainingFraction: number;
}

/** Everything the engine knows about one SLO right now. */
export interface SloStatus {
  name: string;
  service: string;
  description: string;
  objective: number;
  window: string;
  labels: Record<string, string>;
  /** Good/total over the SLO window; 1 with no traffic. */
  sli: number;
  budget: BudgetStatus;
  /** Burn rate per window of the spec (keys like `"5m"`, `"1h"`, `"30d"`). */
  burnRates: Record<string, number>;
  conditions: ConditionStatus[];
  /** Alerts of this SLO that are firing. */
  alerts: SloAlert[];
  /** Engine clock time of this reading. */
  at: number;
}

export interface SloEngineEvents {
  /** An alert started firing or resolved. */
  alert: SloAlert;
  /** A metric SLI could not be read; the engine carries on with the others. */
  error: { slo: string; error: unknown };
}

/** Feeds one events SLO: hold on to it in hot paths to skip the lookup by name. */
export interface SloRecorder {
  readonly name: string;
  /** Counts `total` events of which `good` were good. */
  record(good: number, total: number): void;
  recordGood(count?: number): void;
  recordBad(count?: number): void;
}

/** A relative tolerance on thresholds: float noise at exactly the threshold is not "above". */
const TOLERANCE = 1e-9;

class SloState implements SloRecorder {
  readonly name: string;
  readonly counts: TieredCounts;
  readonly windows: number[];
  readonly firing = new Map<Severity, SloAlert>();
  readers: { total: MetricCounterReader; good: MetricCounterReader | undefined; bad: MetricCounterReader | undefined } | undefined;
  published: { good: { inc(value: number): void }; total: { inc(value: number): void } } | undefined;

  constructor(
    readonly spec: SloSpec,
    private readonly clock: Clock,
    resolution: Resolution,
  ) {
    this.name = spec.name;
    this.windows = windowsOf(spec);
    this.counts = new TieredCounts(resolution, spec.windowMs);
  }

  record(good: number, total: number): void {
    if (!(good >= 0 && total >= good && total < Infinity)) {
      throw new InvalidRecordError(this.name, `record(good, total) needs finite counts with 0 <= good <= total, got (${good}, ${total})`);
    }
    if (this.readers !== undefined) throw new InvalidRecordError(this.name, 'this SLO reads its events from metrics; record() is for events SLIs');
    if (total === 0) return;
    this.counts.add(this.clock.now(), good, total);
    if (this.published !== undefined) {
      this.published.total.inc(total);
      this.published.good.inc(good);
    }
  }

  recordGood(count = 1): void {
    this.record(count, count);
  }

  recordBad(count = 1): void {
    this.record(0, count);
  }

  burnRate(now: number, windowMs: number): number {
    const { good, total } = this.counts.sum(now, windowMs);
    return total > 0 ? (total - good) / total / this.spec.errorBudget : 0;
  }
}

/** The SLO engine; see the module comment. Create it with {@link createSloEngine}. */
export class SloEngine {
  readonly on: Emitter<SloEngineEvents>['on'];
  readonly clock: Clock;
  private readonly events = new Emitter<SloEngineEvents>('engine');
  private readonly states = new Map<string, SloState>();
  private readonly wallClock: () => number;
  private readonly sinks: readonly AlertSink[];
  private readonly historyLimit: number;
  private readonly log: SloAlert[] = [];
  private readonly everyMs: number;
  private timer: Timer | undefined = undefined;
  private closed = false;
  private sequence = 0;

  constructor(options: SloEngineOptions) {
    const specs = validateSlos(options.slos, { registry: options.registry });
    const resolution = { ...defaultResolution, ...options.resolution };
    checkResolution(resolution);
    this.clock = options.clock ?? systemClock;
    this.wallClock = options.wallClock ?? Date.now;
    this.sinks = options.sinks ?? [];
    this.historyLimit = options.historyLimit ?? 200;
    this.everyMs = options.evaluateEveryMs ?? 10_000;
    if (!(this.everyMs >= 0 && Number.isFinite(this.everyMs))) throw new SloSpecError([{ path: 'evaluateEveryMs', message: `must be a non-negative number of milliseconds, got ${String(options.evaluateEveryMs)}` }]);
    specs.forEach((spec, i) => {
      const state = new SloState(spec, this.clock, resolution);
      if (spec.sli.kind === 'metrics') {
        if (options.registry === undefined) throw new SloSpecError([{ path: `slos[${i}].sli`, message: 'reads metrics, so the engine needs the `registry` option' }]);
        const reader = (selector: { name: string; labels?: Readonly<Record<string, string>> }): MetricCounterReader => {
          const resolved = resolveMetric(options.registry as MetricRegistry, selector);
          if (typeof resolved === 'string') throw new SloSpecError([{ path: `slos[${i}].sli`, message: resolved }]);
          return new MetricCounterReader(resolved, selector.labels ?? {});
        };
        const sli = spec.sli;
        state.readers = { total: reader(sli.total), good: sli.good && reader(sli.good), bad: sli.bad && reader(sli.bad) };
      } else if (isFullRegistry(options.registry)) {
        const labels = { slo: spec.name, service: spec.service };
        state.published = {
          total: eventCounter(options.registry, EVENTS_TOTAL_METRIC, 'Events counted by an SLO engine, per SLO.').labels(labels),
          good: eventCounter(options.registry, GOOD_EVENTS_METRIC, 'Good events counted by an SLO engine, per SLO.').labels(labels),
        };
      }
      this.states.set(spec.name, state);
    });
    this.on = this.events.on.bind(this.events);
    if (this.everyMs > 0) this.schedule();
  }

  /** The validated specs, in the order given. */
  specs(): SloSpec[] {
    return [...this.states.values()].map((s) => s.spec);
  }

  /** The recorder of an events SLO. Throws {@link SloNotFoundError} for an unknown name. */
  slo(name: string): SloRecorder {
    return this.state(name);
  }

  /** Counts `total` events of SLO `name`, `good` of them good. Synchronous and allocation-free. */
  record(name: string, good: number, total: number): void {
    this.state(name).record(good, total);
  }

  /** Burn rate of SLO `name` over the last `windowMs` (0 with no traffic). Windows beyond the SLO window are cut to it. */
  burnRate(name: string, windowMs: number): number {
    return this.state(name).burnRate(this.clock.now(), windowMs);
  }

  /** Budget, burn rates, conditions and firing alerts of one SLO, computed now. */
  status(name: string): SloStatus {
    return this.statusOf(this.state(name), this.clock.now());
  }

  /** {@link status} of every SLO. */
  statuses(): SloStatus[] {
    const now = this.clock.now();
    return [...this.states.values()].map((s) => this.statusOf(s, now));
  }

  /** Alerts firing now, across SLOs. */
  alerts(): SloAlert[] {
    return [...this.states.values()].flatMap((s) => [...s.firing.values()]).map(copy);
  }

  /** The last transitions (firing and resolved), oldest first, at most `historyLimit`. */
  history(): SloAlert[] {
    return this.log.map(copy);
  }

  /**
   * Polls metric SLIs, then evaluates. The timer calls this; call it yourself
   * when `evaluateEveryMs` is 0. Never rejects: a metric read that fails is
   * reported as an `error` event.
   */
  async tick(): Promise<void> {
    for (const state of this.states.values()) {
      if (state.readers === undefined) continue;
      try {
        const { total, good, bad } = state.readers;
        const t = await total.increase();
        const g = good !== undefined ? await good.increase() : t - (bad === undefined ? 0 : await bad.increase());
        const clampedTotal = Math.max(0, t);
        if (clampedTotal > 0) state.counts.add(this.clock.now(), Math.min(clampedTotal, Math.max(0, g)), clampedTotal);
      } catch (error) {
        this.events.emit('error', { slo: state.name, error });
      }
    }
    this.evaluate();
  }

  /** Evaluates every SLO's alert conditions now and emits the transitions. Synchronous. */
  evaluate(): void {
    const now = this.clock.now();
    for (const state of this.states.values()) {
      const burn = new Map(state.windows.map((w) => [w, state.burnRate(now, w)]));
      const conditions = conditionsOf(state.spec, burn);
      const budgetRemaining = 1 - (burn.get(state.spec.windowMs) ?? 0);
      for (const severity of ['page', 'ticket'] as const) {
        const own = conditions.filter((c) => c.severity === severity);
        if (own.length === 0) continue;
        const met = own.some((c) => c.met);
        const active = state.firing.get(severity);
        if (met && active === undefined) {
          const alert: SloAlert = {
            id: `${state.name}/${severity}/${++this.sequence}`,
            slo: state.name,
            service: state.spec.service,
            severity,
            state: 'firing',
            firedAt: now,
            firedAtTime: new Date(this.wallClock()).toISOString(),
            resolvedAt: undefined,
            resolvedAtTime: undefined,
            conditions: own,
            budgetRemaining,
            labels: { ...state.spec.labels },
          };
          state.firing.set(severity, alert);
          this.transition(alert);
        } else if (!met && active !== undefined) {
          state.firing.delete(severity);
          this.transition({ ...active, state: 'resolved', resolvedAt: now, resolvedAtTime: new Date(this.wallClock()).toISOString(), conditions: own, budgetRemaining });
        }
      }
    }
  }

  /** Stops the timer and closes the sinks (queued webhook deliveries are dropped and counted). */
  async close(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    await Promise.all(this.sinks.map(async (s) => s.close?.()));
  }

  private transition(alert: SloAlert): void {
    this.log.push(alert);
    if (this.log.length > this.historyLimit) this.log.splice(0, this.log.length - this.historyLimit);
    this.events.emit('alert', copy(alert));
    for (const sink of this.sinks) {
      try {
        sink.notify(copy(alert));
      } catch (error) {
        process.emitWarning(`bulwark: an SLO alert sink threw: ${String(error)}`);
      }
    }
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = this.clock.setTimer(() => {
      void this.tick().finally(() => this.schedule());
    }, this.everyMs);
  }

  private state(name: string): SloState {
    const state = this.states.get(name);
    if (state === undefined) throw new SloNotFoundError(name);
    return state;
  }

  private statusOf(state: SloState, now: number): SloStatus {
    const spec = state.spec;
    const burn = new Map(state.windows.map((w) => [w, state.burnRate(now, w)]));
    const { good, total } = state.counts.sum(now, spec.windowMs);
    const bad = total - good;
    const allowed = spec.errorBudget * total;
    return {
      name: spec.name,
      service: spec.service,
      description: spec.description,
      objective: spec.objective,
      window: formatDuration(spec.windowMs),
      labels: { ...spec.labels },
      sli: total > 0 ? good / total : 1,
      budget: {
        totalEvents: total,
        badEvents: bad,
        allowedBadEvents: allowed,
        remainingEvents: allowed - bad,
        remainingFraction: 1 - (burn.get(spec.windowMs) ?? 0),
      },
      burnRates: Object.fromEntries([...burn].map(([w, b]) => [formatDuration(w), b])),
      conditions: conditionsOf(spec, burn),
      alerts: [...state.firing.values()].map(copy),
      at: now,
    };
  }
}

function conditionsOf(spec: SloSpec, burn: Map<number, number>): ConditionStatus[] {
  return spec.alerts.map((a) => {
    const longBurnRate = burn.get(a.longWindowMs) ?? 0;
    const shortBurnRate = burn.get(a.shortWindowMs) ?? 0;
    const threshold = a.burnRate * (1 + TOLERANCE);
    return {
      severity: a.severity,
      burnRate: a.burnRate,
      longWindow: formatDuration(a.longWindowMs),
      shortWindow: formatDuration(a.shortWindowMs),
      longBurnRate,
      shortBurnRate,
      met: longBurnRate > threshold && shortBurnRate > threshold,
    };
  });
}

function checkResolution(r: Resolution): void {
  const issues = (['fineBucketMs', 'fineSpanMs', 'coarseBucketMs'] as const)
    .filter((k) => !(Number.isFinite(r[k]) && r[k] > 0))
    .map((k) => ({ path: `resolution.${k}`, message: `must be a positive number of milliseconds, got ${String(r[k])}` }));
  if (issues.length === 0 && r.fineSpanMs < r.fineBucketMs) issues.push({ path: 'resolution.fineSpanMs', message: 'must be at least fineBucketMs' });
  if (issues.length === 0 && r.coarseBucketMs < r.fineBucketMs) issues.push({ path: 'resolution.coarseBucketMs', message: 'must be at least fineBucketMs' });
  if (issues.length > 0) throw new SloSpecError(issues);
}

function isFullRegistry(registry: MetricRegistry | undefined): registry is Registry {
  return registry !== undefined && typeof (registry as Partial<Registry>).registerMetric === 'function';
}

/** The engine's event counter in `registry`, created on first use and shared by every engine on that registry. */
function eventCounter(registry: Registry, name: string, help: string): Counter<'slo' | 'service'> {
  const existing = registry.getSingleMetric(name);
  if (existing instanceof Counter) return existing;
  return new Counter({ name, help, labelNames: ['slo', 'service'], registers: [registry] });
}

function copy(alert: SloAlert): SloAlert {
  return { ...alert, conditions: alert.conditions.map((c) => ({ ...c })), labels: { ...alert.labels } };
}

/**
 * Creates an SLO engine. Throws {@link SloSpecError} naming the field when a spec is invalid.
 *
 * @example
 * ```ts
 * const slos = createSloEngine({ slos: [{ name: 'checkout', service: 'orders', objective: 0.999 }] });
 * const checkout = slos.slo('checkout');
 * app.addHook('onResponse', (req, reply, done) => { reply.statusCode < 500 ? checkout.recordGood() : checkout.recordBad(); done(); });
 * slos.on('alert', (a) => log.warn(a, 'SLO alert'));
 * ```
 */
export function createSloEngine(options: SloEngineOptions): SloEngine {
  return new SloEngine(options);
}
