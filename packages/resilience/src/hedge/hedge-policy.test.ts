import { strict as assert } from 'node:assert';
import { after, describe, it } from 'node:test';
import { DeadlineExceededError, HedgeLostError, InvalidOptionError, TimeoutError } from '../errors.js';
import { pipeline } from '../pipeline.js';
import { RetryBudget } from '../retry/retry-budget.js';
import { retry } from '../retry/retry-policy.js';
import { currentScope, type CallContext } from '../scope.js';
import { flushMicrotasks, VirtualClock, track } from '../testing/index.js';
import { timeout } from '../timeout.js';
import { HedgeBudget } from './hedge-budget.js';
import { hedge, type HedgeEvents, type HedgePolicy } from './hedge-policy.js';

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
process.on('unhandledRejection', onUnhandled);
after(() => {
  process.off('unhandledRejection', onUnhandled);
  assert.deepEqual(unhandled, [], 'no attempt, winner or loser, may leave an unhandled rejection');
});

/** What the n-th call of a scripted operation does: answer (or fail) after `after` ms, or never answer and ignore its signal. */
type Step = { after: number; error?: Error } | 'never';

interface Call {
  at: number;
  ctx: CallContext;
  ambient: unknown;
}

/**
 * An operation on virtual time that follows `steps` call by call (the last
 * step repeats), answers `attempt <n>`, and, unless it is `'never'`, stops
 * and rejects with its signal's reason when aborted, as a well-behaved client does.
 */
function scripted(clock: VirtualClock, steps: Step[]): { fn: (ctx: CallContext) => Promise<string>; calls: Call[] } {
  const calls: Call[] = [];
  const fn = (ctx: CallContext): Promise<string> => {
    const n = calls.length + 1;
    calls.push({ at: clock.now(), ctx, ambient: currentScope() });
    const step = steps[Math.min(n, steps.length) - 1]!;
    return new Promise<string>((resolve, reject) => {
      if (step === 'never') return;
      const onAbort = (): void => {
        timer.cancel();
        reject(ctx.signal.reason as Error);
      };
      const timer = clock.setTimer(() => {
        ctx.signal.removeEventListener('abort', onAbort);
        if (step.error !== undefined) reject(step.error);
        else resolve(`attempt ${n}`);
      }, step.after);
      ctx.signal.addEventListener('abort', onAbort, { once: true });
    });
  };
  return { fn, calls };
}

/** Collects a policy's events by type. */
function recordEvents(policy: HedgePolicy): { [K in keyof HedgeEvents]: HedgeEvents[K][] } {
  const seen: { [K in keyof HedgeEvents]: HedgeEvents[K][] } = { hedge: [], hedgeWon: [], budgetExhausted: [] };
  policy.on('hedge', ({ attempt, delayMs }) => seen.hedge.push({ attempt, delayMs }));
  policy.on('hedgeWon', ({ attempt, elapsedMs }) => seen.hedgeWon.push({ attempt, elapsedMs }));
  policy.on('budgetExhausted', ({ attempt }) => seen.budgetExhausted.push({ attempt }));
  return seen;
}

/** A budget that never runs out, for tests about something else. */
function unlimited(clock: VirtualClock): HedgeBudget {
  return new HedgeBudget({ clock, ratio: 0, minHedgesPerSecond: 1e6 });
}

