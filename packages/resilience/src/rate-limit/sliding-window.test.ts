import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { InvalidOptionError } from '../errors.js';
import { VirtualClock } from '../testing/index.js';
import { MemoryRateLimitStore } from './memory-store.js';
import type { RateLimitDecision } from './rate-limit-decision.js';
import { slidingWindow } from './sliding-window.js';

const admitted = (remaining: number, resetMs: number): RateLimitDecision => ({ allowed: true, limit: 10, remaining, resetMs, retryAfterMs: 0, delayMs: 0 });
const refused = (remaining: number, resetMs: number, retryAfterMs: number): RateLimitDecision => ({ allowed: false, limit: 10, remaining, resetMs, retryAfterMs, delayMs: 0 });

function setup() {
  const clock = new VirtualClock();
  const store = new MemoryRateLimitStore({ clock });
  const rule = slidingWindow({ limit: 10, windowMs: 1_000 });
  return { store, rule, at: (t: number) => clock.advance(t - clock.now()), take: (cost = 1) => store.take('k', rule, cost) };
}

describe('sliding window counter', () => {
  it('weighs the previous window by the part of it still inside the sliding window', async () => {
    const { take, at } = setup();
    for (let i = 9; i >= 0; i--) assert.deepEqual(take(), admitted(i, 2_000));
    // Next window: the 10 counted slide out linearly; room for one more once 10 × (1000 − e) / 1000 ≤ 9, at e = 100.
    assert.deepEqual(take(), refused(0, 2_000, 1_100));
    await at(1_099);
    assert.deepEqual(take(), refused(0, 901, 1), 'estimate 9.01: no room for one more');
    await at(1_100);
    assert.deepEqual(take(), admitted(0, 1_900), 'estimate 9 + 1');
    await at(1_500);
    assert.deepEqual(take(), admitted(3, 1_500), 'estimate 10 × 0.5 + 1 = 6, plus this one');
    assert.deepEqual(take(3), admitted(0, 1_500));
    // 5 in this window, 10 before: room for one once 10 × (1000 − e) / 1000 ≤ 4, at e = 600.
    assert.deepEqual(take(), refused(0, 1_500, 100));
    await at(1_600);
    assert.deepEqual(take(), admitted(0, 1_400));
  });

  it('does not let the edge burst of a fixed window through', async () => {
    const { take, at } = setup();
    await at(999);
    assert.equal(take(10).allowed, true);
    await at(1_000);
    assert.deepEqual(take(), refused(0, 1_000, 100), 'the previous 10 still weigh fully');
    await at(1_500);
    assert.deepEqual(take(5), admitted(0, 1_500), 'half of them have slid out');
    assert.equal(take().allowed, false);
  });

  it('forgets a previous window that is not adjacent, and reports resetMs 0 once everything slid out', async () => {
    const { take, at } = setup();
    take(10);
    await at(1_400);
    assert.deepEqual(take(0), admitted(4, 600), 'only the previous window left: restored at its end');
    await at(2_000);
    assert.deepEqual(take(0), admitted(10, 0));
    take(10);
    await at(3_000);
    assert.deepEqual(take(0), admitted(0, 1_000));
    await at(4_000);
    assert.deepEqual(take(), admitted(9, 2_000), 'window 3 was empty, so window 2 no longer counts');
  });

  it('refuses forever a cost above the limit, and a cost that fits only later', () => {
    const { take } = setup();
    assert.deepEqual(take(11), refused(10, 0, Infinity));
    assert.deepEqual(take(6), admitted(4, 2_000));
    assert.deepEqual(take(6), refused(4, 2_000, 1_000 + 334), 'in the next window, once 6 × (1000 − e) / 1000 ≤ 4: e ≥ 333.3');
  });

  it('rejects invalid options with InvalidOptionError naming the option', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ limit: 0, windowMs: 1_000 }, 'limit'],
      [{ limit: Number.NaN, windowMs: 1_000 }, 'limit'],
      [{ limit: 10, windowMs: 0 }, 'windowMs'],
      [{ limit: 10, windowMs: -1_000 }, 'windowMs'],
      [{ limit: 10, windowMs: Infinity }, 'windowMs'],
    ];
    for (const [options, option] of cases) {
      assert.throws(() => slidingWindow(options as never), (e: unknown) => e instanceof InvalidOptionError && e.option === option, JSON.stringify(options));
    }
  });
});
