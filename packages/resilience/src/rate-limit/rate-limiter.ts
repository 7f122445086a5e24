/**
 * Rate limiter: admits calls at the pace a rule allows, refusing the rest
 * with `RateLimitedError` (which says when to come back). With a leaky-bucket
 * rule it delays calls to their turn instead, unless the wait would pass the
 * call's deadline, in which case it refuses at once. A call cancelled while it
 * waits keeps its turn (a store cannot give a slot back), so later calls wait
 * as if it had run: the rate errs on the low side, never the high.
 *
 * The store decides; the policy only acts on the decision. With a synchronous
 * store (the memory store) an admitted call costs one decision object and no
 * extra promise; a refusal is a stackless `fastError`, rejected a microtask
 * later (`rejectSoon`), like the other fast-fail paths. HTTP layers that need
 * a decision but not execution call `take(key)` and set headers from it.
 */
import { systemClock, type Clock } from '../clock.js';
import { fastError, InvalidOptionError, RateLimitedError } from '../errors.js';
import { PolicyEvents } from '../events.js';
import * as check from '../options.js';
import { PolicyBase, type Chain } from '../policy.js';
import { rejectSoon } from '../reject-soon.js';
import type { CallContext, Scope } from '../scope.js';
import { MemoryRateLimitStore } from './memory-store.js';
import type { RateLimitDecision } from './rate-limit-decision.js';
import { limitOf, rateLimitRule, type RateLimitRule, type RateLimitRuleInput } from './rate-limit-rule.js';
import type { RateLimitStore } from './rate-limit-store.js';

/**
 * Options of `rateLimiter()`.
 *
 * @example
 * ```ts
 * const options: RateLimiterOptions = { name: 'search', rule: tokenBucket({ capacity: 20, refillRate: 10 }), key: () => `user:${userId()}` };
 * ```
 */
export interface RateLimiterOptions {
  /** Name in events and errors, and the default key. Default `"rate-limiter"`. */
  name?: string;
  /** The rule, from `tokenBucket()`, `slidingWindow()`, `fixedWindow()`, `leakyBucket()`, or as plain data (`algorithm` defaults to token bucket). */
  rule: RateLimitRuleInput;
  /** Where the state lives. Default: a new `MemoryRateLimitStore` on this policy's clock. */
  store?: RateLimitStore;
  /** The bucket a call counts against: a fixed key, or one derived from the call. Default: the policy's name. */
  key?: string | ((ctx: CallContext) => string);
  /** What one call takes from the allowance. An integer from 0 to the rule's limit. Default 1. */
  cost?: number;
  clock?: Clock;
}

/**
 * Events of a rate limiter, also published on the `bulwark:resilience:rate-limiter` channel.
 *
 * @example
 * ```ts
 * limiter.on('rejected', ({ key, retryAfterMs }) => log.warn({ key, retryAfterMs }, 'rate limited'));
 * ```
 */
export interface RateLimiterEvents {
  /** A call (or a `take`) was refused. */
  rejected: { key: string; limit: number; remaining: number; retryAfterMs: number };
  /** A call was admitted but must wait its turn (leaky bucket). */
  delayed: { key: string; delayMs: number };
}

/**
 * The rate-limiter policy; build it with `rateLimiter()`.
 *
 * @example
 * ```ts
 * const limiter = new RateLimiterPolicy({ rule: slidingWindow({ limit: 100, windowMs: 60_000 }) });
 * await limiter.execute(() => send(mail));
 * ```
 */
export class RateLimiterPolicy extends PolicyBase {
  readonly rule: RateLimitRule;
  readonly store: RateLimitStore;
  readonly cost: number;
  readonly events: PolicyEvents<RateLimiterEvents>;
  readonly on: PolicyEvents<RateLimiterEvents>['on'];
  private readonly key: string | ((ctx: CallContext) => string);

