/**
 * Where rate-limit state lives. A store evaluates a rule for a key atomically
 * and on its own clock: the memory store reads its injected `Clock`; a Redis
 * store would run one Lua script per algorithm, reading the server's `TIME`,
 * so every instance of a service agrees on one bucket.
 */
import type { RateLimitDecision } from './rate-limit-decision.js';
import type { RateLimitRule } from './rate-limit-rule.js';

/**
 * Holds rate-limit state by key. `take` must check and update a key's state as
 * one atomic step, and must not count a refused request.
 *
 * @example
 * ```ts
 * class RedisRateLimitStore implements RateLimitStore {
 *   take(key: string, rule: RateLimitRule, cost: number, maxDelayMs = Infinity): Promise<RateLimitDecision> {
 *     // one EVALSHA of the script for rule.algorithm, with the rule's numbers as ARGV
 *     return this.redis.evalsha(scripts[rule.algorithm], 1, key, ...args(rule, cost, maxDelayMs)).then(toDecision);
 *   }
 * }
 * ```
 */
export interface RateLimitStore {
  /**
   * Takes `cost` (an integer >= 0; 0 only reads the figures) from `key`'s
   * allowance under `rule`. A leaky bucket also refuses a request that would
   * have to wait longer than `maxDelayMs` (default: no bound beyond its
   * capacity); other algorithms never ask for a wait.
   */
  take(key: string, rule: RateLimitRule, cost: number, maxDelayMs?: number): RateLimitDecision | Promise<RateLimitDecision>;
}
