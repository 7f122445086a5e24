/**
 * Hedged requests ("The Tail at Scale", Dean & Barroso, 2013): when an
 * attempt is slower than usual, send the same request again and take
 * whichever answer comes first.
 *
 * - Every attempt runs in its own child scope. The primary starts at once;
 *   after `delay` (fixed, or an observed latency quantile such as p95) with no
 *   success yet, a hedge starts, and another after each further `delay`, up to
 *   `maxHedges`, each one only if the hedge budget grants it.
 * - The first success wins: every other attempt still running is aborted with
 *   `HedgeLostError`, the pending timer is cancelled, every attempt scope is
 *   disposed.
 * - A failed attempt does not end the race while another is running. Once
 *   every launched attempt has failed, the call fails at once with the
 *   primary's error, as thrown: hedging cuts latency, it does not retry
 *   failures (put a `retry` outside it for that), so no hedge is launched
 *   after everything already launched has failed.
 * - When the caller's scope aborts (deadline, caller's signal), the call
 *   rejects with its reason at once, every attempt is aborted with it, and no
 *   further hedge starts. No hedge is scheduled to start at or past the deadline.
 * - Only idempotent operations are hedged: an operation marked
 *   `idempotent: false` without an `idempotencyKey` runs alone, unhedged.
 *
 * Each attempt's scope is the ambient scope while it runs, so nested calls
 * inside a losing attempt are cancelled with it.
 */
import { systemClock, type Clock, type Timer } from '../clock.js';
import { HedgeLostError, InvalidOptionError } from '../errors.js';
import { PolicyEvents } from '../events.js';
import * as check from '../options.js';
import { PolicyBase, type Chain } from '../policy.js';
import { rejectSoon } from '../reject-soon.js';
import { runInScope, type Scope } from '../scope.js';
import { HedgeBudget, type HedgeBudgetOptions } from './hedge-budget.js';
import { LatencyQuantile } from './latency-quantile.js';

/**
 * An adaptive hedge delay: hedge once an attempt has taken longer than the
 * observed `quantile` of recent call latencies.
 *
 * @example
 * ```ts
 * const delay: QuantileDelay = { quantile: 0.95, minSamples: 50, initialMs: 100, minMs: 5, maxMs: 1_000 };
 * const search = hedge({ delay });
 * ```
 */
export interface QuantileDelay {
  /** Which quantile of recent latencies to wait for, 0 < q < 1 (0.95 for p95). */
  quantile: number;
  /** Samples needed before the quantile is trusted; until then `initialMs` is used. Default 20. */
  minSamples?: number;
  /** The delay used until `minSamples` latencies have been seen (and after a quiet spell forgot them). */
  initialMs: number;
  /** Never hedge sooner than this. Default 0. */
  minMs?: number;
  /** Never wait longer than this to hedge. Default: no limit. */
  maxMs?: number;
  /** Latencies are remembered for between one and two windows of this length. Default 30 s. */
  windowMs?: number;
}

/**
 * Options of `hedge()`.
 *
 * @example
 * ```ts
 * const options: HedgeOptions = { name: 'search', delay: 50, maxHedges: 2, budget: { ratio: 0.05 } };
 * const search = hedge(options);
 * ```
 */
export interface HedgeOptions {
  /** Name in events. Default `"hedge"`. */
  name?: string;
  /** How long an attempt may run before a hedge starts: milliseconds, or a latency quantile. */
  delay: number | QuantileDelay;
  /** Extra attempts at most, the primary not included. Default 1. */
  maxHedges?: number;
  /**
   * The budget that caps the extra load: a `HedgeBudget` (to share one among
   * policies; it must run on this policy's clock), or options for this
   * policy's own. Default: 10 % of recent requests, plus 1 hedge per second.
   */
  budget?: HedgeBudget | HedgeBudgetOptions;
  clock?: Clock;
}

