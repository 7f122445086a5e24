import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { InvalidOptionError } from '../errors.js';
import { VirtualClock } from '../testing/index.js';
import { leakyBucket } from './leaky-bucket.js';
import { MemoryRateLimitStore } from './memory-store.js';
import type { RateLimitDecision } from './rate-limit-decision.js';

const admitted = (remaining: number, resetMs: number, delayMs: number): RateLimitDecision => ({ allowed: true, limit: 3, remaining, resetMs, retryAfterMs: 0, delayMs });
const refused = (remaining: number, resetMs: number, retryAfterMs: number): RateLimitDecision => ({ allowed: false, limit: 3, remaining, resetMs, retryAfterMs, delayMs: 0 });

function setup() {
  const clock = new VirtualClock();
  const store = new MemoryRateLimitStore({ clock });
  const rule = leakyBucket({ capacity: 3, drainRate: 1, drainIntervalMs: 100 }); // one request per 100 ms, 3 in the bucket
  return {
    store,
    rule,
    at: (t: number) => clock.advance(t - clock.now()),
    take: (cost = 1, maxDelayMs?: number) => store.take('k', rule, cost, maxDelayMs),
  };
}

describe('leaky bucket', () => {
  it('spaces a burst out at the drain rate and refuses what would overflow', async () => {
    const { take, at } = setup();
    assert.deepEqual(take(), admitted(2, 100, 0));
    assert.deepEqual(take(), admitted(1, 200, 100));
    assert.deepEqual(take(), admitted(0, 300, 200));
    assert.deepEqual(take(), refused(0, 300, 100));
    await at(50);
    assert.deepEqual(take(), refused(0, 250, 50));
    await at(100);
    assert.deepEqual(take(), admitted(0, 300, 200), 'proceeds at 300: the slot after the three before it');
    await at(1_000);
    assert.deepEqual(take(), admitted(2, 100, 0), 'drained: no wait');
  });

  it('gives every admitted request its own slot, evenly spaced', async () => {
    const { take, at } = setup();
    const proceedsAt: number[] = [];
    for (const t of [0, 0, 10, 20, 250, 260, 260, 900]) {
      await at(t);
      const d = take();
      if (d.allowed) proceedsAt.push(t + d.delayMs);
    }
    assert.deepEqual(proceedsAt, [0, 100, 200, 300, 400, 900]);
  });

  it('refuses, without counting, a request that would wait longer than maxDelayMs', () => {
    const { take } = setup();
    assert.deepEqual(take(1, 50), admitted(2, 100, 0));
    assert.deepEqual(take(1, 50), refused(2, 100, 50), 'would wait 100 ms, 50 more than allowed');
    assert.deepEqual(take(1, 100), admitted(1, 200, 100), 'a wait equal to maxDelayMs is accepted; the refusal took no slot');
  });

  it('pours cost requests at once and refuses forever a cost above capacity', async () => {
    const { take, at } = setup();
    assert.deepEqual(take(2), admitted(1, 200, 0));
    assert.deepEqual(take(2), refused(1, 200, 100));
    assert.deepEqual(take(4), refused(1, 200, Infinity));
    await at(100);
    assert.deepEqual(take(2), admitted(0, 300, 100));
  });

  it('rejects invalid options with InvalidOptionError naming the option', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ capacity: 0, drainRate: 1 }, 'capacity'],
      [{ capacity: Number.NaN, drainRate: 1 }, 'capacity'],
      [{ capacity: 3, drainRate: 0 }, 'drainRate'],
      [{ capacity: 3, drainRate: -2 }, 'drainRate'],
      [{ capacity: 3, drainRate: 0.5 }, 'drainRate'],
      [{ capacity: 3, drainRate: 1, drainIntervalMs: 0 }, 'drainIntervalMs'],
      [{ capacity: 3, drainRate: 1, drainIntervalMs: Number.NaN }, 'drainIntervalMs'],
    ];
    for (const [options, option] of cases) {
      assert.throws(() => leakyBucket(options as never), (e: unknown) => e instanceof InvalidOptionError && e.option === option, JSON.stringify(options));
    }
  });
});
