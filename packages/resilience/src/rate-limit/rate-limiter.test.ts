import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { InvalidOptionError, RateLimitedError } from '../errors.js';
import { pipeline } from '../pipeline.js';
import { retry } from '../retry/retry-policy.js';
import { VirtualClock } from '../testing/index.js';
import { fixedWindow, leakyBucket, MemoryRateLimitStore, rateLimiter, tokenBucket, type RateLimitDecision, type RateLimitRule, type RateLimitStore } from './index.js';

describe('rateLimiter', () => {
  it('runs admitted calls synchronously, and rejects the rest with RateLimitedError carrying retryAfterMs', async () => {
    const clock = new VirtualClock();
    const limiter = rateLimiter({ name: 'search', clock, rule: tokenBucket({ capacity: 2, refillRate: 1, refillIntervalMs: 100 }) });
    const rejected: unknown[] = [];
    limiter.on('rejected', (e) => rejected.push(e));
    let calls = 0;
    const call = () => limiter.execute(() => ++calls);
    const first = call();
    assert.equal(calls, 1, 'a synchronous store admits without waiting for a microtask');
    assert.equal(await first, 1);
    assert.equal(await call(), 2);
    const error: unknown = await call().catch((e: unknown) => e);
    assert.ok(error instanceof RateLimitedError);
    assert.equal(error.limiter, 'search');
    assert.equal(error.retryAfterMs, 100, 'the bucket has a token again 100 ms later');
    assert.equal(error.retryable, true);
    assert.equal(calls, 2, 'a refused call never runs');
    assert.deepEqual(rejected, [{ type: 'rejected', policy: 'search', key: 'search', limit: 2, remaining: 0, retryAfterMs: 100 }]);
  });

  it('counts each key apart, and takes cost per call', async () => {
    const clock = new VirtualClock();
    const store = new MemoryRateLimitStore({ clock });
    let user = 'ann';
    const limiter = rateLimiter({ clock, store, rule: fixedWindow({ limit: 4, windowMs: 1_000 }), key: (ctx) => `${user}:${ctx.attempt}`, cost: 2 });
    await limiter.execute(() => 'ok');
    await limiter.execute(() => 'ok');
    await assert.rejects(limiter.execute(() => 'ok'), RateLimitedError);
    user = 'bob';
    assert.equal(await limiter.execute(() => 'ok'), 'ok');
    assert.equal(store.take('ann:1', limiter.rule, 0).remaining, 0);
    assert.equal(store.take('bob:1', limiter.rule, 0).remaining, 2);
  });

  it('take(key, cost) returns the decision without running anything', () => {
    const clock = new VirtualClock();
    const limiter = rateLimiter({ clock, rule: { capacity: 3, refillRate: 1 } });
    let rejected = 0;
    limiter.on('rejected', () => rejected++);
    assert.deepEqual(limiter.take('ip:1'), { allowed: true, limit: 3, remaining: 2, resetMs: 1_000, retryAfterMs: 0, delayMs: 0 });
    assert.deepEqual(limiter.take('ip:1', 3), { allowed: false, limit: 3, remaining: 2, resetMs: 1_000, retryAfterMs: 1_000, delayMs: 0 });
    assert.equal(rejected, 1);
    assert.throws(() => limiter.take('ip:1', -1), (e: unknown) => e instanceof InvalidOptionError && e.option === 'cost');
  });

  it('take(key, cost, maxDelayMs) hands a leaky bucket delay to the caller, or refuses a longer one', () => {
    const clock = new VirtualClock();
    const limiter = rateLimiter({ clock, rule: leakyBucket({ capacity: 3, drainRate: 10 }) });
    assert.equal((limiter.take('q') as RateLimitDecision).delayMs, 0, 'a memory store answers synchronously');
    assert.deepEqual(limiter.take('q', 1, 100), { allowed: true, limit: 3, remaining: 1, resetMs: 200, retryAfterMs: 0, delayMs: 100 });
    assert.deepEqual(limiter.take('q', 1, 150), { allowed: false, limit: 3, remaining: 1, resetMs: 200, retryAfterMs: 50, delayMs: 0 });
  });

  it('with a leaky bucket, delays each call to its turn', async () => {
    const clock = new VirtualClock();
    const limiter = rateLimiter({ clock, rule: leakyBucket({ capacity: 3, drainRate: 1, drainIntervalMs: 100 }) });
    const delays: number[] = [];
    limiter.on('delayed', (e) => delays.push(e.delayMs));
    const ranAt: number[] = [];
    const results = [1, 2, 3].map((n) =>
      limiter.execute(() => {
        ranAt.push(clock.now());
        return n;
      }),
    );
    const fourth = assert.rejects(limiter.execute(() => 4), (e: unknown) => e instanceof RateLimitedError && e.retryAfterMs === 100);
    await clock.advance(250);
    assert.deepEqual(ranAt, [0, 100, 200]);
    assert.deepEqual(await Promise.all(results), [1, 2, 3]);
    assert.deepEqual(delays, [100, 200]);
    await fourth;
  });

  it('refuses at once, and takes no slot, when the delay would pass the deadline', async () => {
    const clock = new VirtualClock();
    const limiter = rateLimiter({ clock, rule: leakyBucket({ capacity: 5, drainRate: 1, drainIntervalMs: 100 }) });
    const ranAt: number[] = [];
    const run = () => ranAt.push(clock.now());
    const first = limiter.execute(run, { timeoutMs: 150 });
    const second = limiter.execute(run, { timeoutMs: 150 });
    const third = limiter.execute(run, { timeoutMs: 150 });
    await assert.rejects(third, (e: unknown) => e instanceof RateLimitedError && e.retryAfterMs === 50);
    const fourth = limiter.execute(run);
    await clock.advance(200);
    await Promise.all([first, second, fourth]);
    assert.deepEqual(ranAt, [0, 100, 200], 'the refused call left its slot to the next one');
  });

  it('a call cancelled by its signal while it waits its turn rejects with the reason and never runs', async () => {
    const clock = new VirtualClock();
    const limiter = rateLimiter({ clock, rule: leakyBucket({ capacity: 3, drainRate: 1, drainIntervalMs: 100 }) });
    await limiter.execute(() => undefined);
    const controller = new AbortController();
    let ran = false;
    const waiting = limiter.execute(
      () => {
        ran = true;
      },
      { signal: controller.signal },
    );
    const outcome = assert.rejects(waiting, (e: unknown) => e instanceof Error && e.message === 'user left');
    await clock.advance(50);
    controller.abort(new Error('user left'));
    await outcome;
    assert.equal(clock.pendingTimers(), 0, 'the wait timer was cancelled');
    await clock.advance(1_000);
    assert.equal(ran, false);
  });

  it('works with an asynchronous store, and turns a throwing key or store into a rejection', async () => {
    const clock = new VirtualClock();
    const memory = new MemoryRateLimitStore({ clock });
    const remote: RateLimitStore = { take: (key: string, rule: RateLimitRule, cost: number): Promise<RateLimitDecision> => Promise.resolve(memory.take(key, rule, cost)) };
    const limiter = rateLimiter({ clock, store: remote, rule: tokenBucket({ capacity: 1, refillRate: 1 }) });
    assert.equal(await limiter.execute(() => 'ok'), 'ok');
    await assert.rejects(limiter.execute(() => 'ok'), (e: unknown) => e instanceof RateLimitedError && e.retryAfterMs === 1_000);
    assert.equal((await limiter.take('other')).allowed, true);

    const down: RateLimitStore = {
      take: () => {
        throw new Error('store down');
      },
    };
    const broken = rateLimiter({ clock, store: down, rule: tokenBucket({ capacity: 1, refillRate: 1 }) });
    let result: Promise<unknown> | undefined;
    assert.doesNotThrow(() => (result = broken.execute(() => 'ok')));
    await assert.rejects(result!, /store down/);
    const badKey = rateLimiter({
      clock,
      rule: tokenBucket({ capacity: 1, refillRate: 1 }),
      key: () => {
        throw new Error('no user');
      },
    });
    await assert.rejects(badKey.execute(() => 'ok'), /no user/);
  });

  it('composes: an outer retry waits the RateLimitedError retryAfterMs, then the call is admitted', async () => {
    const clock = new VirtualClock();
    const limiter = rateLimiter({ clock, rule: tokenBucket({ capacity: 1, refillRate: 1, refillIntervalMs: 100 }) });
    const policy = pipeline({ retry: retry({ clock, maxAttempts: 2, backoff: { baseMs: 1, jitter: 'none' } }), rateLimiter: limiter });
    await policy.execute(() => 'first');
    const ranAt: number[] = [];
    const second = policy.execute(() => ranAt.push(clock.now()));
    await clock.advance(100);
    await second;
    assert.deepEqual(ranAt, [100]);
  });

  it('rejects invalid options with InvalidOptionError naming the option', () => {
    const rule = tokenBucket({ capacity: 3, refillRate: 1 });
    const cases: [Record<string, unknown>, string][] = [
      [{}, 'rule'],
      [{ rule: { algorithm: 'fixed-window', limit: 0, windowMs: 1_000 } }, 'limit'],
      [{ rule: { algorithm: 'gcra', limit: 1 } }, 'rule.algorithm'],
      [{ rule, cost: 4 }, 'cost'],
      [{ rule, cost: -1 }, 'cost'],
      [{ rule, cost: 0.5 }, 'cost'],
      [{ rule, key: 42 }, 'key'],
      [{ rule, store: {} }, 'store'],
      [{ rule, name: '' }, 'name'],
    ];
    for (const [options, option] of cases) {
      assert.throws(() => rateLimiter(options as never), (e: unknown) => e instanceof InvalidOptionError && e.option === option, JSON.stringify(options));
    }
  });
});
