/**
 * Circuit breaker: stops calling a dependency that is failing or slow, lets a
 * few probes through after a pause, and closes again when they succeed.
 *
 *   closed ──(failure or slow-call rate ≥ threshold, over ≥ minimumCalls)──▶ open
 *   open ──(open duration elapsed, on the next call)──▶ half-open
 *   half-open ──(all permitted probes succeed)──▶ closed
 *   half-open ──(any probe fails or is slow)──▶ open (duration grows by `openDuration.multiplier`)
 *   any ──isolate()──▶ isolated ──reset()──▶ closed
 *
 * Outcomes of calls admitted before a transition are ignored after it, and a
 * call its own caller cancelled counts as nothing. Rejections are
 * `CircuitOpenError`s built without a stack trace, so failing fast costs a few
 * hundred nanoseconds.
 */
import { systemClock, type Clock } from '../clock.js';
import { isDependencyFailure } from '../classify.js';
import { CircuitOpenError, fastError, isBulwarkError, InvalidOptionError } from '../errors.js';
import { PolicyEvents } from '../events.js';
import * as check from '../options.js';
import { PolicyBase, type Chain } from '../policy.js';
import { rejectSoon } from '../reject-soon.js';
import type { Scope } from '../scope.js';
import { CountWindow, TimeWindow, type OutcomeCounts, type OutcomeWindow } from './outcome-window.js';

export type CircuitState = 'closed' | 'open' | 'half-open' | 'isolated';

export type BreakerWindowOptions = { type: 'count'; size: number } | { type: 'time'; durationMs: number; slices?: number };

export interface CircuitBreakerOptions {
  /** Name in events and errors. Default `"breaker"`. */
  name?: string;
  /** Default: the last 100 calls. */
  window?: BreakerWindowOptions;
  /** Percentage of failed calls (0 < x ≤ 100) at which the breaker opens. Default 50. */
  failureRateThreshold?: number;
  /** Calls slower than this count as slow. Default: none is slow. */
  slowCallDurationMs?: number;
  /** Percentage of slow calls (0 < x ≤ 100) at which the breaker opens. Default 100. */
  slowCallRateThreshold?: number;
  /** Calls the window must hold before rates are judged. Default 20. */
  minimumCalls?: number;
  /** How long to stay open; `multiplier` grows it on each reopening without a close in between. */
  openDuration?: { baseMs?: number; multiplier?: number; maxMs?: number };
  /** Probes admitted in half-open; all must succeed to close. Default 3. */
  halfOpenCalls?: number;
  /** Which errors count against the dependency. Default: `isDependencyFailure` (not 4xx, not other policies' rejections). */
  isFailure?: (error: unknown) => boolean;
  /** State to start from, as produced by `snapshot()`. */
  initialState?: CircuitBreakerSnapshot;
  clock?: Clock;
}

/** A breaker's state as plain data: store it, ship it, restore it with `initialState`. */
export interface CircuitBreakerSnapshot {
  state: CircuitState;
  /** Milliseconds left before an open breaker admits a probe. */
  openRemainingMs: number;
  /** Openings since the breaker was last closed (drives the growing open duration). */
  consecutiveOpens: number;
  /** The window's counts at the time of the snapshot (informational; a restored breaker starts with an empty window). */
  window: OutcomeCounts;
}

export interface CircuitBreakerEvents {
  stateChange: { from: CircuitState; to: CircuitState; failureRate: number; slowCallRate: number; openForMs: number };
  /** A call was refused. */
  rejected: { state: CircuitState };
}

export class CircuitBreakerPolicy extends PolicyBase {
  readonly events: PolicyEvents<CircuitBreakerEvents>;
  readonly on: PolicyEvents<CircuitBreakerEvents>['on'];
  readonly failureRateThreshold: number;
  readonly slowCallRateThreshold: number;
  readonly slowCallDurationMs: number;
  readonly minimumCalls: number;
  readonly halfOpenCalls: number;
  private readonly tracksSlow: boolean;
  private readonly openBaseMs: number;
  private readonly openMultiplier: number;
  private readonly openMaxMs: number;
  private readonly isFailure: (error: unknown) => boolean;
  private readonly window: OutcomeWindow;
  private current: CircuitState = 'closed';
  private generation = 0;
  private openUntil = 0;
  private consecutiveOpens = 0;
  private probesAdmitted = 0;
  private probesSucceeded = 0;
  private lastRates = { failureRate: 0, slowCallRate: 0 };