/**
 * Events of a hedge policy, for `policy.on(type, listener)`.
 *
 * @example
 * ```ts
 * search.on('hedge', (e) => metrics.increment('hedges', { attempt: e.attempt }));
 * search.on('hedgeWon', (e) => metrics.histogram('hedge_won_ms', e.elapsedMs));
 * ```
 */
export interface HedgeEvents {
  /** A hedge started. `attempt` is its place in the race: 2 for the first hedge (the primary is 1). */
  hedge: { attempt: number; delayMs: number };
  /** A hedge, not the primary, answered first, `elapsedMs` after the primary started. */
  hedgeWon: { attempt: number; elapsedMs: number };
  /** The hedge budget refused the hedge that would have been `attempt`; the call goes on without it. */
  budgetExhausted: { attempt: number };
}

/**
 * The hedging policy. Build it with `hedge()`.
 *
 * The adaptive delay learns from successful calls: it records the time from
 * the primary's start to the first success. When a hedge wins, that is a
 * lower bound of the primary's own latency (it was still running), and it is
 * at least the hedge delay; recording the hedge's own, shorter, duration
 * instead would drag the quantile down with every hedge won, which triggers
 * more hedges, which win more: the delay would sink until the budget stops
 * it. With the time since the primary started, the share of calls slower
 * than the current delay is counted exactly, which is all a quantile needs.
 *
 * @example
 * ```ts
 * const search = new HedgePolicy({ delay: { quantile: 0.95, initialMs: 80 }, maxHedges: 1 });
 * const hits = await search.execute(({ signal }) => index.query(terms, { signal }));
 * ```
 */
export class HedgePolicy extends PolicyBase {
  readonly maxHedges: number;
  readonly budget: HedgeBudget;
  /** The latency estimator behind an adaptive delay; `undefined` with a fixed delay. */
  readonly latency: LatencyQuantile | undefined;
  readonly events: PolicyEvents<HedgeEvents>;
  readonly on: PolicyEvents<HedgeEvents>['on'];
  private readonly fixedDelayMs: number | undefined;
  private readonly quantile: number;
  private readonly minSamples: number;
  private readonly initialMs: number;
  private readonly minMs: number;
  private readonly maxMs: number;

  constructor(options: HedgeOptions) {
    const p = 'hedge';
    if (typeof options !== 'object' || options === null) throw new InvalidOptionError(p, 'options', options, 'an object with a delay');
    super(check.name(p, options.name ?? 'hedge'), options.clock ?? systemClock);
    this.maxHedges = check.integer(p, 'maxHedges', options.maxHedges ?? 1, 1, 1_000);
    const delay = options.delay;
    if (typeof delay === 'number') {
      this.fixedDelayMs = check.duration(p, 'delay', delay);
      this.quantile = 0;
      this.minSamples = 0;
      this.initialMs = this.minMs = this.fixedDelayMs;
      this.maxMs = this.fixedDelayMs;
      this.latency = undefined;
    } else if (typeof delay === 'object' && delay !== null) {
      this.fixedDelayMs = undefined;
      const q = delay.quantile;
      if (typeof q !== 'number' || !(q > 0 && q < 1)) throw new InvalidOptionError(p, 'delay.quantile', q, 'a number strictly between 0 and 1 (0.95 for p95)');
      this.quantile = q;
      this.minSamples = check.integer(p, 'delay.minSamples', delay.minSamples ?? 20, 1);
      this.initialMs = check.duration(p, 'delay.initialMs', delay.initialMs);
      this.minMs = check.duration(p, 'delay.minMs', delay.minMs ?? 0);
      this.maxMs = check.duration(p, 'delay.maxMs', delay.maxMs ?? Infinity, { allowInfinity: true });
      if (this.maxMs < this.minMs) throw new InvalidOptionError(p, 'delay.maxMs', this.maxMs, `at least delay.minMs (${this.minMs})`);
      if (this.initialMs < this.minMs || this.initialMs > this.maxMs) {
        throw new InvalidOptionError(p, 'delay.initialMs', this.initialMs, `between delay.minMs (${this.minMs}) and delay.maxMs (${this.maxMs})`);
      }
      const windowMs = check.duration(p, 'delay.windowMs', delay.windowMs ?? 30_000, { allowZero: false });
      this.latency = new LatencyQuantile({ windowMs, clock: this.clock });
    } else {
      throw new InvalidOptionError(p, 'delay', delay, 'a number of milliseconds or { quantile, initialMs }');
    }
    const budget = options.budget;
    if (isHedgeBudget(budget)) {
      if (budget.clock !== this.clock) throw new InvalidOptionError(p, 'budget', 'a HedgeBudget on another clock', 'a HedgeBudget on the policy clock');
      this.budget = budget;
    } else if (budget === undefined || isPlainObject(budget)) {
      this.budget = new HedgeBudget({ ...budget, clock: this.clock });
    } else {
      // A `RetryBudget` lands here too: see `HedgeBudget` for why hedges keep a budget of their own.
      throw new InvalidOptionError(p, 'budget', budget, 'a HedgeBudget or a plain HedgeBudgetOptions object');
    }
    this.events = new PolicyEvents('hedge', this.name);
    this.on = this.events.on.bind(this.events);
  }

