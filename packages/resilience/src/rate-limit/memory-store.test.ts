import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { InvalidOptionError } from '../errors.js';
import { VirtualClock } from '../testing/index.js';
import { fixedWindow } from './fixed-window.js';
import { MemoryRateLimitStore } from './memory-store.js';
import { tokenBucket } from './token-bucket.js';

const slow = tokenBucket({ capacity: 5, refillRate: 1, refillIntervalMs: 60_000 }); // a token a minute: keys stay unrestored
const fast = tokenBucket({ capacity: 1, refillRate: 1, refillIntervalMs: 10 }); // restored 10 ms after a take

describe('MemoryRateLimitStore', () => {
  it('never holds more than maxKeys keys', () => {
    const store = new MemoryRateLimitStore({ clock: new VirtualClock(), maxKeys: 10 });
    for (let i = 0; i < 1_000; i++) {
      store.take(`ip:${i}`, slow, 1);
      assert.ok(store.size <= 10, `size ${store.size} after ${i + 1} keys`);
    }
    assert.equal(store.take('ip:999', slow, 0).remaining, 4, 'the newest key is kept');
  });

  it('forgets fully restored keys first, which changes no decision', async () => {
    const clock = new VirtualClock();
    const store = new MemoryRateLimitStore({ clock, maxKeys: 4 });
    store.take('busy', slow, 1);
    for (const key of ['a', 'b', 'c']) store.take(key, fast, 1);
    await clock.advance(10);
    store.take('d', slow, 1);
    assert.equal(store.size, 2, 'a, b and c were restored and are gone');
    assert.equal(store.evicted, 0);
    assert.equal(store.take('busy', slow, 0).remaining, 4, 'the unrestored key kept its count');
  });

  it('then evicts the least recently used keys, down to 90% of the bound', () => {
    const store = new MemoryRateLimitStore({ clock: new VirtualClock(), maxKeys: 10 });
    for (let i = 0; i < 10; i++) store.take(`k${i}`, slow, 1);
    store.take('k0', slow, 1); // k0 is now the most recently used; k1 the least
    store.take('new', slow, 1);
    assert.equal(store.evicted, 1);
    assert.equal(store.size, 10);
    assert.equal(store.take('k0', slow, 0).remaining, 3, 'k0 kept both takes');
    assert.equal(store.take('k1', slow, 0).remaining, 5, 'k1 was forgotten and starts afresh');
  });

  it('prunes restored keys on demand, and deletes or clears keys', async () => {
    const clock = new VirtualClock();
    const store = new MemoryRateLimitStore({ clock });
    store.take('a', fast, 1);
    store.take('b', slow, 1);
    store.take('c', slow, 1);
    assert.equal(store.prune(), 0);
    await clock.advance(10);
    assert.equal(store.prune(), 1);
    assert.equal(store.delete('b'), true);
    assert.equal(store.size, 1);
    store.clear();
    assert.equal(store.size, 0);
  });

  it('starts a key afresh when a rule with another algorithm uses it', () => {
    const store = new MemoryRateLimitStore({ clock: new VirtualClock(1_000) });
    assert.equal(store.take('k', slow, 5).remaining, 0);
    assert.deepEqual(store.take('k', fixedWindow({ limit: 3, windowMs: 1_000 }), 1), { allowed: true, limit: 3, remaining: 2, resetMs: 1_000, retryAfterMs: 0, delayMs: 0 });
  });

  it('refuses an invalid cost or maxKeys with InvalidOptionError naming it', () => {
    const store = new MemoryRateLimitStore({ clock: new VirtualClock() });
    for (const cost of [-1, 1.5, Number.NaN, Infinity]) {
      assert.throws(() => store.take('k', slow, cost), (e: unknown) => e instanceof InvalidOptionError && e.option === 'cost', String(cost));
    }
    assert.equal(store.size, 0, 'an invalid request leaves no key behind');
    for (const maxKeys of [0, -1, 2.5, Number.NaN]) {
      assert.throws(() => new MemoryRateLimitStore({ maxKeys }), (e: unknown) => e instanceof InvalidOptionError && e.option === 'maxKeys', String(maxKeys));
    }
    assert.throws(() => store.take('k', { algorithm: 'sliding-log' } as never, 1), (e: unknown) => e instanceof InvalidOptionError && e.option === 'rule.algorithm');
  });
});