  constructor(options: CircuitBreakerOptions = {}) {
    const p = 'circuitBreaker';
    super(check.name(p, options.name ?? 'breaker'), options.clock ?? systemClock);
    const window = options.window ?? { type: 'count', size: 100 };
    if (window.type === 'count') this.window = new CountWindow(check.integer(p, 'window.size', window.size, 1, 1_000_000));
    else if (window.type === 'time') {
      const duration = check.duration(p, 'window.durationMs', window.durationMs, { allowZero: false });
      this.window = new TimeWindow(this.clock, duration, check.integer(p, 'window.slices', window.slices ?? 10, 1, 3_600));
    } else throw new InvalidOptionError(p, 'window.type', (window as { type: unknown }).type, '"count" or "time"');
    this.failureRateThreshold = positivePercentage(p, 'failureRateThreshold', options.failureRateThreshold ?? 50);
    this.slowCallRateThreshold = positivePercentage(p, 'slowCallRateThreshold', options.slowCallRateThreshold ?? 100);
    this.slowCallDurationMs = check.duration(p, 'slowCallDurationMs', options.slowCallDurationMs ?? Infinity, { allowZero: false, allowInfinity: true });
    this.tracksSlow = this.slowCallDurationMs !== Infinity;
    this.minimumCalls = check.integer(p, 'minimumCalls', options.minimumCalls ?? 20, 1);
    this.openBaseMs = check.duration(p, 'openDuration.baseMs', options.openDuration?.baseMs ?? 30_000, { allowZero: false });
    this.openMultiplier = check.ratio(p, 'openDuration.multiplier', options.openDuration?.multiplier ?? 1, { min: 1, max: 1_000 });
    this.openMaxMs = check.duration(p, 'openDuration.maxMs', options.openDuration?.maxMs ?? Math.max(this.openBaseMs, 300_000), { allowZero: false });
    if (this.openMaxMs < this.openBaseMs) throw new InvalidOptionError(p, 'openDuration.maxMs', this.openMaxMs, `at least openDuration.baseMs (${this.openBaseMs})`);
    this.halfOpenCalls = check.integer(p, 'halfOpenCalls', options.halfOpenCalls ?? 3, 1, 10_000);
    this.isFailure = options.isFailure === undefined ? isDependencyFailure : check.fn(p, 'isFailure', options.isFailure);
    this.events = new PolicyEvents('circuit-breaker', this.name);
    this.on = this.events.on.bind(this.events);
    if (options.initialState !== undefined) this.restore(options.initialState);
  }

  /** The current state (an open breaker whose pause is over reads as half-open). */
  get state(): CircuitState {
    if (this.current === 'open' && this.clock.now() >= this.openUntil) this.transition('half-open');
    return this.current;
  }

  run<T>(chain: Chain<T>, scope: Scope, index: number): Promise<T> {
    const generation = this.admit();
    if (generation < 0) return rejectSoon(this.reject(generation === ISOLATED ? undefined : this.openUntil - this.clock.now()));
    return this.runAdmitted(chain, scope, index, generation);
  }

  private runAdmitted<T>(chain: Chain<T>, scope: Scope, index: number, generation: number): Promise<T> {
    const start = this.tracksSlow ? this.clock.now() : 0;
    return chain.next(scope, index).then(
      (value) => {
        if (generation === this.generation) this.record(false, this.isSlow(start));
        return value;
      },
      (error: unknown) => {
        if (generation === this.generation) this.onError(error, scope, start);
        throw error;
      },
    );
  }

  /** Forces the breaker open until `reset()`: every call is refused. */
  isolate(): void {
    this.transition('isolated');
  }

  /** Closes the breaker and forgets its window. */
  reset(): void {
    this.consecutiveOpens = 0;
    this.transition('closed');
  }

  snapshot(): CircuitBreakerSnapshot {
    const state = this.state;
    return {
      state,
      openRemainingMs: state === 'open' ? Math.max(0, this.openUntil - this.clock.now()) : 0,
      consecutiveOpens: this.consecutiveOpens,
      window: this.window.counts(),
    };
  }

  /** Admits a call: returns the generation it belongs to, or `REFUSED` / `ISOLATED`. */
  private admit(): number {
    switch (this.current) {
      case 'closed':
        return this.generation;
      case 'open':
        if (this.clock.now() < this.openUntil) return REFUSED;
        this.transition('half-open');
        return this.admitProbe();
      case 'half-open':
        return this.admitProbe();
      case 'isolated':
        return ISOLATED;
    }
  }

  private admitProbe(): number {
    if (this.probesAdmitted >= this.halfOpenCalls) return REFUSED;
    this.probesAdmitted++;
    return this.generation;
  }