  /**
   * The delay a call starting now waits before its first hedge: the fixed
   * delay, or the latency quantile clamped to `[minMs, maxMs]` (`initialMs`
   * while fewer than `minSamples` latencies are remembered).
   *
   * @example
   * ```ts
   * metrics.gauge('hedge_delay_ms', search.delayMs());
   * ```
   */
  delayMs(): number {
    if (this.fixedDelayMs !== undefined) return this.fixedDelayMs;
    const latency = this.latency as LatencyQuantile;
    if (latency.count < this.minSamples) return this.initialMs;
    const q = latency.quantile(this.quantile) ?? this.initialMs;
    return q < this.minMs ? this.minMs : q > this.maxMs ? this.maxMs : q;
  }

  run<T>(chain: Chain<T>, scope: Scope, index: number): Promise<T> {
    if (scope.aborted) return rejectSoon(scope.reason);
    // Unsafe calls count too: the budget caps hedges as a share of all the traffic to the dependency.
    this.budget.recordRequest();
    if (!scope.idempotent && scope.idempotencyKey === undefined) return chain.next(scope, index);
    return new Promise<T>((resolve, reject) => void new Race(this, chain, scope, index, resolve, reject));
  }
}

/**
 * One call's race of attempts. A class rather than closures: one allocation
 * per call instead of one per callback, and no per-call named functions.
 * Settles through `resolve` / `reject` exactly once.
 */
class Race<T> {
  /** Scopes of the attempts still running, by place in the race (0 = the primary); `undefined` once failed. */
  private readonly running: (Scope | undefined)[] = [];
  private readonly started: number;
  private readonly delayMs: number;
  private readonly stopAbort: () => void;
  private inFlight = 0;
  private settled = false;
  private primaryError: unknown = undefined;
  private timer: Timer | undefined = undefined;

  constructor(
    private readonly policy: HedgePolicy,
    private readonly chain: Chain<T>,
    private readonly scope: Scope,
    private readonly index: number,
    private readonly resolve: (value: T) => void,
    private readonly reject: (reason: unknown) => void,
  ) {
    this.started = policy.clock.now();
    this.delayMs = policy.delayMs();
    this.stopAbort = scope.onAbort((reason) => this.abandon(reason));
    this.launch(0);
    // The primary may have aborted the caller's scope synchronously (and so settled the race).
    if (!this.settled) this.schedule(1);
  }

