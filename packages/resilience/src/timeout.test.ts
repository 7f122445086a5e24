import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BulwarkError, DeadlineExceededError, InvalidOptionError, TimeoutError } from './errors.js';
import { pipeline } from './pipeline.js';
import { retry } from './retry/retry-policy.js';
import type { CallContext } from './scope.js';
import { VirtualClock, track } from './testing/index.js';
import { deadline, timeout, type TimeoutEvents } from './timeout.js';


/** An operation that never answers, whatever its signal says. */
const never = (): Promise<never> => new Promise<never>(() => {});

/** An operation that answers with `value` after `ms` of virtual time. */
function after<T>(clock: VirtualClock, ms: number, value: T): () => Promise<T> {
  return () => new Promise<T>((resolve) => clock.setTimer(() => resolve(value), ms));
}

describe('timeout', () => {
  it('fires exactly at timeoutMs with a retryable TimeoutError and aborts ctx.signal with it', async () => {
    const clock = new VirtualClock();
    const policy = timeout(100, { clock });
    let seen: CallContext | undefined;
    let abortedAt = -1;
    const result = policy.execute((ctx) => {
      seen = ctx;
      ctx.signal.addEventListener('abort', () => (abortedAt = clock.now()));
      return never();
    });
    const state = track(result);

    await clock.advance(99);
    assert.equal(state.settled, false);
    assert.equal(seen?.signal.aborted, false);

    await clock.advance(1);
    assert.equal(state.settled, true);
    const error = state.error;
    assert.ok(error instanceof TimeoutError);
    assert.ok(!(error instanceof DeadlineExceededError));
    assert.equal(error.code, 'BULWARK_TIMEOUT');
    assert.equal(error.retryable, true);
    assert.equal(error.timeoutMs, 100);
    assert.match(error.message, /^timeout: attempt timed out after 100 ms$/);
    assert.equal(abortedAt, 100);
    assert.equal(seen?.signal.aborted, true);
    assert.equal(seen?.signal.reason, error);
    assert.equal(clock.pendingTimers(), 0);
  });

  it('gives a signal first read after the timeout an already aborted state with the same reason', async () => {
    const clock = new VirtualClock();
    let seen: CallContext | undefined;
    const result = timeout(10, { clock }).execute((ctx) => {
      seen = ctx;
      return never();
    });
    const state = track(result);
    await clock.advance(10);
    assert.ok(state.error instanceof TimeoutError);
    assert.equal(seen?.signal.aborted, true);
    assert.equal(seen?.signal.reason, state.error);
  });

  it('names the policy in the error message', async () => {
    const clock = new VirtualClock();
    const state = track(timeout(5, { clock, name: 'inventory-timeout' }).execute(never));
    await clock.advance(5);
    assert.ok(state.error instanceof TimeoutError);
    assert.match(state.error.message, /^inventory-timeout: /);
  });

  it('ignores a result that arrives after the timeout', async () => {
    const clock = new VirtualClock();
    const state = track(timeout(100, { clock }).execute(after(clock, 150, 'late')));
    await clock.advance(100);
    assert.ok(state.error instanceof TimeoutError);
    await clock.advance(100);
    assert.ok(state.error instanceof TimeoutError);
    assert.equal(state.value, undefined);
    assert.equal(clock.pendingTimers(), 0);
  });

  it('ignores a failure that arrives after the timeout', async () => {
    const clock = new VirtualClock();
    const late = new Error('late failure');
    const result = timeout(100, { clock }).execute(
      () => new Promise<never>((_, reject) => clock.setTimer(() => reject(late), 150)),
    );
    const state = track(result);
    await clock.runAll();
    assert.ok(state.error instanceof TimeoutError);
  });

  it('returns the value of an operation that finishes in time and leaves no timer behind', async () => {
    const clock = new VirtualClock();
    const policy = timeout(100, { clock });
    const state = track(policy.execute(after(clock, 99, 'ok')));
    assert.equal(clock.pendingTimers(), 2); // the operation's own timer and the timeout's
    await clock.advance(99);
    assert.equal(state.value, 'ok');
    assert.equal(clock.pendingTimers(), 0);

    assert.equal(await policy.execute(() => 42), 42);
    assert.equal(clock.pendingTimers(), 0);
    assert.equal(await policy.execute(() => Promise.resolve('async')), 'async');
    assert.equal(clock.pendingTimers(), 0);
  });

  it('passes an operation failure through as it is, before the timeout, and leaves no timer behind', async () => {
    const clock = new VirtualClock();
    const policy = timeout(100, { clock });
    const boom = new Error('boom');
    await assert.rejects(
      policy.execute(() => {
        throw boom;
      }),
      (e) => e === boom,
    );
    await assert.rejects(
      policy.execute(() => Promise.reject(boom)),
      (e) => e === boom,
    );
    assert.equal(clock.pendingTimers(), 0);
  });

  it('an inherited deadline shorter than the timeout caps it and yields DeadlineExceededError', async () => {
    const clock = new VirtualClock();
    const events: TimeoutEvents['timeout'][] = [];
    const inner = timeout(100, { clock });
    inner.on('timeout', (e) => events.push(e));
    let seen: CallContext | undefined;
    const state = track(
      deadline(50, { clock }).execute(() =>
        inner.execute((ctx) => {
          seen = ctx;
          return never();
        }),
      ),
    );
    await clock.advance(0);
    assert.equal(seen?.deadline, 50);
    assert.equal(seen?.remaining(), 50);
    await clock.advance(49);
    assert.equal(state.settled, false);
    await clock.advance(1);
    assert.ok(state.error instanceof DeadlineExceededError);
    assert.ok(!(state.error instanceof TimeoutError));
    assert.equal(state.error.retryable, false);
    assert.equal(seen?.signal.aborted, true);
    assert.ok(seen?.signal.reason instanceof DeadlineExceededError);
    assert.equal(clock.pendingTimers(), 0);
  });

  it('a timeout capped by a per-call timeoutMs reports DeadlineExceededError at that time', async () => {
    const clock = new VirtualClock(1_000);
    const policy = timeout(100, { clock });
    const events: TimeoutEvents['timeout'][] = [];
    policy.on('timeout', (e) => events.push(e));
    let seen: CallContext | undefined;
    const state = track(
      policy.execute(
        (ctx) => {
          seen = ctx;
          return never();
        },
        { timeoutMs: 30 },
      ),
    );
    await clock.advance(0);
    assert.equal(seen?.deadline, 1_030);
    await clock.advance(29);
    assert.equal(state.settled, false);
    await clock.advance(1);
    assert.ok(state.error instanceof DeadlineExceededError);
    assert.equal(clock.pendingTimers(), 0);
  });

  it('an inherited deadline longer than the timeout leaves it a retryable TimeoutError', async () => {
    const clock = new VirtualClock();
    let seen: CallContext | undefined;
    const state = track(
      pipeline(deadline(1_000, { clock }), timeout(100, { clock })).execute((ctx) => {
        seen = ctx;
        return never();
      }),
    );
    await clock.advance(0);
    assert.equal(seen?.deadline, 100);
    await clock.advance(100);
    assert.ok(state.error instanceof TimeoutError);
    assert.equal(clock.pendingTimers(), 0);
  });

  it('deadline(ms) yields a final DeadlineExceededError at ms', async () => {
    const clock = new VirtualClock();
    const policy = deadline(200, { clock });
    assert.equal(policy.total, true);
    assert.equal(policy.name, 'deadline');
    let seen: CallContext | undefined;
    const state = track(
      policy.execute((ctx) => {
        seen = ctx;
        return never();
      }),
    );
    await clock.advance(199);
    assert.equal(state.settled, false);
    await clock.advance(1);
    const error = state.error;
    assert.ok(error instanceof DeadlineExceededError);
    assert.ok(error instanceof BulwarkError);
    assert.equal(error.code, 'BULWARK_DEADLINE_EXCEEDED');
    assert.equal(error.retryable, false);
    assert.match(error.message, /^deadline: deadline exceeded$/);
    assert.equal(seen?.signal.reason, error);
    assert.equal(clock.pendingTimers(), 0);
  });

  it('gives ctx.deadline as an absolute time on the clock and ctx.remaining() as the time left', async () => {
    const clock = new VirtualClock(5_000);
    const policy = timeout(100, { clock });
    let seen: CallContext | undefined;
    let release: (() => void) | undefined;
    const state = track(
      policy.execute((ctx) => {
        seen = ctx;
        return new Promise<string>((resolve) => (release = () => resolve('done')));
      }),
    );
    await clock.advance(0);
    assert.ok(seen);
    assert.equal(seen.deadline, 5_100);
    assert.equal(seen.remaining(), 100);
    assert.equal(seen.attempt, 1);
    await clock.advance(30);
    assert.equal(seen.deadline, 5_100);
    assert.equal(seen.remaining(), 70);
    await clock.advance(69.5);
    assert.equal(seen.remaining(), 0.5);
    release?.();
    await clock.advance(0);
    assert.equal(state.value, 'done');
  });

  it('gives the operation an unbounded context when no deadline applies at all', async () => {
    const clock = new VirtualClock();
    let seen: CallContext | undefined;
    await retry({ clock }).execute((ctx) => (seen = ctx));
    assert.equal(seen?.deadline, Infinity);
    assert.equal(seen?.remaining(), Infinity);
  });

  it('emits timeout events with the configured timeout, the attempt and whether it was final', async () => {
    const clock = new VirtualClock();
    const policy = timeout(100, { clock, name: 'db' });
    const events: (TimeoutEvents['timeout'] & { type: string; policy: string })[] = [];
    const stop = policy.on('timeout', (e) => events.push(e));
    const first = track(policy.execute(never));
    await clock.advance(100);
    assert.ok(first.error instanceof TimeoutError);
    assert.deepEqual(events, [{ type: 'timeout', policy: 'db', timeoutMs: 100, attempt: 1, total: false }]);

    // A success emits nothing.
    await policy.execute(() => 'ok');
    assert.equal(events.length, 1);

    stop();
    const second = track(policy.execute(never));
    await clock.advance(100);
    assert.ok(second.error instanceof TimeoutError);
    assert.equal(events.length, 1);
  });

  it('reports one expiry once: a timeout capped by an outer deadline leaves the event to the deadline', async () => {
    const clock = new VirtualClock();
    const outer = deadline(40, { clock });
    const inner = timeout(100, { clock });
    const outerEvents: TimeoutEvents['timeout'][] = [];
    const innerEvents: TimeoutEvents['timeout'][] = [];
    outer.on('timeout', (e) => outerEvents.push(e));
    inner.on('timeout', (e) => innerEvents.push(e));
    const state = track(pipeline(outer, inner).execute(never));
    await clock.advance(40);
    assert.ok(state.error instanceof DeadlineExceededError);
    assert.equal(outerEvents.length, 1);
    assert.equal(outerEvents[0]?.total, true);
    assert.deepEqual(innerEvents, []);
    await clock.advance(1_000);
    assert.deepEqual(innerEvents, []);
    assert.equal(clock.pendingTimers(), 0);
  });

  it('emits total: true from a deadline policy', async () => {
    const clock = new VirtualClock();
    const policy = deadline(10, { clock });
    const events: TimeoutEvents['timeout'][] = [];
    policy.on('timeout', (e) => events.push(e));
    const state = track(policy.execute(never));
    await clock.advance(10);
    assert.ok(state.error instanceof DeadlineExceededError);
    assert.equal(events.length, 1);
    assert.equal(events[0]?.total, true);
    assert.equal(events[0]?.timeoutMs, 10);
  });

  it('stops the timer when the caller aborts, so no timeout fires for a call already over', async () => {
    const clock = new VirtualClock();
    const policy = timeout(100, { clock });
    const events: TimeoutEvents['timeout'][] = [];
    policy.on('timeout', (e) => events.push(e));
    const controller = new AbortController();
    const reason = new Error('caller went away');
    const state = track(policy.execute(never, { signal: controller.signal }));
    await clock.advance(10);
    controller.abort(reason);
    await clock.advance(0);
    assert.equal(state.error, reason);
    assert.equal(clock.pendingTimers(), 0);
    await clock.advance(1_000);
    assert.deepEqual(events, []);
  });

  it('rejects at once with DeadlineExceededError when the inherited budget is already spent', async () => {
    const clock = new VirtualClock();
    let ran = false;
    const state = track(
      deadline(10, { clock }).execute(async () => {
        await new Promise<void>((resolve) => clock.setTimer(resolve, 10));
        // The outer deadline has fired; its scope is still ambient.
        return timeout(100, { clock }).execute(() => (ran = true));
      }),
    );
    await clock.runAll();
    assert.ok(state.error instanceof DeadlineExceededError);
    assert.equal(ran, false);
  });

  it('makes the narrowed deadline ambient for nested calls unless propagate is false', async () => {
    const clock = new VirtualClock();
    const innerPolicy = timeout(1_000, { clock });
    let nested = 0;
    await timeout(100, { clock }).execute(() => innerPolicy.execute((ctx) => (nested = ctx.deadline)));
    assert.equal(nested, 100);
    await timeout(100, { clock, propagate: false }).execute(() => innerPolicy.execute((ctx) => (nested = ctx.deadline)));
    assert.equal(nested, 1_000);
  });

  it('refuses invalid durations with InvalidOptionError naming the option', () => {
    for (const bad of [0, -1, -0.5, Number.NaN, Infinity, -Infinity, '100' as unknown as number]) {
      assert.throws(
        () => timeout(bad),
        (e: unknown) => e instanceof InvalidOptionError && e.option === 'timeoutMs' && Object.is(e.value, bad) && e.message.startsWith('timeout: option "timeoutMs"'),
        `timeout(${String(bad)})`,
      );
      assert.throws(
        () => deadline(bad),
        (e: unknown) => e instanceof InvalidOptionError && e.option === 'deadlineMs' && Object.is(e.value, bad) && e.message.startsWith('deadline: option "deadlineMs"'),
        `deadline(${String(bad)})`,
      );
    }
    assert.throws(() => timeout(10, { name: '' }), (e: unknown) => e instanceof InvalidOptionError && e.option === 'name');
    assert.doesNotThrow(() => timeout(0.5));
  });
});
