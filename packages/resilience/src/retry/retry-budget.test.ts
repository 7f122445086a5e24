import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidOptionError } from '../errors.js';
import { VirtualClock } from '../testing/index.js';
import { RetryBudget, type RetryBudgetOptions } from './retry-budget.js';

/** Takes retries until the budget refuses one; returns how many it granted (bounded). */
function drain(budget: RetryBudget, max = 10_000): number {
  let granted = 0;
  while (granted < max && budget.tryRetry()) granted++;
  return granted;
}

function requests(budget: RetryBudget, n: number): void {
  for (let i = 0; i < n; i++) budget.recordRequest();
}

describe('RetryBudget', () => {
  it('has the documented defaults: ratio 0.1, 10 retries per second, a 10 s window', () => {
    const budget = new RetryBudget({ clock: new VirtualClock() });
    assert.equal(budget.ratio, 0.1);
    assert.equal(budget.minRetriesPerSecond, 10);
    assert.equal(budget.windowMs, 10_000);
    assert.deepEqual(budget.snapshot(), { requests: 0, retries: 0, available: 100 });
  });

  describe('the floor', () => {
    it('grants minRetriesPerSecond * window retries with no traffic at all', () => {
      const budget = new RetryBudget({ clock: new VirtualClock(), ratio: 0, minRetriesPerSecond: 2, windowMs: 5_000 });
      assert.deepEqual(budget.snapshot(), { requests: 0, retries: 0, available: 10 });
      assert.equal(drain(budget), 10);
      assert.equal(budget.tryRetry(), false);
      assert.deepEqual(budget.snapshot(), { requests: 0, retries: 10, available: 0 });
    });

    it('grants only whole retries of a fractional floor', () => {
      const budget = new RetryBudget({ clock: new VirtualClock(), ratio: 0, minRetriesPerSecond: 0.5, windowMs: 3_000 });
      assert.equal(budget.snapshot().available, 1);
      assert.equal(drain(budget), 1);
    });

    it('grants nothing with no floor and no traffic', () => {
      const budget = new RetryBudget({ clock: new VirtualClock(), ratio: 0.5, minRetriesPerSecond: 0 });
      assert.equal(budget.tryRetry(), false);
      assert.deepEqual(budget.snapshot(), { requests: 0, retries: 0, available: 0 });
    });
  });

  describe('the ratio', () => {
    it('grants ratio * requests retries', () => {
      const budget = new RetryBudget({ clock: new VirtualClock(), ratio: 0.2, minRetriesPerSecond: 0 });
      requests(budget, 50);
      assert.deepEqual(budget.snapshot(), { requests: 50, retries: 0, available: 10 });
      assert.equal(drain(budget), 10);
      requests(budget, 5);
      assert.equal(drain(budget), 1);
      assert.deepEqual(budget.snapshot(), { requests: 55, retries: 11, available: 0 });
    });

    it('adds the ratio on top of the floor', () => {
      const budget = new RetryBudget({ clock: new VirtualClock(), ratio: 0.1, minRetriesPerSecond: 0.3, windowMs: 10_000 });
      requests(budget, 40);
      assert.equal(budget.snapshot().available, 7); // 3 + 0.1 * 40
      assert.equal(drain(budget), 7);
    });

    it('lets a ratio above 1 grant several retries per request', () => {
      const budget = new RetryBudget({ clock: new VirtualClock(), ratio: 2, minRetriesPerSecond: 0 });
      requests(budget, 3);
      assert.equal(drain(budget), 6);
    });

    it('does not count a refused retry', () => {
      const budget = new RetryBudget({ clock: new VirtualClock(), ratio: 0.5, minRetriesPerSecond: 0 });
      requests(budget, 2);
      assert.equal(budget.tryRetry(), true);
      assert.equal(budget.tryRetry(), false);
      assert.equal(budget.tryRetry(), false);
      assert.equal(budget.snapshot().retries, 1);
      requests(budget, 2);
      assert.equal(budget.tryRetry(), true);
    });
  });

  describe('the sliding window', () => {
    it('forgets requests once the window has passed them', async () => {
      const clock = new VirtualClock();
      const budget = new RetryBudget({ clock, ratio: 0.5, minRetriesPerSecond: 0, windowMs: 10_000, buckets: 10 });
      requests(budget, 10);
      await clock.advance(9_999);
      assert.deepEqual(budget.snapshot(), { requests: 10, retries: 0, available: 5 });
      await clock.advance(1);
      assert.deepEqual(budget.snapshot(), { requests: 0, retries: 0, available: 0 });
      assert.equal(budget.tryRetry(), false);
    });

    it('forgets retries once the window has passed them, so the floor refills', async () => {
      const clock = new VirtualClock();
      const budget = new RetryBudget({ clock, ratio: 0, minRetriesPerSecond: 0.2, windowMs: 10_000 });
      assert.equal(drain(budget), 2);
      await clock.advance(5_000);
      assert.equal(budget.tryRetry(), false);
      await clock.advance(5_000);
      assert.deepEqual(budget.snapshot(), { requests: 0, retries: 0, available: 2 });
      assert.equal(drain(budget), 2);
    });

    it('slides slice by slice: only the part of the window that left is forgotten', async () => {
      const clock = new VirtualClock();
      const budget = new RetryBudget({ clock, ratio: 1, minRetriesPerSecond: 0, windowMs: 10_000, buckets: 10 });
      requests(budget, 4); // t = 0
      assert.equal(drain(budget), 4);
      await clock.advance(5_000);
      requests(budget, 6); // t = 5 s
      assert.equal(budget.tryRetry(), true);
      assert.deepEqual(budget.snapshot(), { requests: 10, retries: 5, available: 5 });
      await clock.advance(5_000); // t = 10 s: what happened at t = 0 leaves the window
      assert.deepEqual(budget.snapshot(), { requests: 6, retries: 1, available: 5 });
      await clock.advance(4_999);
      assert.deepEqual(budget.snapshot(), { requests: 6, retries: 1, available: 5 });
      await clock.advance(1); // t = 15 s: and now what happened at t = 5 s
      assert.deepEqual(budget.snapshot(), { requests: 0, retries: 0, available: 0 });
    });

    it('clears everything after an idle gap of several windows', async () => {
      const clock = new VirtualClock(123_456);
      const budget = new RetryBudget({ clock, ratio: 1, minRetriesPerSecond: 0, windowMs: 1_000, buckets: 4 });
      requests(budget, 3);
      budget.tryRetry();
      await clock.advance(3_700);
      assert.deepEqual(budget.snapshot(), { requests: 0, retries: 0, available: 0 });
      requests(budget, 1);
      assert.deepEqual(budget.snapshot(), { requests: 1, retries: 0, available: 1 });
    });

    it('counts across a single bucket, forgetting it all at once', async () => {
      const clock = new VirtualClock();
      const budget = new RetryBudget({ clock, ratio: 1, minRetriesPerSecond: 0, windowMs: 1_000, buckets: 1 });
      requests(budget, 2);
      await clock.advance(999);
      requests(budget, 2);
      assert.equal(budget.snapshot().requests, 4);
      await clock.advance(1);
      assert.equal(budget.snapshot().requests, 0);
    });
  });

  it('snapshot reads without changing anything', () => {
    const budget = new RetryBudget({ clock: new VirtualClock(), ratio: 0.25, minRetriesPerSecond: 0 });
    requests(budget, 8);
    budget.tryRetry();
    const first = budget.snapshot();
    assert.deepEqual(first, { requests: 8, retries: 1, available: 1 });
    assert.deepEqual(budget.snapshot(), first);
    assert.equal(drain(budget), 1);
  });

  describe('options', () => {
    const invalid: [string, RetryBudgetOptions][] = [
      ['ratio', { ratio: -0.1 }],
      ['ratio', { ratio: Number.NaN }],
      ['ratio', { ratio: 1_001 }],
      ['minRetriesPerSecond', { minRetriesPerSecond: -1 }],
      ['minRetriesPerSecond', { minRetriesPerSecond: Number.NaN }],
      ['windowMs', { windowMs: 0 }],
      ['windowMs', { windowMs: -1_000 }],
      ['windowMs', { windowMs: Infinity }],
      ['windowMs', { windowMs: Number.NaN }],
      ['buckets', { buckets: 0 }],
      ['buckets', { buckets: 2.5 }],
      ['buckets', { buckets: 3_601 }],
    ];
    for (const [option, options] of invalid) {
      it(`refuses ${JSON.stringify(options)} with InvalidOptionError naming ${option}`, () => {
        assert.throws(
          () => new RetryBudget(options),
          (e: unknown) => e instanceof InvalidOptionError && e.option === option && e.message.startsWith(`retryBudget: option "${option}"`),
        );
      });
    }
  });
});
