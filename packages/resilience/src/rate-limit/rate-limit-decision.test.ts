import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MemoryRateLimitStore } from './memory-store.js';
import { rateLimitRule, type RateLimitRuleInput } from './rate-limit-rule.js';

const ruleInput: fc.Arbitrary<RateLimitRuleInput> = fc.oneof(
  fc.record({ algorithm: fc.constant('token-bucket' as const), capacity: fc.integer({ min: 1, max: 10 }), refillRate: fc.integer({ min: 1, max: 5 }), refillIntervalMs: fc.integer({ min: 1, max: 1_000 }) }),
  fc.record({ algorithm: fc.constant('leaky-bucket' as const), capacity: fc.integer({ min: 1, max: 10 }), drainRate: fc.integer({ min: 1, max: 5 }), drainIntervalMs: fc.integer({ min: 1, max: 1_000 }) }),
  fc.record({ algorithm: fc.constant('fixed-window' as const), limit: fc.integer({ min: 1, max: 10 }), windowMs: fc.integer({ min: 1, max: 1_000 }) }),
  fc.record({ algorithm: fc.constant('sliding-window' as const), limit: fc.integer({ min: 1, max: 10 }), windowMs: fc.integer({ min: 1, max: 1_000 }) }),
);

describe('rate-limit decisions', () => {
  it('property: after a refusal, the same request is still refused 1 ms before retryAfterMs and admitted at it', () => {
    fc.assert(
      fc.property(
        ruleInput,
        fc.array(fc.record({ gap: fc.integer({ min: 0, max: 400 }), cost: fc.integer({ min: 1, max: 4 }) }), { maxLength: 40 }),
        fc.integer({ min: 1, max: 6 }),
        (input, requests, probeCost) => {
          let now = 0;
          const store = new MemoryRateLimitStore({ clock: { now: () => now, setTimer: () => ({ cancel() {} }) } });
          const rule = rateLimitRule(input);
          for (const { gap, cost } of requests) {
            now += gap;
            store.take('k', rule, cost);
          }
          const refused = store.take('k', rule, probeCost);
          if (refused.allowed || refused.retryAfterMs === Infinity) return;
          assert.ok(refused.retryAfterMs >= 1);
          const start = now;
          now = start + refused.retryAfterMs - 1;
          assert.equal(store.take('k', rule, probeCost).allowed, false, 'admitted before retryAfterMs');
          now = start + refused.retryAfterMs;
          assert.equal(store.take('k', rule, probeCost).allowed, true, 'still refused at retryAfterMs');
        },
      ),
      { numRuns: 500 },
    );
  });

  it('property: remaining never exceeds the limit, and an admitted request leaves remaining >= 0', () => {
    fc.assert(
      fc.property(ruleInput, fc.array(fc.record({ gap: fc.integer({ min: 0, max: 400 }), cost: fc.integer({ min: 0, max: 12 }) }), { maxLength: 40 }), (input, requests) => {
        let now = 0;
        const store = new MemoryRateLimitStore({ clock: { now: () => now, setTimer: () => ({ cancel() {} }) } });
        const rule = rateLimitRule(input);
        for (const { gap, cost } of requests) {
          now += gap;
          const d = store.take('k', rule, cost);
          assert.ok(d.remaining >= 0 && d.remaining <= d.limit && Number.isInteger(d.remaining));
          assert.ok(d.resetMs >= 0 && Number.isInteger(d.resetMs));
          assert.equal(d.retryAfterMs === 0, d.allowed);
          if (rule.algorithm !== 'leaky-bucket') assert.equal(d.delayMs, 0);
        }
      }),
      { numRuns: 300 },
    );
  });
});
