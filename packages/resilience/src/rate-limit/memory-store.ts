/**
 * Rate-limit state in this process's memory, for one instance or for tests.
 *
 * Memory is bounded by `maxKeys`. When a new key would pass the bound, the
 * store forgets every key that is fully restored (forgetting those changes no
 * decision), then, if that was not enough, the least recently used keys, down
 * to 90% of the bound, so the next sweep is at least `maxKeys / 10` new keys
 * away. A key forgotten before it was restored starts afresh (its limit
 * resets early); `evicted` counts those.
 */
import { systemClock, type Clock } from '../clock.js';
import { InvalidOptionError } from '../errors.js';
import * as check from '../options.js';
import { takeFixedWindow } from './fixed-window.js';
import { KeyState } from './key-state.js';
import { takeLeakyBucket } from './leaky-bucket.js';
import type { RateLimitDecision } from './rate-limit-decision.js';
import type { RateLimitAlgorithm, RateLimitRule } from './rate-limit-rule.js';
import type { RateLimitStore } from './rate-limit-store.js';
import { takeSlidingWindow } from './sliding-window.js';
import { takeTokenBucket } from './token-bucket.js';

/**
 * Options of `MemoryRateLimitStore`.
 *
 * @example
 * ```ts
 * const options: MemoryRateLimitStoreOptions = { maxKeys: 50_000, clock: new VirtualClock() };
 * ```
 */
export interface MemoryRateLimitStoreOptions {
  /** Most keys held at once. Default 10 000. */
  maxKeys?: number;
  clock?: Clock;
}

const p = 'memoryRateLimitStore';

/**
 * A `RateLimitStore` in memory, on an injected clock, with a bounded number of keys.
 *
 * @example
 * ```ts
 * const store = new MemoryRateLimitStore({ maxKeys: 50_000 });
 * const perUser = rateLimiter({ rule: tokenBucket({ capacity: 10, refillRate: 1 }), store, key: () => userId });
 * ```
 */
export class MemoryRateLimitStore implements RateLimitStore {
  readonly clock: Clock;
  readonly maxKeys: number;
  private readonly keys = new Map<string, KeyState>();
  /** The most recently used key, already last in `keys`: a limiter with one key skips the reordering. */
  private lastKey: string | undefined = undefined;
  private evictedKeys = 0;

  constructor(options: MemoryRateLimitStoreOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.maxKeys = check.integer(p, 'maxKeys', options.maxKeys ?? 10_000, 1);
  }

  /** Keys held now. */
  get size(): number {
    return this.keys.size;
  }

  /** Keys forgotten to respect `maxKeys` before they were fully restored. */
  get evicted(): number {
    return this.evictedKeys;
  }

  take(key: string, rule: RateLimitRule, cost: number, maxDelayMs = Infinity): RateLimitDecision {
    check.integer(p, 'cost', cost, 0);
    const now = this.clock.now();
    const state = this.stateOf(key, rule.algorithm, now);
    const result = decide(rule, state, now, cost, maxDelayMs);
    state.restoredAt = now + result.resetMs;
    return result;
  }

  /** Forgets one key: its next request starts afresh. */
  delete(key: string): boolean {
    return this.keys.delete(key);
  }

  /** Forgets every key. */
  clear(): void {
    this.keys.clear();
  }

  /** Forgets the keys that are fully restored; returns how many. Optional: the store also does it when full. */
  prune(): number {
    const now = this.clock.now();
    const before = this.keys.size;
    for (const [key, state] of this.keys) if (state.restoredAt <= now) this.keys.delete(key);
    return before - this.keys.size;
  }

  private stateOf(key: string, algorithm: RateLimitAlgorithm, now: number): KeyState {
    let state = this.keys.get(key);
    if (state === undefined) {
      if (this.keys.size >= this.maxKeys) this.makeRoom();
      state = new KeyState(algorithm, now);
      this.keys.set(key, state);
    } else {
      if (key !== this.lastKey) {
        // Map iteration follows insertion order: re-inserting keeps the least recently used first.
        this.keys.delete(key);
        this.keys.set(key, state);
      }
      if (state.algorithm !== algorithm) state.reset(algorithm, now);
    }
    this.lastKey = key;
    return state;
  }

  private makeRoom(): void {
    this.prune();
    const target = this.maxKeys - Math.max(1, Math.floor(this.maxKeys / 10));
    for (const key of this.keys.keys()) {
      if (this.keys.size <= target) break;
      this.keys.delete(key);
      this.evictedKeys++;
    }
  }
}

function decide(rule: RateLimitRule, state: KeyState, now: number, cost: number, maxDelayMs: number): RateLimitDecision {
  switch (rule.algorithm) {
    case 'token-bucket':
      return takeTokenBucket(rule, state, now, cost);
    case 'sliding-window':
      return takeSlidingWindow(rule, state, now, cost);
    case 'fixed-window':
      return takeFixedWindow(rule, state, now, cost);
    case 'leaky-bucket':
      return takeLeakyBucket(rule, state, now, cost, maxDelayMs);
    default:
      // A rule that bypassed rateLimitRule(). The key it created is restored (restoredAt 0), so the next sweep drops it.
      throw new InvalidOptionError(p, 'rule.algorithm', (rule as { algorithm: unknown }).algorithm, 'a rule made by rateLimitRule()');
  }
}