  /** Starts the attempt at `place` (0 = the primary) in its own child scope, ambient while it runs. */
  private launch(place: number): void {
    const attempt = this.scope.child(this.scope.deadline);
    attempt.markAbortable();
    this.running.push(attempt);
    this.inFlight++;
    let result: Promise<T>;
    try {
      result = runInScope(attempt, next, this.chain, attempt, this.index);
    } catch (error) {
      result = Promise.reject(error);
    }
    result.then(
      (value) => this.succeeded(place, attempt, value),
      (error: unknown) => this.failed(place, attempt, error),
    );
  }

  /** Arms the timer that launches the hedge at `place`, unless it would start at or past the deadline. */
  private schedule(place: number): void {
    if (this.policy.clock.now() + this.delayMs >= this.scope.deadline) return;
    this.timer = this.policy.clock.setTimer(() => this.hedge(place), this.delayMs);
  }

  private hedge(place: number): void {
    this.timer = undefined;
    if (this.settled || this.scope.aborted) return;
    const { budget, events, maxHedges } = this.policy;
    if (!budget.tryHedge()) {
      // No further hedge for this call: the budget is spent for now.
      if (events.wants('budgetExhausted')) events.emit('budgetExhausted', { attempt: place + 1 });
      return;
    }
    if (events.wants('hedge')) events.emit('hedge', { attempt: place + 1, delayMs: this.delayMs });
    this.launch(place);
    if (place < maxHedges && !this.settled) this.schedule(place + 1);
  }

  private succeeded(place: number, winner: Scope, value: T): void {
    if (this.settled) return;
    const elapsedMs = this.policy.clock.now() - this.started;
    this.policy.latency?.record(elapsedMs);
    let lost: HedgeLostError | undefined;
    for (const attempt of this.running) {
      if (attempt !== undefined && attempt !== winner) attempt.abort((lost ??= new HedgeLostError()));
    }
    this.finish();
    const events = this.policy.events;
    if (place > 0 && events.wants('hedgeWon')) events.emit('hedgeWon', { attempt: place + 1, elapsedMs });
    this.resolve(value);
  }

  private failed(place: number, attempt: Scope, error: unknown): void {
    if (this.settled) return;
    if (place === 0) this.primaryError = error;
    this.running[place] = undefined;
    attempt.dispose();
    // Hedging cuts latency, it does not retry: once every launched attempt has failed, no other starts.
    if (--this.inFlight === 0) {
      this.finish();
      this.reject(this.primaryError);
    }
  }

  /** The caller's scope aborted: reject with its reason, now, whatever the attempts do. */
  private abandon(reason: unknown): void {
    if (this.settled) return;
    // Children hear their parent's abort already; this covers a parent nothing was expected to abort.
    for (const attempt of this.running) attempt?.abort(reason);
    this.finish();
    this.reject(reason);
  }

  private finish(): void {
    this.settled = true;
    if (this.timer !== undefined) {
      this.timer.cancel();
      this.timer = undefined;
    }
    this.stopAbort();
    for (const attempt of this.running) attempt?.dispose();
  }
}

function next<T>(chain: Chain<T>, scope: Scope, index: number): Promise<T> {
  return chain.next(scope, index);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function isHedgeBudget(value: unknown): value is HedgeBudget {
  return typeof value === 'object' && value !== null && typeof (value as HedgeBudget).tryHedge === 'function' && typeof (value as HedgeBudget).recordRequest === 'function';
}

/**
 * Hedges slow attempts: after `delay` without an answer, sends the request
 * again (up to `maxHedges` times) and takes the first success. Only for
 * idempotent operations; a budget caps the extra load.
 *
 * @example
 * ```ts
 * const search = hedge({ delay: { quantile: 0.95, initialMs: 80, maxMs: 500 }, maxHedges: 1 });
 * const hits = await search.execute(({ signal }) => index.query(terms, { signal }));
 * ```
 */
export function hedge(options: HedgeOptions): HedgePolicy {
  return new HedgePolicy(options);
}
