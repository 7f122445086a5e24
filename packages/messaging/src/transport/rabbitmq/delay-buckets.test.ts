import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { delayBucketMs, MAX_DELAY_MS } from './delay-buckets.js';

describe('delayBucketMs', () => {
  it('rounds a delay up to the next bucket, never down', () => {
    assert.equal(delayBucketMs(1), 50);
    assert.equal(delayBucketMs(300), 300);
    assert.equal(delayBucketMs(301), 500);
    assert.equal(delayBucketMs(3_600_000), 3_600_000);
    assert.equal(delayBucketMs(3_600_001), 7_200_000);
    for (let d = 1; d < 4_000_000; d = Math.ceil(d * 1.37)) {
      const bucket = delayBucketMs(d);
      assert.ok(bucket >= d && bucket <= Math.max(50, d * 2), `${d} -> ${bucket}`);
    }
  });

  it('keeps the set of buckets small', () => {
    const buckets = new Set<number>();
    for (let d = 1; d <= 3_600_000; d += 997) buckets.add(delayBucketMs(d));
    assert.ok(buckets.size <= 29, `${buckets.size} buckets up to an hour`);
  });

  it('refuses delays that are not positive or longer than MAX_DELAY_MS', () => {
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, MAX_DELAY_MS + 1]) assert.throws(() => delayBucketMs(bad), RangeError);
  });
});
