import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bulkhead, type BulkheadEvents, type BulkheadOptions } from './bulkhead.js';
import { BulkheadRejectedError, BulwarkError, DeadlineExceededError, InvalidOptionError } from './errors.js';
import { pipeline } from './pipeline.js';
import { flushMicrotasks, VirtualClock, track } from './testing/index.js';
import { deadline } from './timeout.js';


interface Gate<T> {
  promise: Promise<T>;
  open(value: T): void;
  fail(error: unknown): void;
}

function gate<T = string>(): Gate<T> {
  let open!: (value: T) => void;
  let fail!: (error: unknown) => void;
  const promise = new Promise<T>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

/**
 * Calls under test: each one, when it starts, records its label and waits for
 * its own gate, so the test decides when each finishes.
 */
function harness(policy: ReturnType<typeof bulkhead>) {
  const started: string[] = [];
  const gates = new Map<string, Gate<string>>();
  let running = 0;
  let maxRunning = 0;
  const call = (label: string, options?: Parameters<typeof policy.execute>[1]) => {
    const g = gate<string>();
    gates.set(label, g);
    return track(
      policy.execute(async () => {
        started.push(label);
        running++;
        maxRunning = Math.max(maxRunning, running);
        try {
          return await g.promise;
        } finally {
          running--;
        }
      }, options),
    );
  };
  const finish = async (label: string): Promise<void> => {
    gates.get(label)!.open(label);
    await flushMicrotasks();
  };
  return { started, call, finish, gates, maxRunning: () => maxRunning };
}

describe('bulkhead', () => {
  it('runs at most maxConcurrent calls at once and queues the rest', async () => {
    const clock = new VirtualClock();
    const policy = bulkhead({ maxConcurrent: 2, maxQueue: 10, clock });
    const h = harness(policy);
    const calls = ['a', 'b', 'c', 'd', 'e'].map((label) => h.call(label));
    await flushMicrotasks();
    assert.deepEqual(h.started, ['a', 'b']);
    assert.deepEqual(policy.stats(), { active: 2, queued: 3, maxConcurrent: 2, maxQueue: 10 });

    for (const label of ['a', 'b', 'c', 'd', 'e']) await h.finish(label);
    assert.deepEqual(
      calls.map((c) => c.value),
      ['a', 'b', 'c', 'd', 'e'],
    );
    assert.equal(h.maxRunning(), 2);
    assert.deepEqual(policy.stats(), { active: 0, queued: 0, maxConcurrent: 2, maxQueue: 10 });
  });

  it('serves the queue in FIFO order', async () => {
    const clock = new VirtualClock();
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 5, clock });
    const h = harness(policy);
    for (const label of ['a', 'b', 'c', 'd']) h.call(label);
    await flushMicrotasks();
    assert.deepEqual(h.started, ['a']);
    await h.finish('a');
    assert.deepEqual(h.started, ['a', 'b']);
    // A late arrival queues behind the waiters already there.
    h.call('late');
    await h.finish('b');
    await h.finish('c');
    await h.finish('d');
    assert.deepEqual(h.started, ['a', 'b', 'c', 'd', 'late']);
    await h.finish('late');
    assert.equal(policy.stats().active, 0);
  });

  it('passes a freed slot straight to the next waiter: a newcomer cannot overtake it', async () => {
    // The newcomer arrives k microtask turns after the running call finishes: at every
    // point of the hand-over, the waiter goes first and the limit holds.
    for (let k = 0; k < 12; k++) {
      const clock = new VirtualClock();
      const policy = bulkhead({ maxConcurrent: 1, maxQueue: 2, clock });
      const h = harness(policy);
      h.call('a');
      const b = h.call('b');
      await flushMicrotasks();
      h.gates.get('a')!.open('a');
      for (let i = 0; i < k; i++) await Promise.resolve();
      const newcomer = h.call('newcomer');
      await flushMicrotasks();
      assert.deepEqual(h.started, ['a', 'b'], `newcomer after ${k} turns`);
      assert.deepEqual(policy.stats(), { active: 1, queued: 1, maxConcurrent: 1, maxQueue: 2 });
      await h.finish('b');
      assert.equal(b.value, 'b');
      assert.deepEqual(h.started, ['a', 'b', 'newcomer']);
      await h.finish('newcomer');
      assert.equal(newcomer.value, 'newcomer');
      assert.equal(h.maxRunning(), 1);
      assert.equal(policy.stats().active, 0);
    }
  });

  it("rejects with BulkheadRejectedError (full) when no slot and no queue room are left, without running the call", async () => {
    const clock = new VirtualClock();
    const policy = bulkhead({ name: 'inventory', maxConcurrent: 1, maxQueue: 1, clock });
    const h = harness(policy);
    h.call('a');
    const b = h.call('b');
    const c = h.call('c');
    await flushMicrotasks();
    const error = c.error;
    assert.ok(error instanceof BulkheadRejectedError);
    assert.ok(error instanceof BulwarkError);
    assert.ok(error instanceof Error);
    assert.equal(error.reason, 'full');
    assert.equal(error.bulkhead, 'inventory');
    assert.equal(error.code, 'BULWARK_BULKHEAD_REJECTED');
    assert.equal(error.retryable, false);
    assert.equal(error.name, 'BulkheadRejectedError');
    assert.match(error.message, /bulkhead "inventory" rejected the call \(full\)/);
    assert.deepEqual(h.started, ['a']);
    assert.equal(b.settled, false);
    await h.finish('a');
    await h.finish('b');
    assert.equal(b.value, 'b');
    assert.deepEqual(h.started, ['a', 'b']);
  });

  it('rejects at once when full with the default maxQueue of 0', async () => {
    const clock = new VirtualClock();
    const policy = bulkhead({ maxConcurrent: 1, clock });
    assert.equal(policy.maxQueue, 0);
    const h = harness(policy);
    h.call('a');
    const b = h.call('b');
    await flushMicrotasks();
    assert.ok(b.error instanceof BulkheadRejectedError);
    assert.equal(b.error.reason, 'full');
    assert.deepEqual(h.started, ['a']);
  });

  it('rejects a waiter with queue-timeout after maxQueueWaitMs, without running it', async () => {
    const clock = new VirtualClock();
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 2, maxQueueWaitMs: 50, clock });
    const h = harness(policy);
    h.call('a');
    const b = h.call('b');
    await clock.advance(49);
    assert.equal(b.settled, false);
    assert.equal(policy.stats().queued, 1);
    await clock.advance(1);
    assert.ok(b.error instanceof BulkheadRejectedError);
    assert.equal(b.error.reason, 'queue-timeout');
    assert.match(b.error.message, /\(queue-timeout\)/);
    assert.deepEqual(policy.stats(), { active: 1, queued: 0, maxConcurrent: 1, maxQueue: 2 });
    await h.finish('a');
    assert.deepEqual(h.started, ['a']);
    assert.equal(policy.stats().active, 0);
    assert.equal(clock.pendingTimers(), 0);
  });

  it('cancels the queue timer of a waiter that gets a slot in time', async () => {
    const clock = new VirtualClock();
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 1, maxQueueWaitMs: 50, clock });
    const h = harness(policy);
    h.call('a');
    const b = h.call('b');
    await clock.advance(20);
    assert.equal(clock.pendingTimers(), 1);
    await h.finish('a');
    assert.equal(clock.pendingTimers(), 0);
    await clock.advance(100);
    assert.equal(b.settled, false);
    await h.finish('b');
    assert.equal(b.value, 'b');
  });

  it('bounds the queue wait by the call deadline', async () => {
    const clock = new VirtualClock();
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 1, clock });
    const events: BulkheadEvents['rejected'][] = [];
    policy.on('rejected', (e) => events.push(e));
    const h = harness(policy);
    h.call('a');
    const b = track(pipeline(deadline(30, { clock }), policy).execute(() => 'never runs'));
    await clock.advance(29);
    assert.equal(b.settled, false);
    await clock.advance(1);
    assert.ok(b.error instanceof DeadlineExceededError);
    assert.equal(policy.stats().queued, 0);
    await h.finish('a');
    assert.deepEqual(policy.stats(), { active: 0, queued: 0, maxConcurrent: 1, maxQueue: 1 });
    assert.equal(clock.pendingTimers(), 0);
  });

  it('a queued call whose caller aborts leaves the queue at once, and no slot is lost', async () => {
    const clock = new VirtualClock();
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 2, maxQueueWaitMs: 1_000, clock });
    const h = harness(policy);
    h.call('a');
    const controller = new AbortController();
    const reason = new Error('caller went away');
    const b = h.call('b', { signal: controller.signal });
    const c = h.call('c');
    await flushMicrotasks();
    assert.equal(policy.stats().queued, 2);

    controller.abort(reason);
    await flushMicrotasks();
    assert.equal(b.error, reason);
    assert.equal(policy.stats().queued, 1);
    // Its place in the queue is free again.
    const d = h.call('d');
    await flushMicrotasks();
    assert.equal(d.settled, false);
    assert.deepEqual(policy.stats(), { active: 1, queued: 2, maxConcurrent: 1, maxQueue: 2 });

    await h.finish('a');
    assert.deepEqual(h.started, ['a', 'c']);
    await h.finish('c');
    await h.finish('d');
    assert.deepEqual(h.started, ['a', 'c', 'd']);
    assert.equal(c.value, 'c');
    assert.equal(d.value, 'd');
    assert.deepEqual(policy.stats(), { active: 0, queued: 0, maxConcurrent: 1, maxQueue: 2 });
    assert.equal(clock.pendingTimers(), 0);
  });

  it('frees the slot when the only waiter aborted before it was released', async () => {
    const clock = new VirtualClock();
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 1, clock });
    const h = harness(policy);
    h.call('a');
    const controller = new AbortController();
    const b = h.call('b', { signal: controller.signal });
    await flushMicrotasks();
    controller.abort(new Error('gone'));
    await h.finish('a');
    assert.ok(b.error instanceof Error);
    assert.deepEqual(policy.stats(), { active: 0, queued: 0, maxConcurrent: 1, maxQueue: 1 });
    const e = h.call('e');
    await flushMicrotasks();
    assert.deepEqual(h.started, ['a', 'e']);
    await h.finish('e');
    assert.equal(e.value, 'e');
  });

  it('rejects at once a call whose signal is already aborted, taking no queue place', async () => {
    const clock = new VirtualClock();
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 1, clock });
    const h = harness(policy);
    h.call('a');
    const controller = new AbortController();
    const reason = new Error('already gone');
    controller.abort(reason);
    const b = h.call('b', { signal: controller.signal });
    await flushMicrotasks();
    assert.equal(b.error, reason);
    assert.equal(policy.stats().queued, 0);
  });

  it('releases the slot when the call fails, and passes the error through as it is', async () => {
    const clock = new VirtualClock();
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 1, clock });
    const boom = new Error('boom');
    await assert.rejects(
      policy.execute(() => Promise.reject(boom)),
      (e) => e === boom,
    );
    await assert.rejects(
      policy.execute(() => {
        throw boom;
      }),
      (e) => e === boom,
    );
    assert.equal(policy.stats().active, 0);
    assert.equal(await policy.execute(() => 'still works'), 'still works');
    assert.equal(policy.stats().active, 0);
  });

  it('hands the slot of a failed call to the next waiter', async () => {
    const clock = new VirtualClock();
    const policy = bulkhead({ maxConcurrent: 1, maxQueue: 1, clock });
    const h = harness(policy);
    const a = h.call('a');
    const b = h.call('b');
    await flushMicrotasks();
    h.gates.get('a')!.fail(new Error('a failed'));
    await flushMicrotasks();
    assert.ok(a.error instanceof Error);
    assert.deepEqual(h.started, ['a', 'b']);
    await h.finish('b');
    assert.equal(b.value, 'b');
    assert.equal(policy.stats().active, 0);
  });

  it('emits rejected events with the reason and the occupancy', async () => {
    const clock = new VirtualClock();
    const policy = bulkhead({ name: 'db', maxConcurrent: 1, maxQueue: 1, maxQueueWaitMs: 10, clock });
    const events: (BulkheadEvents['rejected'] & { type: string; policy: string })[] = [];
    const stop = policy.on('rejected', (e) => events.push(e));
    const h = harness(policy);
    h.call('a');
    h.call('b');
    h.call('c');
    await flushMicrotasks();
    assert.deepEqual(events, [{ type: 'rejected', policy: 'db', reason: 'full', active: 1, queued: 1 }]);
    await clock.advance(10);
    assert.deepEqual(events[1], { type: 'rejected', policy: 'db', reason: 'queue-timeout', active: 1, queued: 0 });
    assert.equal(events.length, 2);
    stop();
    h.call('d');
    h.call('e');
    await flushMicrotasks();
    assert.equal(events.length, 2);
  });

  it('emits nothing when every call gets a slot', async () => {
    const clock = new VirtualClock();
    const policy = bulkhead({ maxConcurrent: 2, clock });
    const events: unknown[] = [];
    policy.on('rejected', (e) => events.push(e));
    await Promise.all([policy.execute(() => 1), policy.execute(() => 2)]);
    assert.deepEqual(events, []);
  });

  describe('options', () => {
    const invalid: [string, Partial<BulkheadOptions>][] = [
      ['maxConcurrent', {}],
      ['maxConcurrent', { maxConcurrent: 0 }],
      ['maxConcurrent', { maxConcurrent: -1 }],
      ['maxConcurrent', { maxConcurrent: 1.5 }],
      ['maxConcurrent', { maxConcurrent: Number.NaN }],
      ['maxConcurrent', { maxConcurrent: Infinity }],
      ['maxQueue', { maxConcurrent: 1, maxQueue: -1 }],
      ['maxQueue', { maxConcurrent: 1, maxQueue: 0.5 }],
      ['maxQueueWaitMs', { maxConcurrent: 1, maxQueueWaitMs: -1 }],
      ['maxQueueWaitMs', { maxConcurrent: 1, maxQueueWaitMs: Number.NaN }],
      ['name', { maxConcurrent: 1, name: '' }],
    ];
    for (const [option, options] of invalid) {
      it(`refuses ${JSON.stringify(options)} with InvalidOptionError naming ${option}`, () => {
        assert.throws(
          () => bulkhead(options as BulkheadOptions),
          (e: unknown) => e instanceof InvalidOptionError && e.option === option && e.message.startsWith(`bulkhead: option "${option}"`),
        );
      });
    }

    it('accepts an unbounded queue wait and reports the limits in stats', () => {
      const policy = bulkhead({ maxConcurrent: 3, maxQueue: 7, maxQueueWaitMs: Infinity });
      assert.deepEqual(policy.stats(), { active: 0, queued: 0, maxConcurrent: 3, maxQueue: 7 });
      assert.equal(policy.maxQueueWaitMs, Infinity);
    });
  });
});
