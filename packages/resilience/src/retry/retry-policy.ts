/**
 * Retry with backoff and jitter, a transient-only default predicate,
 * `Retry-After`, the deadline and an optional shared retry budget.
 *
 * A retry is skipped, and the last error thrown as it was, when:
 * - the attempts are used up, or the error is not retryable (`retryOn`);
 * - the operation is unsafe (`idempotent: false`) and no idempotency key travels with it;
 * - the wait would end past the call's deadline, or `Retry-After` asks for more than `maxRetryAfterMs`;
 * - the retry budget is spent;
 * - the call itself was cancelled.
 */
import { systemClock, type Clock } from '../clock.js';
import { isTransient, retryAfterMsOf } from '../classify.js';
import { PolicyEvents } from '../events.js';
import * as check from '../options.js';
import { PolicyBase, type Chain } from '../policy.js';
import type { Scope } from '../scope.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import type { RetryBudget } from './retry-budget.js';

export interface RetryOptions {
  /** Name in events. Default `"retry"`. */
  name?: string;
  /** Attempts in all, the first included. Default 3. */
  maxAttempts?: number;
  backoff?: BackoffOptions;
  /** Which errors are worth another attempt. Default: `isTransient`. */
  retryOn?: (error: unknown, attempt: number) => boolean;
  /** Wait at least as long as the error's `Retry-After` asks. Default true. */
  honourRetryAfter?: boolean;
  /** Give up rather than wait longer than this for a `Retry-After`. Default 60 s. */
  maxRetryAfterMs?: number;
  /** Shared budget that bounds how much load retries may add. */
  budget?: RetryBudget;
  clock?: Clock;
  /** Source of randomness for jitter, in [0, 1). Default `Math.random`. */
  random?: () => number;
}

export type GiveUpReason = 'attempts' | 'not-retryable' | 'unsafe' | 'deadline' | 'retry-after' | 'budget' | 'aborted';

export interface RetryEvents {
  /** An attempt failed and another is scheduled after `delayMs`. */
  retry: { attempt: number; delayMs: number; error: unknown };
  /** The last attempt failed and no retry follows. */
  giveUp: { attempts: number; reason: GiveUpReason; error: unknown };
  /** A retry was refused by the shared retry budget. */
  budgetExhausted: { attempt: number; error: unknown };
}

export class RetryPolicy extends PolicyBase {
  readonly maxAttempts: number;
  readonly backoff: Backoff;
  readonly events: PolicyEvents<RetryEvents>;
  readonly on: PolicyEvents<RetryEvents>['on'];
  private readonly retryOn: (error: unknown, attempt: number) => boolean;
  private readonly honourRetryAfter: boolean;
  private readonly maxRetryAfterMs: number;
  private readonly budget: RetryBudget | undefined;
  private readonly random: () => number;

  constructor(options: RetryOptions = {}) {
    super(check.name('retry', options.name ?? 'retry'), options.clock ?? systemClock);
    this.maxAttempts = check.integer('retry', 'maxAttempts', options.maxAttempts ?? 3, 1, 1_000);
    this.backoff = new Backoff(options.backoff);
    this.retryOn = options.retryOn === undefined ? isTransient : check.fn('retry', 'retryOn', options.retryOn);
    this.honourRetryAfter = options.honourRetryAfter ?? true;
    this.maxRetryAfterMs = check.duration('retry', 'maxRetryAfterMs', options.maxRetryAfterMs ?? 60_000, { allowInfinity: true });
    this.budget = options.budget;
    this.random = options.random === undefined ? Math.random : check.fn('retry', 'random', options.random);
    this.events = new PolicyEvents('retry', this.name);
    this.on = this.events.on.bind(this.events);
  }

  run<T>(chain: Chain<T>, scope: Scope, index: number): Promise<T> {
    this.budget?.recordRequest();
    // The first attempt is a plain `then`: on the success path that is the whole cost of this policy.
    const first = scope.attempt === 1 ? scope : scope.child(scope.deadline, 1);
    return chain.next(first, index).then(undefined, (error: unknown) => {
      if (first !== scope) first.dispose();
      return this.retryAfter(error, chain, scope, index);
    });
  }

  /** Attempts 2 and on, after the first failed with `error`. */
  private async retryAfter<T>(error: unknown, chain: Chain<T>, scope: Scope, index: number): Promise<T> {
    let previousDelay = 0;
    let lastError = error;
    for (let attempt = 1; ; attempt++) {
      const delay = this.nextDelay(lastError, attempt, scope, previousDelay);
      if (delay < 0) throw lastError;
      previousDelay = delay;
      if (this.events.wants('retry')) this.events.emit('retry', { attempt, delayMs: delay, error: lastError });
      try {
        await scope.sleep(delay);
      } catch (reason) {
        if (this.events.wants('giveUp')) this.events.emit('giveUp', { attempts: attempt, reason: 'aborted', error: lastError });
        throw reason;
      }
      const attemptScope = scope.child(scope.deadline, attempt + 1);
      try {
        return await chain.next(attemptScope, index);
      } catch (e) {
        lastError = e;
      } finally {
        attemptScope.dispose();
      }
    }
  }

  /** The wait before the next attempt, or -1 to give up. */
  private nextDelay(error: unknown, attempt: number, scope: Scope, previousDelay: number): number {
    let reason: GiveUpReason | undefined;
    let delay = -1;
    if (scope.aborted) reason = 'aborted';
    else if (attempt >= this.maxAttempts) reason = 'attempts';
    else if (!this.retryOn(error, attempt)) reason = 'not-retryable';
    else if (!scope.idempotent && scope.idempotencyKey === undefined) reason = 'unsafe';
    else {
      delay = this.backoff.delay(attempt - 1, previousDelay, this.random);
      const retryAfter = this.honourRetryAfter ? retryAfterMsOf(error) : undefined;
      if (retryAfter !== undefined) {
        if (retryAfter > this.maxRetryAfterMs) reason = 'retry-after';
        else if (retryAfter > delay) delay = retryAfter;
      }
      if (reason === undefined && this.clock.now() + delay >= scope.deadline) reason = 'deadline';
      if (reason === undefined && this.budget !== undefined && !this.budget.tryRetry()) {
        reason = 'budget';
        if (this.events.wants('budgetExhausted')) this.events.emit('budgetExhausted', { attempt, error });
      }
    }
    if (reason === undefined) return delay;
    if (this.events.wants('giveUp')) this.events.emit('giveUp', { attempts: attempt, reason, error });
    return -1;
  }
}

/**
 * Retries transient failures with exponential backoff and full jitter.
 *
 * @example
 * ```ts
 * const call = retry({ maxAttempts: 4, backoff: { baseMs: 50, capMs: 2_000 }, budget });
 * const body = await call.execute(({ signal }) => get(url, signal));
 * ```
 */
export function retry(options?: RetryOptions): RetryPolicy {
  return new RetryPolicy(options);
}
