/**
 * Fallback: answer with a substitute when the call fails in a chosen way.
 * A fallback answer is degraded, not a success: the `fallback` event says so,
 * and telemetry counts it apart.
 *
 * The caller's own cancellation is never replaced by a fallback, and neither
 * is a failure that arrives after the call's deadline: nobody waits for it.
 */
import { systemClock, type Clock } from './clock.js';
import { PolicyEvents } from './events.js';
import * as check from './options.js';
import { PolicyBase, type Chain } from './policy.js';
import type { CallContext, Scope } from './scope.js';

export interface FallbackOptions {
  /** Name in events. Default `"fallback"`. */
  name?: string;
  /** Which failures the fallback answers. Default: all of them. */
  on?: (error: unknown) => boolean;
  clock?: Clock;
}

export interface FallbackEvents {
  /** The call failed and the fallback answered instead (a degraded result). */
  fallback: { error: unknown };
  /** The fallback itself failed; the original error is thrown. */
  fallbackFailed: { error: unknown; fallbackError: unknown };
}

/** What the fallback answers: a value, or a function of the failure. Must fit the type the call returns. */
export type FallbackHandler = (error: unknown, ctx: CallContext) => unknown;

export class FallbackPolicy extends PolicyBase {
  readonly events: PolicyEvents<FallbackEvents>;
  readonly on: PolicyEvents<FallbackEvents>['on'];
  private readonly handler: FallbackHandler;
  private readonly when: (error: unknown) => boolean;

  constructor(handler: FallbackHandler, options: FallbackOptions = {}) {
    super(check.name('fallback', options.name ?? 'fallback'), options.clock ?? systemClock);
    this.handler = check.fn('fallback', 'handler', handler);
    this.when = options.on === undefined ? () => true : check.fn('fallback', 'on', options.on);
    this.events = new PolicyEvents('fallback', this.name);
    this.on = this.events.on.bind(this.events);
  }

  async run<T>(chain: Chain<T>, scope: Scope, index: number): Promise<T> {
    try {
      return await chain.next(scope, index);
    } catch (error) {
      // Once the call's scope is aborted (its caller gave up, or its deadline passed) nobody waits for an answer.
      if (scope.aborted || !this.when(error)) throw error;
      let value: unknown;
      try {
        value = await this.handler(error, scope);
      } catch (fallbackError) {
        if (this.events.wants('fallbackFailed')) this.events.emit('fallbackFailed', { error, fallbackError });
        throw error;
      }
      if (this.events.wants('fallback')) this.events.emit('fallback', { error });
      return value as T;
    }
  }
}

/**
 * Answers failed calls with `handler(error, ctx)`; pass `() => value` for a constant.
 *
 * @example
 * ```ts
 * const recommendations = pipeline(fallback(() => lastGood.get(userId) ?? []), timeout(100));
 * ```
 */
export function fallback(handler: FallbackHandler, options?: FallbackOptions): FallbackPolicy {
  return new FallbackPolicy(handler, options);
}
