/**
 * The rate-limit plugin: per route and per identity, on the
 * `@bulwark/resilience` rate limiters and any `RateLimitStore` (in memory by
 * default; Redis from `@bulwark/http/redis` for several instances).
 *
 * Every response of a limited route carries `RateLimit-Limit`,
 * `RateLimit-Remaining` and `RateLimit-Reset` (seconds until the allowance is
 * fully restored), and the same figures as `X-RateLimit-*`. A refused request
 * gets 429 `rate-limited` with `Retry-After` (seconds).
 *
 * When the store fails (Redis down or slow), the plugin fails open by default:
 * the request proceeds without rate-limit headers and a warning is logged. A
 * limiter protects capacity; turning a Redis outage into an API outage would
 * make it the thing that fails. Routes where over-admission is worse than
 * refusal (login, password reset, costly writes) set `onStoreError: 'closed'`
 * and answer 503 `rate-limit-unavailable` instead.
 *
 * @example
 * ```ts
 * await app.register(rateLimit, { rule: tokenBucket({ capacity: 100, refillRate: 50 }) }); // every route
 * app.post('/login', { config: { rateLimit: { rule: slidingWindow({ limit: 5, windowMs: 60_000 }), onStoreError: 'closed' } } }, login);
 * app.get('/health/live', { config: { rateLimit: false } }, live);
 * ```
 */
import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions } from 'fastify';
import { syncPlugin } from '../sync-plugin.js';
import { MemoryRateLimitStore, rateLimiter, type RateLimitDecision, type RateLimiterPolicy, type RateLimitRuleInput, type RateLimitStore } from '@bulwark/resilience';
import { kitProblem } from '../problem/render-problem.js';
import { sendProblem } from '../problem/send-problem.js';
import { defaultIdentity } from './identity.js';

/** What to do when the store cannot decide: admit (`open`) or refuse with 503 (`closed`). */
export type StoreFailureMode = 'open' | 'closed';

/** Per-route options (`config.rateLimit`); `false` exempts the route. */
export interface RateLimitRouteOptions {
  /** This route's rule. Default: the plugin's `rule`. */
  rule?: RateLimitRuleInput;
  /** Allowance one request takes. Default 1. */
  cost?: number;
  /** Routes naming the same bucket share one allowance per identity. Default: the route's own (`METHOD /pattern`). */
  bucket?: string;
  /** Who the request counts against. Default: the plugin's `key`. */
  key?: (request: FastifyRequest) => string;
  onStoreError?: StoreFailureMode;
}

/**
 * Options of the rate-limit plugin.
 *
 * @example
 * ```ts
 * const options: RateLimitOptions = { rule: slidingWindow({ limit: 600, windowMs: 60_000 }), store: new RedisRateLimitStore({ redis }), onStoreError: 'open' };
 * ```
 */
export interface RateLimitOptions {
  /** Where allowances live. Default: a `MemoryRateLimitStore` (one instance only). */
  store?: RateLimitStore;
  /** The rule of every route that has no `config.rateLimit.rule`. Without it, only routes with a `config.rateLimit.rule` are limited. */
  rule?: RateLimitRuleInput;
  /** Who a request counts against. Default: `sub:<jwt subject>`, else `key:<hashed api key>`, else `ip:<client ip>`. */
  key?: (request: FastifyRequest) => string;
  /** Header the default key reads API keys from. Default `x-api-key`. */
  apiKeyHeader?: string;
  /** Default `open`: see the module comment for why. */
  onStoreError?: StoreFailureMode;
  /** Hook the limit runs in. `onRequest` (default) refuses before the body is read; use `preHandler` when the identity is only known after authentication in a later hook. */
  hook?: 'onRequest' | 'preHandler';
}

const unavailable = kitProblem('rate-limit-unavailable', 'The rate limit cannot be checked right now.');
const limited = kitProblem('rate-limited');

interface Limit {
  limiter: RateLimiterPolicy;
  prefix: string;
  cost: number;
  key: (request: FastifyRequest) => string;
  failClosed: boolean;
  /** The last identity and its store key (`prefix + identity`), reused while the identity repeats. */
  lastIdentity: string | undefined;
  lastKey: string;
  /** `String(limit)` of the last decision: a rule's limit never changes, so it is formatted once. */
  limitText: string;
  limitOf: number;
}

/** Header values as strings: Node would otherwise turn each number into a string twice (validation, then the header line). */
function text(n: number): string {
  return n === 0 ? '0' : n === 1 ? '1' : String(n);
}

