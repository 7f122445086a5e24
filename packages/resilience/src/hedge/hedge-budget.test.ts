import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { InvalidOptionError } from '../errors.js';
import { VirtualClock } from '../testing/index.js';
import { HedgeBudget } from './hedge-budget.js';

describe('HedgeBudget', () => {
  it('grants hedges up to ratio × requests, plus the per-second floor over the window', () => {
    const clock = new VirtualClock();
    const budget = new HedgeBudget({ clock, ratio: 0.1, minHedgesPerSecond: 0.2, windowMs: 10_000 }); // floor: 2 per window
    for (let i = 0; i < 50; i++) budget.recordRequest();
    let granted = 0;
    while (budget.tryHedge()) granted++;
    assert.equal(granted, 2 + 5);
    assert.deepEqual(budget.snapshot(), { requests: 50, hedges: 7, available: 0 });
    for (let i = 0; i < 10; i++) budget.recordRequest();
    assert.equal(budget.tryHedge(), true);
    assert.equal(budget.tryHedge(), false);
  });

  it('with no floor and no requests grants nothing', () => {
    const budget = new HedgeBudget({ clock: new VirtualClock(), ratio: 0.5, minHedgesPerSecond: 0 });
    assert.equal(budget.tryHedge(), false);
    budget.recordRequest();
    budget.recordRequest();
    assert.equal(budget.tryHedge(), true);
    assert.equal(budget.tryHedge(), false);
  });

  it('forgets requests and hedges once they leave the sliding window', async () => {
    const clock = new VirtualClock();
    const budget = new HedgeBudget({ clock, ratio: 1, minHedgesPerSecond: 0, windowMs: 1_000, buckets: 10 });
    for (let i = 0; i < 3; i++) budget.recordRequest();
    assert.equal(budget.tryHedge(), true);
    assert.equal(budget.snapshot().available, 2);
    await clock.advance(1_000);
    assert.deepEqual(budget.snapshot(), { requests: 0, hedges: 0, available: 0 });
    assert.equal(budget.tryHedge(), false);
  });

  it('defaults to 10 % of requests plus 1 hedge per second over 10 s', () => {
    const budget = new HedgeBudget({ clock: new VirtualClock() });
    assert.equal(budget.ratio, 0.1);
    assert.equal(budget.minHedgesPerSecond, 1);
    assert.equal(budget.windowMs, 10_000);
    for (let i = 0; i < 100; i++) budget.recordRequest();
    assert.equal(budget.snapshot().available, 10 + 10);
  });

  it('refuses invalid options with InvalidOptionError naming the option', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ ratio: -0.1 }, 'ratio'],
      [{ ratio: Number.NaN }, 'ratio'],
      [{ minHedgesPerSecond: -1 }, 'minHedgesPerSecond'],
      [{ windowMs: 0 }, 'windowMs'],
      [{ buckets: 1.5 }, 'buckets'],
    ];
    for (const [options, option] of cases) {
      assert.throws(
        () => new HedgeBudget(options),
        (e: unknown) => e instanceof InvalidOptionError && e.option === option,
        JSON.stringify(options),
      );
    }
  });
});