  private reject(retryAfterMs: number | undefined): CircuitOpenError {
    if (this.events.wants('rejected')) this.events.emit('rejected', { state: this.current });
    const isolated = this.current === 'isolated';
    return fastError(CircuitOpenError, 'BULWARK_CIRCUIT_OPEN', `circuit breaker "${this.name}" is ${isolated ? 'isolated' : 'open'}`, {
      breaker: this.name,
      isolated,
      retryAfterMs: retryAfterMs !== undefined && retryAfterMs > 0 ? retryAfterMs : undefined,
    });
  }

  private onError(error: unknown, scope: Scope, start: number): void {
    const cancelledByCaller = scope.aborted && error === scope.reason && !isTimeout(error);
    if (cancelledByCaller || (isBulwarkError(error) && error.code === 'BULWARK_HEDGE_LOST')) {
      if (this.current === 'half-open') this.probesAdmitted--;
      return;
    }
    this.record(this.isFailure(error), this.isSlow(start));
  }

  private isSlow(start: number): boolean {
    return this.tracksSlow && this.clock.now() - start >= this.slowCallDurationMs;
  }

  private record(failure: boolean, slow: boolean): void {
    if (this.current === 'closed') {
      const window = this.window;
      window.record(failure, slow);
      // A success cannot raise a rate, but it can bring the window up to minimumCalls.
      if (!failure && !slow && window.failures === 0 && window.slow === 0) return;
      const calls = window.calls;
      if (calls < this.minimumCalls) return;
      const failures = window.failures;
      const slowCalls = window.slow;
      const failureRate = (failures * 100) / calls;
      const slowCallRate = (slowCalls * 100) / calls;
      if (failureRate >= this.failureRateThreshold || slowCallRate >= this.slowCallRateThreshold) {
        this.lastRates = { failureRate, slowCallRate };
        this.transition('open');
      }
    } else if (this.current === 'half-open') {
      if (failure || slow) {
        this.lastRates = { failureRate: failure ? 100 : 0, slowCallRate: slow ? 100 : 0 };
        this.transition('open');
      } else if (++this.probesSucceeded >= this.halfOpenCalls) {
        this.consecutiveOpens = 0;
        this.transition('closed');
      }
    }
  }

  private transition(to: CircuitState, openForMs?: number): void {
    const from = this.current;
    this.generation++;
    this.current = to;
    this.probesAdmitted = 0;
    this.probesSucceeded = 0;
    let duration = 0;
    if (to === 'open') {
      this.consecutiveOpens++;
      duration = openForMs ?? Math.min(this.openMaxMs, this.openBaseMs * this.openMultiplier ** (this.consecutiveOpens - 1));
      this.openUntil = this.clock.now() + duration;
    }
    if (to === 'closed') this.window.clear();
    if (from !== to && this.events.wants('stateChange')) {
      this.events.emit('stateChange', { from, to, ...this.lastRates, openForMs: duration });
    }
    this.lastRates = { failureRate: 0, slowCallRate: 0 };
  }

  private restore(snapshot: CircuitBreakerSnapshot): void {
    const states: readonly CircuitState[] = ['closed', 'open', 'half-open', 'isolated'];
    check.oneOf('circuitBreaker', 'initialState.state', snapshot.state, states);
    check.integer('circuitBreaker', 'initialState.consecutiveOpens', snapshot.consecutiveOpens, 0);
    check.duration('circuitBreaker', 'initialState.openRemainingMs', snapshot.openRemainingMs);
    if (snapshot.state === 'open') {
      this.consecutiveOpens = Math.max(0, snapshot.consecutiveOpens - 1);
      this.transition('open', snapshot.openRemainingMs);
    } else {
      this.consecutiveOpens = snapshot.consecutiveOpens;
      if (snapshot.state !== 'closed') this.transition(snapshot.state);
    }
  }
}

const REFUSED = -1;
const ISOLATED = -2;

function positivePercentage(policy: string, option: string, value: number): number {
  check.percentage(policy, option, value);
  if (value === 0) throw new InvalidOptionError(policy, option, value, 'a percentage above 0 and at most 100');
  return value;
}

function isTimeout(error: unknown): boolean {
  return isBulwarkError(error) && (error.code === 'BULWARK_TIMEOUT' || error.code === 'BULWARK_DEADLINE_EXCEEDED');
}

/**
 * A circuit breaker with a count- or time-based window.
 *
 * @example
 * ```ts
 * const breaker = circuitBreaker({ failureRateThreshold: 50, minimumCalls: 20, openDuration: { baseMs: 5_000, multiplier: 2 } });
 * breaker.on('stateChange', (e) => log.warn(e, 'breaker changed state'));
 * ```
 */
export function circuitBreaker(options?: CircuitBreakerOptions): CircuitBreakerPolicy {
  return new CircuitBreakerPolicy(options);
}
