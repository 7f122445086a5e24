/**
 * Timeouts and deadlines.
 *
 * `timeout(ms)` bounds one attempt: placed inside `retry`, each attempt gets
 * `ms`, and running out is retryable (`TimeoutError`). `deadline(ms)` bounds
 * the whole call: placed outermost, running out is final
 * (`DeadlineExceededError`), and retries never sleep past it.
 *
 * Both narrow the inherited deadline, never widen it: a hop gets
 * `min(own timeout, remaining budget)`. The narrowed deadline becomes the
 * ambient one (AsyncLocalStorage) for everything called inside, so a nested
 * `execute` or an outgoing HTTP call sees the remaining budget without
 * passing it by hand.
 */
import { systemClock, type Clock } from './clock.js';
import { DeadlineExceededError, TimeoutError } from './errors.js';
import { PolicyEvents } from './events.js';
import * as check from './options.js';
import { PolicyBase, type Chain } from './policy.js';
import { rejectSoon } from './reject-soon.js';
import { runInScope, type Scope } from './scope.js';

export interface TimeoutOptions {
  /** Name in events and errors. Default `"timeout"` / `"deadline"`. */
  name?: string;
  clock?: Clock;
  /**
   * Make the narrowed deadline ambient for the code inside (default true).
   * Turn off only for leaf calls that never call anything else.
   */
  propagate?: boolean;
}

export interface TimeoutEvents {
  /** The timer fired and the attempt (or call) was aborted. */
  timeout: { timeoutMs: number; attempt: number; total: boolean };
}

export class TimeoutPolicy extends PolicyBase {
  readonly events: PolicyEvents<TimeoutEvents>;
  readonly on: PolicyEvents<TimeoutEvents>['on'];
  private readonly propagate: boolean;

  constructor(
    readonly timeoutMs: number,
    /** True for a total deadline (`DeadlineExceededError`), false for a per-attempt timeout. */
    readonly total: boolean,
    options: TimeoutOptions = {},
  ) {
    const kind = total ? 'deadline' : 'timeout';
    super(check.name(kind, options.name ?? kind), options.clock ?? systemClock);
    check.duration(kind, total ? 'deadlineMs' : 'timeoutMs', timeoutMs, { allowZero: false });
    this.propagate = options.propagate ?? true;
    this.events = new PolicyEvents('timeout', this.name);
    this.on = this.events.on.bind(this.events);
  }

  run<T>(chain: Chain<T>, scope: Scope, index: number): Promise<T> {
    const now = this.clock.now();
    const own = now + this.timeoutMs;
    // When the inherited deadline comes first, running out of it is final whatever this policy's kind.
    const final = this.total || scope.deadline <= own;
    const deadline = final && scope.deadline < own ? scope.deadline : own;
    if (deadline <= now) return rejectSoon(this.error(final));
    const child = scope.child(deadline);
    child.markAbortable();
    const timer = this.clock.setTimer(() => this.fire(child, final), deadline - now);
    const inner = this.propagate ? runInScope(child, next, chain, child, index) : chain.next(child, index);
    return new Promise<T>((resolve, reject) => {
      // Aborted from outside (caller, outer deadline): the timer has nothing left to bound.
      // Without this, an operation that ignores its signal kept the timer armed and a
      // `timeout` event fired later for a call already over.
      child.setHook((reason) => {
        timer.cancel();
        reject(reason);
      });
      inner.then(
        (value) => {
          timer.cancel();
          child.dispose();
          resolve(value);
        },
        (error: unknown) => {
          timer.cancel();
          child.dispose();
          reject(error);
        },
      );
    });
  }

  private fire(scope: Scope, final: boolean): void {
    if (this.events.wants('timeout')) {
      this.events.emit('timeout', { timeoutMs: this.timeoutMs, attempt: scope.attempt, total: final });
    }
    scope.abort(this.error(final));
  }

  private error(final: boolean): Error {
    return final ? new DeadlineExceededError(this.name) : new TimeoutError(this.timeoutMs, this.name);
  }
}

function next<T>(chain: Chain<T>, scope: Scope, index: number): Promise<T> {
  return chain.next(scope, index);
}

/**
 * Bounds each attempt to `timeoutMs` (or the remaining budget, if less).
 *
 * @example
 * ```ts
 * const call = pipeline(retry({ maxAttempts: 3 }), timeout(200));
 * await call.execute(({ signal }) => fetch(url, { signal }));
 * ```
 */
export function timeout(timeoutMs: number, options?: TimeoutOptions): TimeoutPolicy {
  return new TimeoutPolicy(timeoutMs, false, options);
}

/**
 * Bounds the whole call, retries and waits included, to `deadlineMs`.
 *
 * @example
 * ```ts
 * const call = pipeline(deadline(1_000), retry({ maxAttempts: 5 }), timeout(200));
 * ```
 */
export function deadline(deadlineMs: number, options?: TimeoutOptions): TimeoutPolicy {
  return new TimeoutPolicy(deadlineMs, true, options);
}
