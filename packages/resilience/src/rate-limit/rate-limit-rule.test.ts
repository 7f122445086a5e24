import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { InvalidOptionError } from '../errors.js';
import { fixedWindow } from './fixed-window.js';
import { leakyBucket } from './leaky-bucket.js';
import { rateLimitRule, type RateLimitRule } from './rate-limit-rule.js';
import { slidingWindow } from './sliding-window.js';
import { tokenBucket } from './token-bucket.js';

describe('rate-limit rules', () => {
  it('are plain frozen data with defaults filled in, and survive a JSON round trip', () => {
    const rules: RateLimitRule[] = [
      tokenBucket({ capacity: 20, refillRate: 10 }),
      slidingWindow({ limit: 100, windowMs: 60_000 }),
      fixedWindow({ limit: 100, windowMs: 60_000 }),
      leakyBucket({ capacity: 5, drainRate: 2, drainIntervalMs: 500 }),
    ];
    assert.deepEqual(rules[0], { algorithm: 'token-bucket', capacity: 20, refillRate: 10, refillIntervalMs: 1_000 });
    assert.deepEqual(rules[3], { algorithm: 'leaky-bucket', capacity: 5, drainRate: 2, drainIntervalMs: 500 });
    for (const rule of rules) {
      assert.ok(Object.isFrozen(rule));
      const copy = JSON.parse(JSON.stringify(rule)) as RateLimitRule;
      assert.deepEqual(copy, rule);
      assert.deepEqual(rateLimitRule(copy), rule);
    }
  });

  it('default to a token bucket when the algorithm is left out, and keep only known fields', () => {
    const input = { capacity: 3, refillRate: 1, comment: 'ignored' };
    assert.deepEqual(rateLimitRule(input), { algorithm: 'token-bucket', capacity: 3, refillRate: 1, refillIntervalMs: 1_000 });
  });

  it('refuse an unknown algorithm, a missing rule and invalid fields with InvalidOptionError naming them', () => {
    const refusedFor = (input: unknown, option: string) =>
      assert.throws(() => rateLimitRule(input as never), (e: unknown) => e instanceof InvalidOptionError && e.option === option, JSON.stringify(input));
    refusedFor({ algorithm: 'sliding-log', limit: 1, windowMs: 1 }, 'rule.algorithm');
    refusedFor(undefined, 'rule');
    refusedFor('token-bucket', 'rule');
    refusedFor({ algorithm: 'sliding-window', limit: 10 }, 'windowMs');
    refusedFor({ algorithm: 'fixed-window', limit: -1, windowMs: 1_000 }, 'limit');
    refusedFor({ algorithm: 'leaky-bucket', capacity: 2, drainRate: Number.NaN }, 'drainRate');
    refusedFor({ capacity: 2, refillRate: 1, refillIntervalMs: '1s' }, 'refillIntervalMs');
  });
});