  constructor(options: RateLimiterOptions) {
    const p = 'rateLimiter';
    super(check.name(p, options.name ?? 'rate-limiter'), options.clock ?? systemClock);
    this.rule = rateLimitRule(options.rule);
    this.cost = check.integer(p, 'cost', options.cost ?? 1, 0, limitOf(this.rule));
    const store = options.store ?? new MemoryRateLimitStore({ clock: this.clock });
    if (typeof (store as Partial<RateLimitStore> | null)?.take !== 'function') throw new InvalidOptionError(p, 'store', store, 'a RateLimitStore (an object with a take method)');
    this.store = store;
    const key = options.key ?? this.name;
    if (typeof key !== 'function' && typeof key !== 'string') throw new InvalidOptionError(p, 'key', key, 'a string or a function of the call context');
    this.key = key;
    this.events = new PolicyEvents('rate-limiter', this.name);
    this.on = this.events.on.bind(this.events);
  }

  /**
   * Takes `cost` from `key`'s allowance and returns the decision, without
   * running anything: for HTTP plugins that answer 429 themselves. With a
   * leaky bucket the caller must wait `delayMs` before proceeding, and may
   * pass `maxDelayMs` to be refused rather than asked to wait longer.
   * Synchronous when the store is.
   *
   * @example
   * ```ts
   * const d = await limiter.take(`user:${userId}`);
   * if (!d.allowed) throw httpError(429, { retryAfterMs: d.retryAfterMs });
   * ```
   */
  take(key: string, cost: number = this.cost, maxDelayMs?: number): RateLimitDecision | Promise<RateLimitDecision> {
    const answer = this.store.take(key, this.rule, check.integer('rateLimiter', 'cost', cost, 0), maxDelayMs);
    if ('then' in answer) return answer.then((d) => this.observe(key, d));
    return this.observe(key, answer);
  }

  run<T>(chain: Chain<T>, scope: Scope, index: number): Promise<T> {
    let key: string;
    let answer: RateLimitDecision | Promise<RateLimitDecision>;
    try {
      key = typeof this.key === 'string' ? this.key : this.key(scope);
      answer = this.store.take(key, this.rule, this.cost, scope.remaining());
    } catch (error) {
      // A key function or a store may throw anything; the caller gets it unchanged, as a rejection.
      return rejectSoon(error);
    }
    if ('then' in answer) return answer.then((d) => this.proceed(d, key, chain, scope, index));
    return this.proceed(answer, key, chain, scope, index);
  }

  private proceed<T>(d: RateLimitDecision, key: string, chain: Chain<T>, scope: Scope, index: number): Promise<T> {
    if (!d.allowed) return rejectSoon(this.refuse(key, d));
    if (d.delayMs === 0) return chain.next(scope, index);
    if (this.events.wants('delayed')) this.events.emit('delayed', { key, delayMs: d.delayMs });
    return scope.sleep(d.delayMs).then(() => chain.next(scope, index));
  }

  private observe(key: string, d: RateLimitDecision): RateLimitDecision {
    if (!d.allowed && this.events.wants('rejected')) this.emitRejected(key, d);
    return d;
  }

  private refuse(key: string, d: RateLimitDecision): RateLimitedError {
    if (this.events.wants('rejected')) this.emitRejected(key, d);
    const retryAfterMs = d.retryAfterMs;
    return fastError(RateLimitedError, 'BULWARK_RATE_LIMITED', `rate limiter "${this.name}" refused the call; retry after ${retryAfterMs} ms`, { limiter: this.name, retryAfterMs });
  }

  private emitRejected(key: string, d: RateLimitDecision): void {
    this.events.emit('rejected', { key, limit: d.limit, remaining: d.remaining, retryAfterMs: d.retryAfterMs });
  }
}

/**
 * Limits the rate of calls by a rule: token bucket (default), sliding window,
 * fixed window or leaky bucket.
 *
 * @example
 * ```ts
 * const geocoder = rateLimiter({ name: 'geocoder', rule: tokenBucket({ capacity: 50, refillRate: 50 }) });
 * const place = await geocoder.execute(({ signal }) => geocode(address, { signal }));
 * // per tenant, on a shared store
 * const perTenant = rateLimiter({ rule: { algorithm: 'sliding-window', limit: 600, windowMs: 60_000 }, store, key: () => `tenant:${tenant()}` });
 * ```
 */
export function rateLimiter(options: RateLimiterOptions): RateLimiterPolicy {
  return new RateLimiterPolicy(options);
}
