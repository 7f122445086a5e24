/**
 * A `RateLimitStore` on Redis (ioredis): one atomic Lua script per algorithm
 * (token bucket, leaky bucket, sliding window, fixed window), run by
 * `EVALSHA` with a fallback to `EVAL` when the server has not cached the
 * script (after a restart or `SCRIPT FLUSH`). Time is the Redis server's, so
 * every instance of a service shares one allowance per key.
 *
 * When Redis is unreachable the store fails fast (it throws without queueing
 * a command while the client reconnects), and the rate-limit plugin applies
 * its `onStoreError` choice. Give the client a `commandTimeout` so a slow
 * Redis fails fast too.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { RedisRateLimitStore } from '@bulwark/http/redis';
 * const store = new RedisRateLimitStore({ redis: new Redis({ commandTimeout: 50, maxRetriesPerRequest: 1 }) });
 * await app.register(rateLimit, { store, rule: tokenBucket({ capacity: 100, refillRate: 50 }) });
 * ```
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RateLimitDecision, RateLimitRule, RateLimitStore } from '@bulwark/resilience';
import { bucketScript, fixedWindowScript, slidingWindowScript } from './rate-limit-scripts.js';

/**
 * Options of `RedisRateLimitStore`.
 *
 * @example
 * ```ts
 * const options: RedisRateLimitStoreOptions = { redis, prefix: 'orders:ratelimit:' };
 * ```
 */
export interface RedisRateLimitStoreOptions {
  redis: Redis;
  /** Prepended to every key. Default `bulwark:ratelimit:`. */
  prefix?: string;
}

/** The store could not reach Redis; the rate-limit plugin fails open or closed on it. */
export class RateLimitStoreUnavailableError extends Error {
  readonly code = 'BULWARK_HTTP_RATE_LIMIT_STORE_UNAVAILABLE';
  readonly retryable = true;
  constructor(status: string) {
    super(`rate-limit store: Redis is ${status}`);
    this.name = 'RateLimitStoreUnavailableError';
  }
}

/** True for a `RateLimitStoreUnavailableError` from any installed copy. */
export function isRateLimitStoreUnavailableError(error: unknown): error is RateLimitStoreUnavailableError {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'BULWARK_HTTP_RATE_LIMIT_STORE_UNAVAILABLE';
}

interface Script {
  lua: string;
  sha: string;
}

function script(lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

const scripts = { bucket: script(bucketScript), sliding: script(slidingWindowScript), fixed: script(fixedWindowScript) };
const down = new Set(['reconnecting', 'close', 'end']);

/** A `RateLimitStore` shared by every process that uses the same Redis. */
export class RedisRateLimitStore implements RateLimitStore {
  readonly redis: Redis;
  readonly prefix: string;

  constructor(options: RedisRateLimitStoreOptions) {
    if (typeof options?.redis?.evalsha !== 'function') throw new TypeError('RedisRateLimitStore: option "redis" must be an ioredis client');
    this.redis = options.redis;
    this.prefix = options.prefix ?? 'bulwark:ratelimit:';
  }

  take(key: string, rule: RateLimitRule, cost: number, maxDelayMs = Infinity): Promise<RateLimitDecision> {
    if (down.has(this.redis.status)) return Promise.reject(new RateLimitStoreUnavailableError(this.redis.status));
    const redisKey = `${this.prefix}${rule.algorithm}:${key}`;
    switch (rule.algorithm) {
      case 'token-bucket':
        return this.run(scripts.bucket, redisKey, [rule.capacity, rule.refillRate, rule.refillIntervalMs, cost, -1, 0]);
      case 'leaky-bucket':
        return this.run(scripts.bucket, redisKey, [rule.capacity, rule.drainRate, rule.drainIntervalMs, cost, Number.isFinite(maxDelayMs) ? Math.max(0, maxDelayMs) : -1, 1]);
      case 'sliding-window':
        return this.run(scripts.sliding, redisKey, [rule.limit, rule.windowMs, cost]);
      case 'fixed-window':
        return this.run(scripts.fixed, redisKey, [rule.limit, rule.windowMs, cost]);
      default:
        return Promise.reject(new TypeError(`RedisRateLimitStore: unknown algorithm ${JSON.stringify((rule as { algorithm: unknown }).algorithm)}`));
    }
  }

  private async run(s: Script, key: string, args: number[]): Promise<RateLimitDecision> {
    let reply: unknown;
    try {
      reply = await this.redis.evalsha(s.sha, 1, key, ...args);
    } catch (error) {
      if (!String((error as Error).message).startsWith('NOSCRIPT')) throw error;
      reply = await this.redis.eval(s.lua, 1, key, ...args);
    }
    const [allowed, limit, remaining, resetMs, retryAfterMs, delayMs] = reply as number[];
    return {
      allowed: allowed === 1,
      limit: Number(limit),
      remaining: Number(remaining),
      resetMs: Number(resetMs),
      retryAfterMs: retryAfterMs === -1 ? Infinity : Number(retryAfterMs),
      delayMs: Number(delayMs),
    };
  }
}
