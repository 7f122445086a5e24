import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CircuitOpenError, DeadlineExceededError, InvalidOptionError, TimeoutError } from '../errors.js';
import { pipeline } from '../pipeline.js';
import type { CallContext } from '../scope.js';
import { VirtualClock, track } from '../testing/index.js';
import { deadline } from '../timeout.js';
import { RetryBudget } from './retry-budget.js';
import { retry, type RetryEvents, type RetryOptions } from './retry-policy.js';


const httpError = (status: number, extra: object = {}): Error => Object.assign(new Error(`HTTP ${status}`), { status }, extra);

/** A retry policy on virtual time with exact (unjittered) delays. */
function exactRetry(clock: VirtualClock, options: RetryOptions = {}): ReturnType<typeof retry> {
  return retry({ clock, maxAttempts: 4, ...options, backoff: { baseMs: 100, jitter: 'none', ...options.backoff } });
}

/** Runs `fn` under `policy` until the clock has nothing left to do; returns the attempt times and the outcome. */
async function runFailing(
  clock: VirtualClock,
  policy: ReturnType<typeof retry>,
  failure: (attempt: number) => unknown,
): Promise<{ times: number[]; error: unknown; settledAt: number }> {
  const times: number[] = [];
  let settledAt = -1;
  const result = policy.execute((ctx) => {
    times.push(clock.now());
    throw failure(ctx.attempt);
  });
  const done = result.then(
    () => assert.fail('expected a failure'),
    (error: unknown) => {
      settledAt = clock.now();
      return error;
    },
  );
  await clock.runAll();
  const error = await done;
  return { times, error, settledAt };
}