describe('hedge', () => {
  it('does not hedge a fast primary, and leaves no timer behind', async () => {
    const clock = new VirtualClock();
    const policy = hedge({ clock, delay: 50 });
    const events = recordEvents(policy);
    const { fn, calls } = scripted(clock, [{ after: 10 }]);
    const call = track(policy.execute(fn));
    await clock.advance(10);
    assert.equal(call.value, 'attempt 1');
    assert.equal(clock.pendingTimers(), 0);
    await clock.advance(1_000);
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.ctx.signal.aborted, false);
    assert.deepEqual(events, { hedge: [], hedgeWon: [], budgetExhausted: [] });
  });

  it('launches a hedge at exactly the delay; the hedge wins and the primary is aborted with HedgeLostError', async () => {
    const clock = new VirtualClock();
    const policy = hedge({ clock, delay: 50 });
    const events = recordEvents(policy);
    const { fn, calls } = scripted(clock, [{ after: 200 }, { after: 10 }]);
    const call = track(policy.execute(fn));
    await clock.advance(49);
    assert.equal(calls.length, 1);
    await clock.advance(1);
    assert.equal(calls.length, 2);
    assert.equal(calls[1]!.at, 50);
    assert.deepEqual(events.hedge, [{ attempt: 2, delayMs: 50 }]);
    await clock.advance(9);
    assert.equal(call.settled, false);
    await clock.advance(1);
    assert.equal(call.value, 'attempt 2');
    const primary = calls[0]!.ctx.signal;
    assert.equal(primary.aborted, true);
    assert.ok(primary.reason instanceof HedgeLostError);
    assert.equal(calls[1]!.ctx.signal.aborted, false);
    assert.deepEqual(events.hedgeWon, [{ attempt: 2, elapsedMs: 60 }]);
    assert.equal(clock.pendingTimers(), 0);
  });

  it('runs every attempt in its own child scope, ambient while it runs (the hedge launched from a timer too)', async () => {
    const clock = new VirtualClock();
    const policy = hedge({ clock, delay: 50 });
    const { fn, calls } = scripted(clock, [{ after: 200 }, { after: 10 }]);
    const call = track(policy.execute(fn, { idempotencyKey: 'k-1' }));
    await clock.advance(60);
    assert.equal(call.value, 'attempt 2');
    assert.notEqual(calls[0]!.ctx, calls[1]!.ctx);
    for (const { ctx, ambient } of calls) {
      assert.equal(ambient, ctx);
      assert.equal(ctx.idempotencyKey, 'k-1');
      assert.equal(ctx.attempt, 1);
    }
  });

  it('launches at most maxHedges hedges, one per further delay, and aborts them all when the primary wins', async () => {
    const clock = new VirtualClock();
    const policy = hedge({ clock, delay: 50, maxHedges: 2, budget: unlimited(clock) });
    const events = recordEvents(policy);
    const { fn, calls } = scripted(clock, [{ after: 1_000 }]);
    const call = track(policy.execute(fn));
    await clock.advance(999);
    assert.deepEqual(
      calls.map((c) => c.at),
      [0, 50, 100],
    );
    assert.deepEqual(events.hedge, [
      { attempt: 2, delayMs: 50 },
      { attempt: 3, delayMs: 50 },
    ]);
    await clock.advance(1);
    assert.equal(call.value, 'attempt 1');
    assert.equal(calls[0]!.ctx.signal.aborted, false);
    for (const hedged of calls.slice(1)) assert.ok(hedged.ctx.signal.reason instanceof HedgeLostError);
    assert.deepEqual(events.hedgeWon, []);
    assert.equal(clock.pendingTimers(), 0);
  });

  it('launches one hedge by default', async () => {
    const clock = new VirtualClock();
    const policy = hedge({ clock, delay: 10, budget: unlimited(clock) });
    const { fn, calls } = scripted(clock, [{ after: 500 }]);
    const call = track(policy.execute(fn));
    await clock.advance(500);
    assert.equal(call.value, 'attempt 1');
    assert.equal(calls.length, 2);
  });

  it('keeps racing when one attempt fails while another runs', async () => {
    const clock = new VirtualClock();
    const policy = hedge({ clock, delay: 50 });
    const { fn } = scripted(clock, [{ after: 60, error: new Error('primary failed') }, { after: 50 }]);
    const call = track(policy.execute(fn));
    await clock.advance(60);
    assert.equal(call.settled, false);
    await clock.advance(40);
    assert.equal(call.value, 'attempt 2');
    assert.equal(clock.pendingTimers(), 0);
  });

  it('when every attempt fails, rejects with the primary error object, whichever failed last', async () => {
    for (const [primaryAfter, hedgeAfter, settlesAt] of [
      [80, 40, 90], // the primary fails first, the hedge last
      [80, 10, 80], // the hedge fails first, the primary last
    ] as const) {
      const clock = new VirtualClock();
      const policy = hedge({ clock, delay: 50 });
      const primaryError = new Error('primary failed');
      const { fn, calls } = scripted(clock, [
        { after: primaryAfter, error: primaryError },
        { after: hedgeAfter, error: new Error('hedge failed') },
      ]);
      const call = track(policy.execute(fn));
      await clock.advance(settlesAt - 1);
      assert.equal(call.settled, false);
      await clock.advance(1);
      assert.equal(call.settled, true);
      assert.equal(call.error, primaryError);
      assert.equal(calls.length, 2);
      assert.equal(clock.pendingTimers(), 0);
    }
  });

  it('fails at once, unhedged, when the primary fails before the delay (hedging is not retrying)', async () => {
    const clock = new VirtualClock();
    const policy = hedge({ clock, delay: 50, maxHedges: 3 });
    const events = recordEvents(policy);
    const failure = Object.assign(new Error('unavailable'), { status: 503 });
    const { fn, calls } = scripted(clock, [{ after: 20, error: failure }]);
    const call = track(policy.execute(fn));
    await clock.advance(20);
    assert.equal(call.error, failure);
    assert.equal(clock.pendingTimers(), 0);
    await clock.advance(500);
    assert.equal(calls.length, 1);
    assert.deepEqual(events.hedge, []);
  });

  it('launches no hedge the budget refuses, and says so', async () => {
    const clock = new VirtualClock();
    const policy = hedge({ clock, delay: 50, budget: { ratio: 0, minHedgesPerSecond: 0 } });
    const events = recordEvents(policy);
    const { fn, calls } = scripted(clock, [{ after: 200 }]);
    const call = track(policy.execute(fn));
    await clock.advance(200);
    assert.equal(call.value, 'attempt 1');
    assert.equal(calls.length, 1);
    assert.deepEqual(events.budgetExhausted, [{ attempt: 2 }]);
    assert.deepEqual(events.hedge, []);
    assert.equal(clock.pendingTimers(), 0);
  });

  it('stops hedging a call once the budget refuses, even with hedges left', async () => {
    const clock = new VirtualClock();
    // A floor of exactly one hedge per 10 s window, nothing from the ratio.
    const policy = hedge({ clock, delay: 50, maxHedges: 3, budget: { ratio: 0, minHedgesPerSecond: 0.1, windowMs: 10_000 } });
    const events = recordEvents(policy);
    const { fn, calls } = scripted(clock, [{ after: 1_000 }]);
    const call = track(policy.execute(fn));
    await clock.advance(1_000);
    assert.equal(call.value, 'attempt 1');
    assert.deepEqual(
      calls.map((c) => c.at),
      [0, 50],
    );
    assert.deepEqual(events.budgetExhausted, [{ attempt: 3 }]);
  });

  it('shares a HedgeBudget: hedges are granted as a fraction of the requests', async () => {
    const clock = new VirtualClock();
    const budget = new HedgeBudget({ clock, ratio: 0.5, minHedgesPerSecond: 0 });
    const policy = hedge({ clock, delay: 50, budget });
    const hedged: boolean[] = [];
    for (let i = 0; i < 6; i++) {
      const { fn, calls } = scripted(clock, [{ after: 100 }]);
      const call = track(policy.execute(fn));
      await clock.advance(100);
      assert.equal(call.value, 'attempt 1');
      hedged.push(calls.length > 1);
    }
    // Call n may hedge when hedges so far + 1 <= n / 2.
    assert.deepEqual(hedged, [false, true, false, true, false, true]);
    assert.deepEqual(budget.snapshot(), { requests: 6, hedges: 3, available: 0 });
  });

  it('never hedges an unsafe operation without an idempotency key, and hedges it with one', async () => {
    const clock = new VirtualClock();
    const policy = hedge({ clock, delay: 50 });
    const unsafe = scripted(clock, [{ after: 200 }]);
    const first = track(policy.execute(unsafe.fn, { idempotent: false }));
    await clock.advance(200);
    assert.equal(first.value, 'attempt 1');
    assert.equal(unsafe.calls.length, 1);
    assert.equal(clock.pendingTimers(), 0);

    const keyed = scripted(clock, [{ after: 200 }, { after: 10 }]);
    const second = track(policy.execute(keyed.fn, { idempotent: false, idempotencyKey: 'order-42' }));
    await clock.advance(60);
    assert.equal(second.value, 'attempt 2');
    assert.equal(keyed.calls.length, 2);
  });

  it('adapts a quantile delay once minSamples latencies are seen, within [minMs, maxMs]', async () => {
    const clock = new VirtualClock();
    const policy = hedge({ clock, delay: { quantile: 0.9, minSamples: 10, initialMs: 100 }, budget: unlimited(clock) });
    const capped = hedge({ clock, delay: { quantile: 0.9, minSamples: 10, initialMs: 10, maxMs: 15 } });
    // Latencies 21, 22, ..., 30 ms: the exact p90 is 29 ms.
    for (let i = 1; i <= 10; i++) {
      assert.equal(policy.delayMs(), 100, `before sample ${i}`);
      const { fn } = scripted(clock, [{ after: 20 + i }]);
      const c1 = track(policy.execute(fn));
      const c2 = track(capped.execute(fn));
      await clock.advance(20 + i);
      await c1.done;
      await c2.done;
      assert.equal(c1.value, `attempt 1`);
    }
    const delay = policy.delayMs();
    assert.ok(Math.abs(delay - 29) / 29 <= 0.02, `delay ${delay}`);
    assert.equal(capped.delayMs(), 15);

    // A slow call now hedges after the learned delay, not after initialMs.
    const { fn, calls } = scripted(clock, [{ after: 1_000 }, { after: 5 }]);
    const start = clock.now();
    const call = track(policy.execute(fn));
    await clock.advance(40);
    assert.equal(calls.length, 2);
    assert.equal(calls[1]!.at, start + delay);
    assert.equal(call.value, 'attempt 2');
  });

  it('learns from a won hedge the time since the primary started, not the hedge’s own duration', async () => {
    const clock = new VirtualClock();
    const policy = hedge({ clock, delay: { quantile: 0.5, minSamples: 1, initialMs: 50 } });
    const { fn } = scripted(clock, [{ after: 200 }, { after: 10 }]);
    const call = track(policy.execute(fn));
    await clock.advance(60);
    assert.equal(call.value, 'attempt 2');
    const learned = policy.latency!.quantile(0.5)!;
    assert.ok(Math.abs(learned - 60) / 60 <= 0.02, `learned ${learned}`);
    assert.equal(policy.latency!.count, 1);
  });

  it('goes back to initialMs when recent latencies have aged out', async () => {
    const clock = new VirtualClock();
    const policy = hedge({ clock, delay: { quantile: 0.5, minSamples: 1, initialMs: 70, windowMs: 1_000 } });
    const { fn } = scripted(clock, [{ after: 10 }]);
    const call = track(policy.execute(fn));
    await clock.advance(10);
    await call.done;
    assert.ok(Math.abs(policy.delayMs() - 10) / 10 <= 0.02);
    await clock.advance(2_000);
    assert.equal(policy.delayMs(), 70);
  });

  it('rejects promptly with the caller’s abort reason, aborts every attempt and launches no more hedges', async () => {
    const clock = new VirtualClock();
    const policy = hedge({ clock, delay: 50, maxHedges: 3, budget: unlimited(clock) });
    // Attempts that never answer and ignore their signal: the rejection must not depend on them.
    const { fn, calls } = scripted(clock, ['never']);
    const controller = new AbortController();
    const call = track(policy.execute(fn, { signal: controller.signal }));
    await clock.advance(60);
    assert.equal(calls.length, 2);
    const reason = new Error('caller gave up');
    controller.abort(reason);
    await flushMicrotasks();
    assert.equal(call.settled, true);
    assert.equal(call.error, reason);
    for (const { ctx } of calls) {
      assert.equal(ctx.signal.aborted, true);
      assert.equal(ctx.signal.reason, reason);
    }
    assert.equal(clock.pendingTimers(), 0);
    await clock.advance(1_000);
    assert.equal(calls.length, 2);
  });

  it('leaves no timer behind when the primary aborts the caller’s scope synchronously', async () => {
    const clock = new VirtualClock();
    const policy = hedge({ clock, delay: 50 });
    const controller = new AbortController();
    const reason = new Error('aborted from inside');
    let calls = 0;
    const call = track(
      policy.execute(
        () => {
          calls++;
          controller.abort(reason);
          return new Promise<string>(() => {});
        },
        { signal: controller.signal },
      ),
    );
    await flushMicrotasks();
    assert.equal(call.error, reason);
    assert.equal(clock.pendingTimers(), 0);
    await clock.advance(100);
    assert.equal(calls, 1);
  });

  it('rejects at once when the caller’s signal is already aborted, running nothing', async () => {
    const clock = new VirtualClock();
    const policy = hedge({ clock, delay: 50 });
    const { fn, calls } = scripted(clock, [{ after: 10 }]);
    const reason = new Error('too late');
    await assert.rejects(policy.execute(fn, { signal: AbortSignal.abort(reason) }), (e) => e === reason);
    assert.equal(calls.length, 0);
    assert.equal(clock.pendingTimers(), 0);
  });

  it('schedules no hedge to start at or past the deadline', async () => {
    const clock = new VirtualClock();
    const policy = hedge({ clock, delay: 50, maxHedges: 5, budget: unlimited(clock) });
    const { fn, calls } = scripted(clock, ['never']);
    const call = track(policy.execute(fn, { timeoutMs: 120 }));
    await clock.advance(100);
    assert.equal(clock.pendingTimers(), 1, 'only the deadline timer: no hedge timer due at 150');
    await clock.advance(20);
    assert.ok(call.error instanceof DeadlineExceededError);
    assert.deepEqual(
      calls.map((c) => c.at),
      [0, 50, 100],
    );
    for (const { ctx } of calls) assert.ok(ctx.signal.reason instanceof DeadlineExceededError);
    assert.equal(clock.pendingTimers(), 0);
  });

  it('composes innermost in a pipeline: a per-attempt timeout aborts the whole race, and retry starts a new one', async () => {
    const clock = new VirtualClock();
    const policy = pipeline(
      retry({ clock, maxAttempts: 2, backoff: { baseMs: 10, jitter: 'none' } }),
      timeout(100, { clock }),
      hedge({ clock, delay: 50, budget: unlimited(clock) }),
    );
    const { fn, calls } = scripted(clock, [{ after: 1_000 }, { after: 1_000 }, { after: 5 }]);
    const call = track(policy.execute(fn));
    await clock.runAll();
    assert.equal(call.value, 'attempt 3');
    assert.equal(calls.length, 3);
    assert.ok(calls[0]!.ctx.signal.reason instanceof TimeoutError);
    assert.ok(calls[1]!.ctx.signal.reason instanceof TimeoutError);
    assert.equal(calls[2]!.ctx.attempt, 2);
    assert.equal(clock.pendingTimers(), 0);
  });

  it('refuses invalid options with InvalidOptionError naming the option', () => {
    const clock = new VirtualClock();
    const cases: [unknown, string][] = [
      [{ delay: 50, name: '' }, 'name'],
      [{ delay: 50, maxHedges: 0 }, 'maxHedges'],
      [{ delay: 50, maxHedges: 1.5 }, 'maxHedges'],
      [{ delay: -1 }, 'delay'],
      [{ delay: Number.NaN }, 'delay'],
      [{ delay: Infinity }, 'delay'],
      [{ delay: '50' }, 'delay'],
      [{}, 'delay'],
      [{ delay: { quantile: 0, initialMs: 10 } }, 'delay.quantile'],
      [{ delay: { quantile: 1, initialMs: 10 } }, 'delay.quantile'],
      [{ delay: { quantile: 95, initialMs: 10 } }, 'delay.quantile'],
      [{ delay: { quantile: 0.95 } }, 'delay.initialMs'],
      [{ delay: { quantile: 0.95, initialMs: -5 } }, 'delay.initialMs'],
      [{ delay: { quantile: 0.95, initialMs: 10, minSamples: 0 } }, 'delay.minSamples'],
      [{ delay: { quantile: 0.95, initialMs: 10, minMs: -1 } }, 'delay.minMs'],
      [{ delay: { quantile: 0.95, initialMs: 10, minMs: 20, maxMs: 5 } }, 'delay.maxMs'],
      [{ delay: { quantile: 0.95, initialMs: 10, minMs: 20 } }, 'delay.initialMs'],
      [{ delay: { quantile: 0.95, initialMs: 10, maxMs: 5 } }, 'delay.initialMs'],
      [{ delay: { quantile: 0.95, initialMs: 10, windowMs: 0 } }, 'delay.windowMs'],
      [{ delay: 50, budget: { ratio: -1 } }, 'ratio'],
      [{ delay: 50, budget: 0.1 }, 'budget'],
      [{ delay: 50, budget: new RetryBudget() }, 'budget'],
      [{ delay: 50, budget: new HedgeBudget() }, 'budget'], // a budget on the system clock, the policy on a virtual one
    ];
    for (const [options, option] of cases) {
      assert.throws(
        () => hedge({ clock, ...(options as object) } as never),
        (e: unknown) => e instanceof InvalidOptionError && e.option === option,
        `${option}: ${JSON.stringify(options)}`,
      );
    }
    assert.throws(() => hedge(undefined as never), InvalidOptionError);
  });
});
