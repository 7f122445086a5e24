import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BucketRing, TieredCounts, defaultResolution } from './buckets.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe('bucketed counts', () => {
  it('sums a window, counting the bucket it starts in pro rata', () => {
    const ring = new BucketRing(MINUTE, 10 * MINUTE);
    for (let m = 0; m < 10; m++) ring.add(m * MINUTE + 30_000, m, 10); // minute m: 10 events, m good
    // (5.5 min, 10 min]: half of minute 5 (5 good of 10 -> 2.5 of 5), all of minutes 6..9.
    assert.deepEqual(ring.sum(10 * MINUTE, 4.5 * MINUTE), { good: 2.5 + 6 + 7 + 8 + 9, total: 5 + 40 });
    // Inside the current bucket only: a share of its elapsed time.
    assert.deepEqual(ring.sum(9 * MINUTE + 40_000, 20_000), { good: 9 * 0.5, total: 5 });
  });

  it('forgets buckets older than its span and never grows', () => {
    const ring = new BucketRing(MINUTE, 5 * MINUTE);
    assert.equal(ring.size, 6);
    for (let m = 0; m < 1_000; m++) ring.add(m * MINUTE, 1, 1);
    // (995 min - 1 ms, 1000 min - 1 ms]: minutes 995..999 whole, and 1 ms of minute 994's 60 000.
    assert.deepEqual(ring.sum(1_000 * MINUTE - 1, 5 * MINUTE), { good: 5 + 1 / MINUTE, total: 5 + 1 / MINUTE });
    // After a silence longer than the span nothing is left.
    ring.add(2_000 * MINUTE, 0, 0);
    assert.deepEqual(ring.sum(2_000 * MINUTE, 5 * MINUTE), { good: 0, total: 0 });
  });

  it('holds 361 minute buckets and 721 hourly ones for a 30-day SLO, however many events it counts', () => {
    const counts = new TieredCounts(defaultResolution, 30 * 24 * HOUR);
    assert.equal(counts.buckets, 361 + 721);
    for (let m = 0; m < 3 * 24 * 60; m++) counts.add(m * MINUTE + 30_000, 999_000, 1_000_000);
    assert.equal(counts.buckets, 361 + 721);
    const now = 3 * 24 * HOUR;
    assert.deepEqual(counts.sum(now, 5 * MINUTE), { good: 5 * 999_000, total: 5 * 1_000_000 });
    assert.deepEqual(counts.sum(now, 24 * HOUR), { good: 1440 * 999_000, total: 1440 * 1_000_000 });
    assert.deepEqual(counts.sum(now, 30 * 24 * HOUR), { good: 3 * 1440 * 999_000, total: 3 * 1440 * 1_000_000 }, 'a window longer than the history holds the history');
  });
});