describe('retry', () => {
  describe('timing', () => {
    it('retries at exact exponential times with jitter: none', async () => {
      const clock = new VirtualClock();
      const { times, settledAt } = await runFailing(clock, exactRetry(clock), () => httpError(503));
      assert.deepEqual(times, [0, 100, 300, 700]);
      assert.equal(settledAt, 700);
      assert.equal(clock.pendingTimers(), 0);
    });

    it('caps each delay at capMs and grows by the multiplier', async () => {
      const clock = new VirtualClock();
      const capped = await runFailing(clock, exactRetry(clock, { maxAttempts: 5, backoff: { capMs: 250 } }), () => httpError(503));
      assert.deepEqual(capped.times, [0, 100, 300, 550, 800]);

      const clock3 = new VirtualClock();
      const tripled = await runFailing(clock3, exactRetry(clock3, { backoff: { multiplier: 3 } }), () => httpError(503));
      assert.deepEqual(tripled.times, [0, 100, 400, 1_300]);
    });

    it('uses a constant delay with kind: constant', async () => {
      const clock = new VirtualClock();
      const { times } = await runFailing(clock, exactRetry(clock, { backoff: { kind: 'constant', baseMs: 40 } }), () => httpError(503));
      assert.deepEqual(times, [0, 40, 80, 120]);
    });

    it('draws jitter from the given random source', async () => {
      const clock = new VirtualClock();
      const policy = retry({ clock, maxAttempts: 3, random: () => 0.5, backoff: { baseMs: 100 } });
      const { times } = await runFailing(clock, policy, () => httpError(503));
      assert.deepEqual(times, [0, 50, 150]);
    });

    it('does not start an attempt before its delay is over', async () => {
      const clock = new VirtualClock();
      let calls = 0;
      const state = track(
        exactRetry(clock, { maxAttempts: 2 }).execute(() => {
          calls++;
          if (calls === 1) throw httpError(503);
          return 'second';
        }),
      );
      await clock.advance(99);
      assert.equal(calls, 1);
      assert.equal(state.settled, false);
      await clock.advance(1);
      assert.equal(calls, 2);
      assert.equal(state.value, 'second');
      assert.equal(clock.pendingTimers(), 0);
    });
  });

  describe('what is retried', () => {
    const retried: [string, () => unknown][] = [
      ['HTTP 503', () => httpError(503)],
      ['HTTP 502', () => httpError(502)],
      ['HTTP 504', () => httpError(504)],
      ['HTTP 429', () => httpError(429)],
      ['statusCode 503', () => Object.assign(new Error('x'), { statusCode: 503 })],
      ['ECONNRESET', () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })],
      ['ECONNREFUSED', () => Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })],
      ['Bulwark TimeoutError', () => new TimeoutError(50)],
      ['a DOMException TimeoutError', () => new DOMException('timed out', 'TimeoutError')],
    ];
    const notRetried: [string, () => unknown][] = [
      ['HTTP 400', () => httpError(400)],
      ['HTTP 404', () => httpError(404)],
      ['HTTP 500', () => httpError(500)],
      ['HTTP 501', () => httpError(501)],
      ['a plain Error', () => new Error('bug')],
      ['a TypeError', () => new TypeError('x is undefined')],
      ['a thrown string', () => 'boom'],
      ['DeadlineExceededError', () => new DeadlineExceededError()],
      ['CircuitOpenError', () => new CircuitOpenError('db', false, 1_000)],
      ['an explicit retryable: false on a 503', () => httpError(503, { retryable: false })],
    ];

    for (const [label, make] of retried) {
      it(`retries ${label} by default and throws the very last error object`, async () => {
        const clock = new VirtualClock();
        const errors: unknown[] = [];
        const { times, error } = await runFailing(clock, exactRetry(clock, { maxAttempts: 3 }), () => {
          const e = make();
          errors.push(e);
          return e;
        });
        assert.equal(times.length, 3);
        assert.equal(error, errors[2]);
      });
    }

    for (const [label, make] of notRetried) {
      it(`does not retry ${label} by default and throws it as it is`, async () => {
        const clock = new VirtualClock();
        const original = make();
        const { times, error } = await runFailing(clock, exactRetry(clock, { maxAttempts: 3 }), () => original);
        assert.deepEqual(times, [0]);
        assert.equal(error, original);
      });
    }

    it('retries an error that sets retryable: true even with a non-transient status', async () => {
      const clock = new VirtualClock();
      const { times } = await runFailing(clock, exactRetry(clock, { maxAttempts: 2 }), () => httpError(400, { retryable: true }));
      assert.equal(times.length, 2);
    });

    it('asks retryOn, with the error and the failed attempt number', async () => {
      const clock = new VirtualClock();
      const asked: [unknown, number][] = [];
      const errors: Error[] = [];
      const policy = exactRetry(clock, {
        retryOn: (error, attempt) => {
          asked.push([error, attempt]);
          return attempt < 2;
        },
      });
      const { times, error } = await runFailing(clock, policy, (attempt) => {
        const e = new Error(`failure ${attempt}`);
        errors.push(e);
        return e;
      });
      assert.deepEqual(times, [0, 100]);
      assert.deepEqual(asked, [
        [errors[0], 1],
        [errors[1], 2],
      ]);
      assert.equal(error, errors[1]);
    });

    it('returns the value of the first attempt that succeeds', async () => {
      const clock = new VirtualClock();
      let calls = 0;
      const result = exactRetry(clock).execute(() => {
        calls++;
        if (calls < 3) throw httpError(503);
        return Promise.resolve({ ok: calls });
      });
      await clock.runAll();
      assert.deepEqual(await result, { ok: 3 });
      assert.equal(clock.pendingTimers(), 0);
    });
  });

  describe('Retry-After', () => {
    it('waits at least a Retry-After header given in seconds', async () => {
      const clock = new VirtualClock();
      const { times } = await runFailing(clock, exactRetry(clock, { maxAttempts: 2 }), () => httpError(503, { headers: { 'retry-after': '2' } }));
      assert.deepEqual(times, [0, 2_000]);
    });

    it('reads Retry-After from a Headers object and from repeated header values', async () => {
      const clock = new VirtualClock();
      const fetchLike = await runFailing(clock, exactRetry(clock, { maxAttempts: 2 }), () => httpError(429, { headers: new Headers({ 'Retry-After': '1' }) }));
      assert.deepEqual(fetchLike.times, [0, 1_000]);
      const nodeClock = new VirtualClock();
      const nodeLike = await runFailing(nodeClock, exactRetry(nodeClock, { maxAttempts: 2 }), () => httpError(503, { headers: { 'retry-after': ['3', '9'] } }));
      assert.deepEqual(nodeLike.times, [0, 3_000]);
    });

    it('waits at least retryAfterMs', async () => {
      const clock = new VirtualClock();
      const { times } = await runFailing(clock, exactRetry(clock, { maxAttempts: 3 }), () => httpError(429, { retryAfterMs: 750 }));
      assert.deepEqual(times, [0, 750, 1_500]);
    });

    it('never shortens the backoff delay', async () => {
      const clock = new VirtualClock();
      const { times } = await runFailing(clock, exactRetry(clock, { maxAttempts: 3 }), () => httpError(429, { retryAfterMs: 10 }));
      assert.deepEqual(times, [0, 100, 300]);
    });

    it('is ignored with honourRetryAfter: false', async () => {
      const clock = new VirtualClock();
      const { times } = await runFailing(clock, exactRetry(clock, { maxAttempts: 2, honourRetryAfter: false }), () => httpError(429, { retryAfterMs: 5_000 }));
      assert.deepEqual(times, [0, 100]);
    });

    it('gives up, throwing the original error, when Retry-After asks for more than maxRetryAfterMs', async () => {
      const clock = new VirtualClock();
      const policy = exactRetry(clock, { maxRetryAfterMs: 1_000 });
      const giveUps: RetryEvents['giveUp'][] = [];
      policy.on('giveUp', (e) => giveUps.push(e));
      const original = httpError(503, { headers: { 'retry-after': '2' } });
      const { times, error, settledAt } = await runFailing(clock, policy, () => original);
      assert.deepEqual(times, [0]);
      assert.equal(settledAt, 0);
      assert.equal(error, original);
      assert.deepEqual(
        giveUps.map((e) => [e.reason, e.attempts]),
        [['retry-after', 1]],
      );
    });

    it('waits a Retry-After exactly at maxRetryAfterMs', async () => {
      const clock = new VirtualClock();
      const { times } = await runFailing(clock, exactRetry(clock, { maxAttempts: 2, maxRetryAfterMs: 1_000 }), () => httpError(503, { retryAfterMs: 1_000 }));
      assert.deepEqual(times, [0, 1_000]);
    });

    it('gives up on a Retry-After date too far ahead', async () => {
      const clock = new VirtualClock();
      const inAnHour = new Date(Date.now() + 3_600_000).toUTCString();
      const { times } = await runFailing(clock, exactRetry(clock), () => httpError(503, { headers: { 'retry-after': inAnHour } }));
      assert.deepEqual(times, [0]);
    });
  });

  describe('the deadline', () => {
    it('never sleeps past the deadline: gives up with reason deadline and the original error', async () => {
      const clock = new VirtualClock();
      const policy = retry({ clock, maxAttempts: 5, backoff: { baseMs: 100, jitter: 'none' } });
      const giveUps: RetryEvents['giveUp'][] = [];
      policy.on('giveUp', (e) => giveUps.push(e));
      const errors: Error[] = [];
      const times: number[] = [];
      const result = pipeline(deadline(250, { clock }), policy).execute(() => {
        times.push(clock.now());
        const e = httpError(503);
        errors.push(e);
        throw e;
      });
      const state = track(result);
      await clock.advance(100);
      // The second attempt failed at 100; the next wait (200 ms) would end at 300, past 250.
      assert.equal(state.settled, true);
      assert.equal(state.error, errors[1]);
      assert.ok(!(state.error instanceof DeadlineExceededError));
      assert.deepEqual(times, [0, 100]);
      assert.deepEqual(
        giveUps.map((e) => [e.reason, e.attempts, e.error]),
        [['deadline', 2, errors[1]]],
      );
      assert.equal(clock.pendingTimers(), 0);
    });

    it('gives up at once when a wait would end exactly at the deadline', async () => {
      const clock = new VirtualClock();
      const times: number[] = [];
      const state = track(
        exactRetry(clock).execute(
          () => {
            times.push(clock.now());
            throw httpError(503);
          },
          { timeoutMs: 300 },
        ),
      );
      await clock.runAll();
      assert.deepEqual(times, [0, 100]);
      assert.equal((state.error as { status?: number }).status, 503);
    });

    it('lets Retry-After count against the deadline too', async () => {
      const clock = new VirtualClock();
      const policy = exactRetry(clock);
      const giveUps: RetryEvents['giveUp'][] = [];
      policy.on('giveUp', (e) => giveUps.push(e));
      let calls = 0;
      const state = track(
        policy.execute(
          () => {
            calls++;
            throw httpError(429, { retryAfterMs: 500 });
          },
          { timeoutMs: 400 },
        ),
      );
      await clock.runAll();
      assert.equal(calls, 1);
      assert.equal((state.error as { status?: number }).status, 429);
      assert.equal(giveUps[0]?.reason, 'deadline');
    });

    it('keeps the deadline of the call in every attempt', async () => {
      const clock = new VirtualClock();
      const deadlines: number[] = [];
      const result = exactRetry(clock, { maxAttempts: 3 }).execute(
        (ctx) => {
          deadlines.push(ctx.deadline);
          throw httpError(503);
        },
        { timeoutMs: 10_000 },
      );
      const outcome = assert.rejects(result);
      await clock.runAll();
      await outcome;
      assert.deepEqual(deadlines, [10_000, 10_000, 10_000]);
    });
  });

  describe('unsafe operations', () => {
    it('does not retry idempotent: false without an idempotency key (reason unsafe)', async () => {
      const clock = new VirtualClock();
      const policy = exactRetry(clock);
      const giveUps: RetryEvents['giveUp'][] = [];
      policy.on('giveUp', (e) => giveUps.push(e));
      const original = httpError(503);
      let calls = 0;
      const state = track(
        policy.execute(
          () => {
            calls++;
            throw original;
          },
          { idempotent: false },
        ),
      );
      await clock.runAll();
      assert.equal(calls, 1);
      assert.equal(state.error, original);
      assert.deepEqual(
        giveUps.map((e) => [e.reason, e.attempts]),
        [['unsafe', 1]],
      );
    });

    it('retries idempotent: false with an idempotency key, which the operation sees in every attempt', async () => {
      const clock = new VirtualClock();
      const seen: [number, string | undefined][] = [];
      const result = exactRetry(clock, { maxAttempts: 3 }).execute(
        (ctx) => {
          seen.push([ctx.attempt, ctx.idempotencyKey]);
          if (ctx.attempt < 3) throw httpError(503);
          return 'charged once';
        },
        { idempotent: false, idempotencyKey: 'order-42' },
      );
      await clock.runAll();
      assert.equal(await result, 'charged once');
      assert.deepEqual(seen, [
        [1, 'order-42'],
        [2, 'order-42'],
        [3, 'order-42'],
      ]);
    });

    it('gives an idempotent call without a key an undefined idempotencyKey', async () => {
      const clock = new VirtualClock();
      let key: string | undefined = 'unset';
      await exactRetry(clock).execute((ctx) => (key = ctx.idempotencyKey));
      assert.equal(key, undefined);
    });
  });

  it('numbers the attempts in ctx.attempt, with a fresh signal for each', async () => {
    const clock = new VirtualClock();
    const contexts: CallContext[] = [];
    const result = exactRetry(clock).execute((ctx) => {
      contexts.push(ctx);
      throw httpError(503);
    });
    const outcome = assert.rejects(result);
    await clock.runAll();
    await outcome;
    assert.deepEqual(
      contexts.map((c) => c.attempt),
      [1, 2, 3, 4],
    );
    assert.equal(new Set(contexts.map((c) => c.signal)).size, 4);
  });

  describe('retry budget', () => {
    it('stops retrying when the shared budget is spent, and emits budgetExhausted', async () => {
      const clock = new VirtualClock();
      // ratio 0, floor = 0.1/s * 10 s = one retry in the window.
      const budget = new RetryBudget({ clock, ratio: 0, minRetriesPerSecond: 0.1, windowMs: 10_000 });
      const policy = exactRetry(clock);
      const exhausted: RetryEvents['budgetExhausted'][] = [];
      const giveUps: RetryEvents['giveUp'][] = [];
      const policyWithBudget = retry({ clock, maxAttempts: 4, budget, backoff: { baseMs: 100, jitter: 'none' } });
      policyWithBudget.on('budgetExhausted', (e) => exhausted.push(e));
      policyWithBudget.on('giveUp', (e) => giveUps.push(e));

      const errors: Error[] = [];
      const first = await runFailing(clock, policyWithBudget, () => {
        const e = httpError(503);
        errors.push(e);
        return e;
      });
      assert.deepEqual(first.times, [0, 100]);
      assert.equal(first.error, errors[1]);
      assert.deepEqual(
        exhausted.map((e) => [e.attempt, e.error]),
        [[2, errors[1]]],
      );
      assert.deepEqual(
        giveUps.map((e) => [e.reason, e.attempts]),
        [['budget', 2]],
      );

      const second = await runFailing(clock, policyWithBudget, () => httpError(503));
      assert.equal(second.times.length, 1);
      assert.equal(exhausted.length, 2);
      assert.deepEqual(budget.snapshot(), { requests: 2, retries: 1, available: 0 });

      // A policy without the budget is not limited by it.
      const unlimited = await runFailing(clock, policy, () => httpError(503));
      assert.equal(unlimited.times.length, 4);
    });

    it('counts each call as one request and each retry as one retry', async () => {
      const clock = new VirtualClock();
      const budget = new RetryBudget({ clock, ratio: 1, minRetriesPerSecond: 0 });
      const policy = retry({ clock, maxAttempts: 3, budget, backoff: { baseMs: 10, jitter: 'none' } });
      await policy.execute(() => 'ok');
      await policy.execute(() => 'ok');
      assert.deepEqual(budget.snapshot(), { requests: 2, retries: 0, available: 2 });
      const { times } = await runFailing(clock, policy, () => httpError(503));
      assert.equal(times.length, 3);
      assert.deepEqual(budget.snapshot(), { requests: 3, retries: 2, available: 1 });
    });

    it('does not spend budget on errors that are not retried', async () => {
      const clock = new VirtualClock();
      const budget = new RetryBudget({ clock, ratio: 0, minRetriesPerSecond: 0.1 });
      const policy = retry({ clock, budget });
      await runFailing(clock, policy, () => httpError(404));
      assert.equal(budget.snapshot().retries, 0);
    });
  });

  describe('cancellation', () => {
    it('a caller abort during the backoff sleep rejects with the abort reason and starts no further attempt', async () => {
      const clock = new VirtualClock();
      const controller = new AbortController();
      const reason = new Error('caller went away');
      let calls = 0;
      const policy = exactRetry(clock);
      const gaveUp: [string, number][] = [];
      policy.on('giveUp', (e) => gaveUp.push([e.reason, e.attempts]));
      const state = track(
        policy.execute(
          () => {
            calls++;
            throw httpError(503);
          },
          { signal: controller.signal },
        ),
      );
      await clock.advance(50);
      assert.equal(calls, 1);
      controller.abort(reason);
      await clock.advance(0);
      assert.equal(state.error, reason);
      assert.equal(clock.pendingTimers(), 0);
      await clock.advance(10_000);
      assert.equal(calls, 1);
      assert.deepEqual(gaveUp, [['aborted', 1]]);
    });

    it('a caller abort during an attempt gives up with reason aborted', async () => {
      const clock = new VirtualClock();
      const policy = exactRetry(clock);
      const giveUps: RetryEvents['giveUp'][] = [];
      policy.on('giveUp', (e) => giveUps.push(e));
      const controller = new AbortController();
      const reason = new Error('caller went away');
      let calls = 0;
      const state = track(
        policy.execute(
          ({ signal }) => {
            calls++;
            return new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)));
          },
          { signal: controller.signal },
        ),
      );
      await clock.advance(10);
      controller.abort(reason);
      await clock.runAll();
      assert.equal(state.error, reason);
      assert.equal(calls, 1);
      assert.deepEqual(
        giveUps.map((e) => [e.reason, e.attempts, e.error]),
        [['aborted', 1, reason]],
      );
    });

    it('runs nothing when the caller signal is already aborted', async () => {
      const clock = new VirtualClock();
      const controller = new AbortController();
      const reason = new Error('already gone');
      controller.abort(reason);
      let calls = 0;
      await assert.rejects(
        exactRetry(clock).execute(() => calls++, { signal: controller.signal }),
        (e) => e === reason,
      );
      assert.equal(calls, 0);
    });
  });

  describe('events', () => {
    it('emits retry before each wait and giveUp once, with the failed attempt and its error', async () => {
      const clock = new VirtualClock();
      const policy = exactRetry(clock, { name: 'payments', maxAttempts: 3 });
      const retries: (RetryEvents['retry'] & { type: string; policy: string })[] = [];
      const giveUps: (RetryEvents['giveUp'] & { type: string; policy: string })[] = [];
      policy.on('retry', (e) => retries.push(e));
      policy.on('giveUp', (e) => giveUps.push(e));
      const errors: Error[] = [];
      await runFailing(clock, policy, () => {
        const e = httpError(503);
        errors.push(e);
        return e;
      });
      assert.deepEqual(retries, [
        { type: 'retry', policy: 'payments', attempt: 1, delayMs: 100, error: errors[0] },
        { type: 'retry', policy: 'payments', attempt: 2, delayMs: 200, error: errors[1] },
      ]);
      assert.deepEqual(giveUps, [{ type: 'giveUp', policy: 'payments', attempts: 3, reason: 'attempts', error: errors[2] }]);
    });

    it('gives up with reason not-retryable on a permanent error', async () => {
      const clock = new VirtualClock();
      const policy = exactRetry(clock);
      const giveUps: RetryEvents['giveUp'][] = [];
      const retries: RetryEvents['retry'][] = [];
      policy.on('giveUp', (e) => giveUps.push(e));
      policy.on('retry', (e) => retries.push(e));
      const original = httpError(404);
      await runFailing(clock, policy, () => original);
      assert.deepEqual(retries, []);
      assert.deepEqual(
        giveUps.map((e) => [e.reason, e.attempts, e.error]),
        [['not-retryable', 1, original]],
      );
    });

    it('gives up with reason attempts at once when maxAttempts is 1', async () => {
      const clock = new VirtualClock();
      const policy = retry({ clock, maxAttempts: 1 });
      const giveUps: RetryEvents['giveUp'][] = [];
      policy.on('giveUp', (e) => giveUps.push(e));
      const { times } = await runFailing(clock, policy, () => httpError(503));
      assert.deepEqual(times, [0]);
      assert.deepEqual(
        giveUps.map((e) => [e.reason, e.attempts]),
        [['attempts', 1]],
      );
    });

    it('emits nothing on a first-attempt success and stops emitting once unsubscribed', async () => {
      const clock = new VirtualClock();
      const policy = exactRetry(clock, { maxAttempts: 2 });
      const seen: string[] = [];
      const stopRetry = policy.on('retry', (e) => seen.push(e.type));
      const stopGiveUp = policy.on('giveUp', (e) => seen.push(e.type));
      await policy.execute(() => 'ok');
      assert.deepEqual(seen, []);
      stopRetry();
      stopGiveUp();
      await runFailing(clock, policy, () => httpError(503));
      assert.deepEqual(seen, []);
    });
  });

  describe('options', () => {
    const invalid: [string, RetryOptions][] = [
      ['maxAttempts', { maxAttempts: 0 }],
      ['maxAttempts', { maxAttempts: 1.5 }],
      ['maxAttempts', { maxAttempts: 1_001 }],
      ['maxAttempts', { maxAttempts: Number.NaN }],
      ['retryOn', { retryOn: 'yes' as never }],
      ['random', { random: 0.5 as never }],
      ['maxRetryAfterMs', { maxRetryAfterMs: -1 }],
      ['maxRetryAfterMs', { maxRetryAfterMs: Number.NaN }],
      ['backoff.capMs', { backoff: { baseMs: 100, capMs: 50 } }],
      ['backoff.baseMs', { backoff: { baseMs: -1 } }],
      ['backoff.multiplier', { backoff: { multiplier: 0.5 } }],
      ['backoff.jitter', { backoff: { jitter: 'random' as never } }],
      ['name', { name: '' }],
    ];
    for (const [option, options] of invalid) {
      it(`refuses an invalid ${option} (${JSON.stringify(options)}) with InvalidOptionError`, () => {
        assert.throws(
          () => retry(options),
          (e: unknown) => e instanceof InvalidOptionError && e.option === option && e.message.startsWith(`retry: option "${option}"`),
        );
      });
    }

    it('accepts an unbounded maxRetryAfterMs and defaults to 3 attempts', () => {
      assert.doesNotThrow(() => retry({ maxRetryAfterMs: Infinity }));
      assert.equal(retry().maxAttempts, 3);
      assert.equal(retry().backoff.jitter, 'full');
    });
  });
});