/** Sets the rate-limit headers of `d` on `reply`; refuses with 429 when `d` does. Returns true when the request may go on. */
function applyDecision(limit: Limit, d: RateLimitDecision, reply: FastifyReply): boolean {
  if (d.limit !== limit.limitOf) {
    limit.limitOf = d.limit;
    limit.limitText = String(d.limit);
  }
  const limitText = limit.limitText;
  const remaining = text(d.remaining);
  // Seconds until fully restored, rounded up: an allowance restored in 1 ms is reported as 1 s, never 0.
  const reset = d.resetMs > 0 ? text(Math.ceil(d.resetMs / 1000)) : '0';
  reply.header('ratelimit-limit', limitText);
  reply.header('ratelimit-remaining', remaining);
  reply.header('ratelimit-reset', reset);
  reply.header('x-ratelimit-limit', limitText);
  reply.header('x-ratelimit-remaining', remaining);
  reply.header('x-ratelimit-reset', reset);
  if (d.allowed) return true;
  reply.header('retry-after', text(Math.max(1, Math.ceil(d.retryAfterMs / 1000))));
  sendProblem(reply, limited);
  return false;
}

function storeFailed(limit: Limit, error: unknown, request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
  request.log.warn({ err: error, limiter: limit.limiter.name, failClosed: limit.failClosed }, 'rate limit: store failed');
  if (limit.failClosed) sendProblem(reply, unavailable);
  else done();
}

function limitHook(limit: Limit) {
  return function rateLimitRequest(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    let answer: RateLimitDecision | Promise<RateLimitDecision>;
    try {
      const identity = limit.key(request);
      if (identity !== limit.lastIdentity) {
        limit.lastIdentity = identity;
        limit.lastKey = limit.prefix + identity;
      }
      answer = limit.limiter.take(limit.lastKey, limit.cost);
    } catch (error) {
      storeFailed(limit, error, request, reply, done);
      return;
    }
    if ('then' in answer) {
      answer.then(
        (d) => {
          if (applyDecision(limit, d, reply)) done();
        },
        (error: unknown) => storeFailed(limit, error, request, reply, done),
      );
    } else if (applyDecision(limit, answer, reply)) {
      done();
    }
  };
}

function setUp(app: FastifyInstance, options: RateLimitOptions): void {
  const store = options.store ?? new MemoryRateLimitStore();
  const key = options.key ?? defaultIdentity(options.apiKeyHeader);
  const hook = options.hook ?? 'onRequest';
  if (hook !== 'onRequest' && hook !== 'preHandler') throw new TypeError(`rateLimit: option "hook" must be "onRequest" or "preHandler", got ${String(hook)}`);
  const failureMode = checkMode(options.onStoreError ?? 'open');
  const limiters = new Map<string, RateLimiterPolicy>();

  app.addHook('onRoute', (route: RouteOptions) => {
    const config = (route.config)?.rateLimit;
    if (config === false) return;
    const rule = config?.rule ?? options.rule;
    if (rule === undefined) return;
    const bucket = config?.bucket ?? `${route.method.toString()} ${route.url}`;
    // One limiter per bucket: its events (`bulwark:resilience:rate-limiter`) are named for it.
    let limiter = limiters.get(bucket);
    if (limiter === undefined) {
      limiter = rateLimiter({ name: bucket, rule, store, cost: config?.cost ?? 1 });
      limiters.set(bucket, limiter);
    }
    const limit: Limit = {
      limiter,
      prefix: `${bucket}|`,
      cost: config?.cost ?? 1,
      key: config?.key ?? key,
      failClosed: checkMode(config?.onStoreError ?? failureMode) === 'closed',
      lastIdentity: undefined,
      lastKey: '',
      limitText: '',
      limitOf: Number.NaN,
    };
    const existing = route[hook];
    route[hook] = [...(existing === undefined ? [] : Array.isArray(existing) ? existing : [existing]), limitHook(limit)] as never;
  });
}

function checkMode(mode: StoreFailureMode): StoreFailureMode {
  if (mode !== 'open' && mode !== 'closed') throw new TypeError(`rateLimit: option "onStoreError" must be "open" or "closed", got ${String(mode)}`);
  return mode;
}

/**
 * The rate-limit plugin (wrapped by fastify-plugin). Register it before the routes it limits.
 *
 * @example
 * ```ts
 * await app.register(rateLimit, { rule: tokenBucket({ capacity: 20, refillRate: 10 }), store: new RedisRateLimitStore({ redis }) });
 * ```
 */
export const rateLimit: FastifyPluginCallback<RateLimitOptions> = syncPlugin('@bulwark/http/rate-limit', setUp);
