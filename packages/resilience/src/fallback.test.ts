import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeadlineExceededError, InvalidOptionError, TimeoutError } from './errors.js';
import { fallback, type FallbackEvents } from './fallback.js';
import { pipeline } from './pipeline.js';
import type { CallContext } from './scope.js';
import { VirtualClock, track } from './testing/index.js';
import { deadline, timeout } from './timeout.js';


/** An operation that fails as soon as its signal aborts, with the abort reason. */
const honoursSignal = ({ signal }: CallContext): Promise<never> =>
  new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)));

describe('fallback', () => {
  it('answers a failed call with the handler value', async () => {
    const clock = new VirtualClock();
    const policy = fallback(() => 'cached', { clock });
    assert.equal(
      await policy.execute((): string => {
        throw new Error('down');
      }),
      'cached',
    );
    assert.equal(await policy.execute(() => Promise.reject(new Error('down'))), 'cached');
  });

  it('passes the failure and the call context to the handler, and awaits an async handler', async () => {
    const clock = new VirtualClock();
    const failure = new Error('down');
    const seen: [unknown, CallContext][] = [];
    const policy = fallback(
      async (error, ctx) => {
        seen.push([error, ctx]);
        await Promise.resolve();
        return `fallback for attempt ${ctx.attempt}`;
      },
      { clock },
    );
    const result = await policy.execute(() => Promise.reject(failure), { idempotencyKey: 'k-1' });
    assert.equal(result, 'fallback for attempt 1');
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.[0], failure);
    assert.equal(seen[0]?.[1].idempotencyKey, 'k-1');
  });

  it('leaves a success alone: no handler call, no event', async () => {
    const clock = new VirtualClock();
    let handled = 0;
    const policy = fallback(() => handled++, { clock });
    const events: unknown[] = [];
    policy.on('fallback', (e) => events.push(e));
    assert.equal(await policy.execute(() => 7), 7);
    assert.equal(handled, 0);
    assert.deepEqual(events, []);
  });

  it('answers only the failures its on predicate accepts, and rethrows the rest as they are', async () => {
    const clock = new VirtualClock();
    const asked: unknown[] = [];
    const policy = fallback(() => 'degraded', {
      clock,
      on: (error) => {
        asked.push(error);
        return error instanceof TimeoutError;
      },
    });
    const timedOut = new TimeoutError(100);
    assert.equal(await policy.execute(() => Promise.reject(timedOut)), 'degraded');
    const bug = new TypeError('x is undefined');
    await assert.rejects(
      policy.execute(() => Promise.reject(bug)),
      (e) => e === bug,
    );
    assert.deepEqual(asked, [timedOut, bug]);
  });

  it('answers an inner per-attempt timeout', async () => {
    const clock = new VirtualClock();
    const policy = pipeline(fallback(() => 'stale', { clock }), timeout(50, { clock }));
    const state = track(policy.execute(honoursSignal));
    await clock.advance(50);
    assert.equal(state.value, 'stale');
  });

  it("does not replace the caller's own cancellation", async () => {
    const clock = new VirtualClock();
    let handled = 0;
    const policy = fallback(() => (handled++, 'fallback'), { clock });
    const events: unknown[] = [];
    policy.on('fallback', (e) => events.push(e));
    const controller = new AbortController();
    const reason = new Error('caller went away');
    const state = track(policy.execute(honoursSignal, { signal: controller.signal }));
    await clock.advance(10);
    controller.abort(reason);
    await clock.advance(0);
    assert.equal(state.error, reason);
    assert.equal(handled, 0);
    assert.deepEqual(events, []);
  });

  it('does not answer a failure that arrives after the caller gave up, whatever its error', async () => {
    const clock = new VirtualClock();
    let handled = 0;
    const policy = fallback(() => (handled++, 'fallback'), { clock });
    const controller = new AbortController();
    const late = new Error('the dependency failed after the caller left');
    const state = track(
      policy.execute(() => new Promise((_, reject) => clock.setTimer(() => reject(late), 20)), { signal: controller.signal }),
    );
    await clock.advance(5);
    controller.abort(new Error('caller went away'));
    await clock.advance(20);
    assert.ok(state.error instanceof Error);
    assert.equal(handled, 0);
  });

  it('does not replace the cancellation of an enclosing call, seen through the ambient scope', async () => {
    const clock = new VirtualClock();
    let handled = 0;
    const inner = fallback(() => (handled++, 'fallback'), { clock });
    let innerResult: unknown;
    const state = track(
      deadline(30, { clock }).execute(async () => {
        try {
          innerResult = await inner.execute(honoursSignal);
        } catch (error) {
          innerResult = error;
        }
        return innerResult;
      }),
    );
    await clock.advance(30);
    assert.ok(state.error instanceof DeadlineExceededError);
    assert.ok(innerResult instanceof DeadlineExceededError);
    assert.equal(handled, 0);
  });

  it('rethrows the original error when the fallback itself fails, and emits fallbackFailed', async () => {
    const clock = new VirtualClock();
    const original = new Error('dependency down');
    const broken = new Error('cache down too');
    const policy = fallback(
      () => {
        throw broken;
      },
      { clock, name: 'recs' },
    );
    const failed: (FallbackEvents['fallbackFailed'] & { type: string; policy: string })[] = [];
    const answered: unknown[] = [];
    policy.on('fallbackFailed', (e) => failed.push(e));
    policy.on('fallback', (e) => answered.push(e));
    await assert.rejects(
      policy.execute(() => Promise.reject(original)),
      (e) => e === original,
    );
    assert.deepEqual(failed, [{ type: 'fallbackFailed', policy: 'recs', error: original, fallbackError: broken }]);
    assert.deepEqual(answered, []);
  });

  it('rethrows the original error when an async fallback rejects', async () => {
    const clock = new VirtualClock();
    const original = new Error('dependency down');
    const policy = fallback(() => Promise.reject(new Error('async fallback failed')), { clock });
    await assert.rejects(
      policy.execute(() => Promise.reject(original)),
      (e) => e === original,
    );
  });

  it('emits a fallback event for each degraded answer, and stops once unsubscribed', async () => {
    const clock = new VirtualClock();
    const policy = fallback(() => 'degraded', { clock, name: 'recs' });
    const events: (FallbackEvents['fallback'] & { type: string; policy: string })[] = [];
    const stop = policy.on('fallback', (e) => events.push(e));
    const failure = new Error('down');
    await policy.execute(() => Promise.reject(failure));
    assert.deepEqual(events, [{ type: 'fallback', policy: 'recs', error: failure }]);
    stop();
    await policy.execute(() => Promise.reject(failure));
    assert.equal(events.length, 1);
  });

  it('emits no fallback event for a failure it does not answer', async () => {
    const clock = new VirtualClock();
    const policy = fallback(() => 'degraded', { clock, on: () => false });
    const events: unknown[] = [];
    policy.on('fallback', (e) => events.push(e));
    policy.on('fallbackFailed', (e) => events.push(e));
    await assert.rejects(policy.execute(() => Promise.reject(new Error('down'))));
    assert.deepEqual(events, []);
  });

  it('can answer with undefined', async () => {
    const clock = new VirtualClock();
    const policy = fallback(() => undefined, { clock });
    assert.equal(await policy.execute(() => Promise.reject(new Error('down'))), undefined);
  });

  describe('options', () => {
    it('refuses a handler that is not a function', () => {
      assert.throws(
        () => fallback('cached' as never),
        (e: unknown) => e instanceof InvalidOptionError && e.option === 'handler' && e.message.startsWith('fallback: option "handler"'),
      );
    });

    it('refuses an on predicate that is not a function', () => {
      assert.throws(
        () => fallback(() => 1, { on: true as never }),
        (e: unknown) => e instanceof InvalidOptionError && e.option === 'on',
      );
    });

    it('refuses an empty name', () => {
      assert.throws(
        () => fallback(() => 1, { name: '' }),
        (e: unknown) => e instanceof InvalidOptionError && e.option === 'name',
      );
    });
  });
});
