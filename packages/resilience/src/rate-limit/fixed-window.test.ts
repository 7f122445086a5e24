import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { InvalidOptionError } from '../errors.js';
import { VirtualClock } from '../testing/index.js';
import { fixedWindow } from './fixed-window.js';
import { MemoryRateLimitStore } from './memory-store.js';
import type { RateLimitDecision } from './rate-limit-decision.js';

const admitted = (remaining: number, resetMs: number): RateLimitDecision => ({ allowed: true, limit: 3, remaining, resetMs, retryAfterMs: 0, delayMs: 0 });
const refused = (remaining: number, resetMs: number, retryAfterMs: number): RateLimitDecision => ({ allowed: false, limit: 3, remaining, resetMs, retryAfterMs, delayMs: 0 });

function setup(start = 0) {
  const clock = new VirtualClock(start);
  const store = new MemoryRateLimitStore({ clock });
  const rule = fixedWindow({ limit: 3, windowMs: 1_000 });
  return { store, rule, at: (t: number) => clock.advance(t - clock.now()), take: (cost = 1) => store.take('k', rule, cost) };
}

describe('fixed window', () => {
  it('admits limit per window and resets at the window boundary', async () => {
    const { take, at } = setup();
    assert.deepEqual(take(), admitted(2, 1_000));
    assert.deepEqual(take(), admitted(1, 1_000));
    assert.deepEqual(take(), admitted(0, 1_000));
    assert.deepEqual(take(), refused(0, 1_000, 1_000));
    await at(999);
    assert.deepEqual(take(), refused(0, 1, 1));
    await at(1_000);
    assert.deepEqual(take(), admitted(2, 1_000));
    await at(1_250);
    assert.deepEqual(take(), admitted(1, 750));
  });

  it('aligns windows to multiples of windowMs on the store clock', () => {
    const { take } = setup(10_400);
    assert.deepEqual(take(), admitted(2, 600));
  });

  it('lets twice the limit through across a boundary (the edge burst the sliding window avoids)', async () => {
    const { take, at } = setup();
    await at(999);
    for (let i = 0; i < 3; i++) assert.equal(take().allowed, true);
    await at(1_000);
    for (let i = 0; i < 3; i++) assert.equal(take().allowed, true);
    assert.equal(take().allowed, false);
  });

  it('counts cost, reads with cost 0, and refuses forever a cost above the limit', () => {
    const { take } = setup();
    assert.deepEqual(take(0), admitted(3, 0), 'nothing counted yet: nothing to reset');
    assert.deepEqual(take(2), admitted(1, 1_000));
    assert.deepEqual(take(2), refused(1, 1_000, 1_000));
    assert.deepEqual(take(4), refused(1, 1_000, Infinity));
    assert.deepEqual(take(1), admitted(0, 1_000));
  });

  it('rejects invalid options with InvalidOptionError naming the option', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ limit: 0, windowMs: 1_000 }, 'limit'],
      [{ limit: -3, windowMs: 1_000 }, 'limit'],
      [{ limit: 2.5, windowMs: 1_000 }, 'limit'],
      [{ limit: 3, windowMs: 0 }, 'windowMs'],
      [{ limit: 3, windowMs: -1 }, 'windowMs'],
      [{ limit: 3, windowMs: Number.NaN }, 'windowMs'],
      [{ limit: 3 }, 'windowMs'],
    ];
    for (const [options, option] of cases) {
      assert.throws(() => fixedWindow(options as never), (e: unknown) => e instanceof InvalidOptionError && e.option === option, JSON.stringify(options));
    }
  });
});
