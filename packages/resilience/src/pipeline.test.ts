import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import {
  bulkhead,
  circuitBreaker,
  CircuitOpenError,
  deadline,
  DeadlineExceededError,
  defaultOrder,
  fallback,
  InvalidOptionError,
  pipeline,
  retry,
  timeout,
  TimeoutError,
  outgoingDeadlineHeader,
  type CallContext,
} from './index.js';
import { VirtualClock } from './testing/index.js';

const transient = (): Error => Object.assign(new Error('unavailable'), { status: 503 });

describe('pipeline', () => {
  it('applies the default order when given policies by role, whatever the key order', () => {
    const clock = new VirtualClock();
    const p = pipeline({
      timeout: timeout(100, { clock }),
      bulkhead: bulkhead({ maxConcurrent: 1, clock }),
      retry: retry({ clock }),
      breaker: circuitBreaker({ clock }),
      deadline: deadline(1_000, { clock }),
    });
    assert.equal(p.name, 'deadline>retry>breaker>bulkhead>timeout');
    assert.deepEqual(defaultOrder, ['deadline', 'fallback', 'retry', 'breaker', 'rateLimiter', 'bulkhead', 'timeout', 'hedge']);
  });

  it('keeps an explicit order, outermost first, and flattens nested pipelines', async () => {
    const clock = new VirtualClock();
    const seen: string[] = [];
    const inner = pipeline(retry({ clock, maxAttempts: 2, backoff: { jitter: 'none', baseMs: 10 } }), timeout(50, { clock }));
    const outer = pipeline(fallback(() => 'fallback', { clock }), inner);
    assert.equal(outer.stages.length, 3);
    const result = outer.execute((ctx) => {
      seen.push(`attempt ${ctx.attempt}`);
      throw transient();
    });
    await clock.runAll();
    assert.equal(await result, 'fallback');
    assert.deepEqual(seen, ['attempt 1', 'attempt 2']);
  });

  it('refuses unknown roles, non-policies and mixed clocks with InvalidOptionError', () => {
    assert.throws(() => pipeline({ retyr: retry() } as never), (e: unknown) => e instanceof InvalidOptionError && e.option === 'retyr');
    assert.throws(() => pipeline(retry(), {} as never), InvalidOptionError);
    assert.throws(() => pipeline(retry({ clock: new VirtualClock() }), timeout(10)), InvalidOptionError);
  });

  it('propagates abort: when the deadline fires the attempt is aborted, no retry is scheduled and no timer is left', async () => {
    const clock = new VirtualClock();
    const retries: number[] = [];
    const policy = pipeline({
      deadline: deadline(250, { clock }),
      retry: retry({ clock, maxAttempts: 5, backoff: { baseMs: 10, jitter: 'none' } }),
      breaker: circuitBreaker({ clock }),
      bulkhead: bulkhead({ maxConcurrent: 4, clock }),
      timeout: timeout(1_000, { clock }),
    });
    (policy.policies[1] as ReturnType<typeof retry>).on('retry', (e) => retries.push(e.attempt));
    let seen: CallContext | undefined;
    let abortedAt = -1;
    const result = policy.execute((ctx) => {
      seen = ctx;
      ctx.signal.addEventListener('abort', () => (abortedAt = clock.now()));
      return new Promise(() => {}); // a dependency that never answers and ignores its signal
    });
    const outcome = assert.rejects(result, DeadlineExceededError);
    await clock.advance(250);
    await outcome;
    assert.ok(seen);
    assert.equal(seen.signal.aborted, true);
    assert.ok(seen.signal.reason instanceof DeadlineExceededError);
    assert.equal(abortedAt, 250);
    assert.deepEqual(retries, []);
    assert.equal(clock.pendingTimers(), 0);
    await clock.advance(10_000);
    assert.deepEqual(retries, []);
  });

  it('retries per-attempt timeouts within the total deadline, then gives the last error', async () => {
    const clock = new VirtualClock();
    const policy = pipeline({
      deadline: deadline(1_000, { clock }),
      retry: retry({ clock, maxAttempts: 3, backoff: { baseMs: 10, jitter: 'none' } }),
      timeout: timeout(100, { clock }),
    });
    const attempts: number[] = [];
    const result = policy.execute((ctx) => {
      attempts.push(clock.now());
      return new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
    });
    const outcome = assert.rejects(result, TimeoutError);
    await clock.runAll();
    await outcome;
    assert.deepEqual(attempts, [0, 110, 230]);
    assert.equal(clock.pendingTimers(), 0);
  });

  it('an open breaker fails retries fast and is not retried', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ clock, minimumCalls: 1, failureRateThreshold: 100, window: { type: 'count', size: 1 } });
    const policy = pipeline({ retry: retry({ clock, maxAttempts: 3, backoff: { baseMs: 1, jitter: 'none' } }), breaker });
    let calls = 0;
    const result = policy.execute(() => {
      calls++;
      throw transient();
    });
    const outcome = assert.rejects(result, CircuitOpenError);
    await clock.runAll();
    await outcome;
    assert.equal(calls, 1);
    assert.equal(breaker.state, 'open');
  });

  it('narrows the deadline for nested calls through the ambient scope', async () => {
    const clock = new VirtualClock();
    const outer = pipeline(deadline(500, { clock }));
    const inner = pipeline(timeout(1_000, { clock }));
    let innerDeadline = 0;
    const result = outer.execute(() => inner.execute((ctx) => (innerDeadline = ctx.deadline)));
    await clock.advance(0);
    await result;
    assert.equal(innerDeadline, 500);
  });

  it('a nested call is aborted when the outer deadline fires', async () => {
    const clock = new VirtualClock();
    const outer = pipeline(deadline(300, { clock }));
    const inner = retry({ clock, maxAttempts: 2 });
    let innerSignal: AbortSignal | undefined;
    const result = outer.execute(() =>
      inner.execute((ctx) => {
        innerSignal = ctx.signal;
        return new Promise(() => {});
      }),
    );
    const outcome = assert.rejects(result, DeadlineExceededError);
    await clock.advance(300);
    await outcome;
    assert.equal(innerSignal?.aborted, true);
  });

  it('rejects at once with the caller signal reason and runs nothing when already aborted', async () => {
    const policy = pipeline(retry(), timeout(100));
    const controller = new AbortController();
    const reason = new Error('caller went away');
    controller.abort(reason);
    let ran = false;
    await assert.rejects(
      policy.execute(() => (ran = true), { signal: controller.signal }),
      (e) => e === reason,
    );
    assert.equal(ran, false);
  });

  it('enforces a per-call timeoutMs even without a timeout policy', async () => {
    const clock = new VirtualClock();
    const policy = retry({ clock, maxAttempts: 1 });
    const result = policy.execute(() => new Promise(() => {}), { timeoutMs: 40 });
    const outcome = assert.rejects(result, DeadlineExceededError);
    await clock.advance(40);
    await outcome;
    assert.equal(clock.pendingTimers(), 0);
  });

  it('makes a per-call timeoutMs ambient for nested calls and outgoing headers', async () => {
    const clock = new VirtualClock(1_000);
    const policy = retry({ clock, maxAttempts: 1 });
    const inner = retry({ clock, maxAttempts: 1 });
    const seen = await policy.execute(() => inner.execute((ctx) => ({ deadline: ctx.deadline, header: outgoingDeadlineHeader() })), { timeoutMs: 300 });
    assert.deepEqual(seen, { deadline: 1_300, header: '300' });
    assert.equal(clock.pendingTimers(), 0);
  });
});
