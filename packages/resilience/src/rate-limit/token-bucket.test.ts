import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidOptionError } from '../errors.js';
import { VirtualClock } from '../testing/index.js';
import { MemoryRateLimitStore } from './memory-store.js';
import type { RateLimitDecision } from './rate-limit-decision.js';
import { tokenBucket } from './token-bucket.js';

const admitted = (limit: number, remaining: number, resetMs: number): RateLimitDecision => ({ allowed: true, limit, remaining, resetMs, retryAfterMs: 0, delayMs: 0 });
const refused = (limit: number, remaining: number, resetMs: number, retryAfterMs: number): RateLimitDecision => ({ allowed: false, limit, remaining, resetMs, retryAfterMs, delayMs: 0 });

function setup(options: Parameters<typeof tokenBucket>[0]) {
  const clock = new VirtualClock();
  const store = new MemoryRateLimitStore({ clock });
  const rule = tokenBucket(options);
  const at = (t: number) => clock.advance(t - clock.now());
  return { clock, store, rule, at, take: (cost = 1) => store.take('k', rule, cost) };
}

describe('token bucket', () => {
  it('admits a burst of capacity, refuses the next, and refills one token per interval', async () => {
    const { take, at } = setup({ capacity: 3, refillRate: 1, refillIntervalMs: 100 });
    assert.deepEqual(take(), admitted(3, 2, 100));
    assert.deepEqual(take(), admitted(3, 1, 200));
    assert.deepEqual(take(), admitted(3, 0, 300));
    assert.deepEqual(take(), refused(3, 0, 300, 100));
    await at(40);
    assert.deepEqual(take(), refused(3, 0, 260, 60));
    await at(99);
    assert.deepEqual(take(), refused(3, 0, 201, 1));
    await at(100);
    assert.deepEqual(take(), admitted(3, 0, 300));
    await at(250);
    assert.deepEqual(take(), admitted(3, 0, 250), 'one and a half tokens refilled, one taken');
    await at(10_000);
    assert.deepEqual(take(), admitted(3, 2, 100), 'never refills past capacity');
  });

  it('sustains refillRate per interval after the burst', async () => {
    const { take, at } = setup({ capacity: 10, refillRate: 10 }); // 10/s, burst 10
    let admittedCount = 0;
    for (let t = 0; t <= 1_000; t += 10) {
      await at(t);
      while (take().allowed) admittedCount++;
    }
    assert.equal(admittedCount, 10 + 10, 'the burst, then one every 100 ms for 1 s');
  });

  it('takes cost tokens at once, reads figures with cost 0, and refuses forever a cost above capacity', async () => {
    const { take, at } = setup({ capacity: 5, refillRate: 2 }); // 2 per second
    assert.deepEqual(take(2), admitted(5, 3, 1_000));
    assert.deepEqual(take(4), refused(5, 3, 1_000, 500), 'one token short: half a second at 2/s');
    assert.deepEqual(take(0), admitted(5, 3, 1_000), 'cost 0 only reads');
    assert.deepEqual(take(6), refused(5, 3, 1_000, Infinity));
    await at(500);
    assert.deepEqual(take(4), admitted(5, 0, 2_500));
  });

  it('rounds times up, so waiting retryAfterMs is always enough', async () => {
    const { take, at } = setup({ capacity: 1, refillRate: 3 }); // a token every 333.3 ms
    assert.deepEqual(take(), admitted(1, 0, 334));
    assert.deepEqual(take(), refused(1, 0, 334, 334));
    await at(333);
    assert.equal(take().allowed, false);
    await at(334);
    assert.equal(take().allowed, true);
  });

  it('rejects invalid options with InvalidOptionError naming the option', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ capacity: 0, refillRate: 1 }, 'capacity'],
      [{ capacity: -1, refillRate: 1 }, 'capacity'],
      [{ capacity: 1.5, refillRate: 1 }, 'capacity'],
      [{ capacity: Number.NaN, refillRate: 1 }, 'capacity'],
      [{ refillRate: 1 }, 'capacity'],
      [{ capacity: 1, refillRate: 0 }, 'refillRate'],
      [{ capacity: 1, refillRate: Number.NaN }, 'refillRate'],
      [{ capacity: 1, refillRate: 1, refillIntervalMs: 0 }, 'refillIntervalMs'],
      [{ capacity: 1, refillRate: 1, refillIntervalMs: -100 }, 'refillIntervalMs'],
      [{ capacity: 1, refillRate: 1, refillIntervalMs: Number.NaN }, 'refillIntervalMs'],
      [{ capacity: 1, refillRate: 1, refillIntervalMs: Infinity }, 'refillIntervalMs'],
    ];
    for (const [options, option] of cases) {
      assert.throws(
        () => tokenBucket(options as never),
        (e: unknown) => e instanceof InvalidOptionError && e.option === option && e.message.includes(`"${option}"`),
        `${JSON.stringify(options)} should be refused for ${option}`,
      );
    }
  });

  it('property: never admits more than capacity + rate × elapsed, over any span of a random sequence', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 2_000 }),
        fc.array(fc.record({ gap: fc.integer({ min: 0, max: 300 }), cost: fc.integer({ min: 0, max: 6 }) }), { maxLength: 80 }),
        (capacity, refillRate, refillIntervalMs, requests) => {
          const clock = new VirtualClock();
          let now = 0;
          const store = new MemoryRateLimitStore({ clock: { now: () => now, setTimer: clock.setTimer.bind(clock) } });
          const rule = tokenBucket({ capacity, refillRate, refillIntervalMs });
          const admittedAt: { t: number; cost: number }[] = [];
          for (const { gap, cost } of requests) {
            now += gap;
            const d = store.take('k', rule, cost);
            assert.ok(d.remaining >= 0 && d.remaining <= capacity);
            if (d.allowed) admittedAt.push({ t: now, cost });
          }
          for (let i = 0; i < admittedAt.length; i++) {
            let sum = 0;
            for (let j = i; j < admittedAt.length; j++) {
              sum += admittedAt[j]!.cost;
              const elapsed = admittedAt[j]!.t - admittedAt[i]!.t;
              assert.ok(sum <= capacity + (refillRate * elapsed) / refillIntervalMs, `${sum} admitted in ${elapsed} ms`);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
