import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CircuitOpenError, InvalidOptionError, circuitBreaker, type CircuitBreakerOptions, type CircuitState } from '../index.js';
import { VirtualClock } from '../testing/index.js';

const boom = (status = 503): Error => Object.assign(new Error(`status ${status}`), { status });

/** Runs one call that succeeds or fails after `durationMs` of virtual time; reports whether it was admitted. */
async function call(breaker: ReturnType<typeof circuitBreaker>, clock: VirtualClock, outcome: 'ok' | 'fail' | Error, durationMs = 0): Promise<'admitted' | 'rejected'> {
  let admitted = false;
  const result = breaker.execute(async () => {
    admitted = true;
    if (durationMs > 0) await new Promise<void>((resolve) => clock.setTimer(resolve, durationMs));
    if (outcome === 'ok') return 'ok';
    throw outcome === 'fail' ? boom() : outcome;
  });
  const settled = result.then(
    () => undefined,
    (e: unknown) => e,
  );
  await clock.advance(durationMs);
  const error = await settled;
  if (!admitted) {
    assert.ok(error instanceof CircuitOpenError, 'a refused call rejects with CircuitOpenError');
    return 'rejected';
  }
  return 'admitted';
}

function make(options: CircuitBreakerOptions = {}): { clock: VirtualClock; breaker: ReturnType<typeof circuitBreaker>; changes: string[] } {
  const clock = new VirtualClock();
  const breaker = circuitBreaker({ clock, ...options });
  const changes: string[] = [];
  breaker.on('stateChange', (e) => changes.push(`${e.from}->${e.to}@${clock.now()}`));
  return { clock, breaker, changes };
}

describe('circuitBreaker', () => {
  it('opens when the failure rate reaches the threshold over at least minimumCalls', async () => {
    const { clock, breaker, changes } = make({ minimumCalls: 4, failureRateThreshold: 50, window: { type: 'count', size: 10 } });
    await call(breaker, clock, 'fail');
    await call(breaker, clock, 'fail');
    await call(breaker, clock, 'fail');
    assert.equal(breaker.state, 'closed', 'three calls are fewer than minimumCalls');
    await call(breaker, clock, 'ok');
    assert.equal(breaker.state, 'open', '3 failures of 4 calls is 75% >= 50%');
    assert.deepEqual(changes, ['closed->open@0']);
    assert.equal(await call(breaker, clock, 'ok'), 'rejected');
  });

  it('stays closed below the threshold, and judges only the last `size` calls', async () => {
    const { clock, breaker } = make({ minimumCalls: 4, failureRateThreshold: 50, window: { type: 'count', size: 4 } });
    for (const o of ['fail', 'ok', 'ok', 'ok', 'fail', 'ok'] as const) await call(breaker, clock, o);
    assert.equal(breaker.state, 'closed');
    assert.deepEqual(breaker.snapshot().window, { calls: 4, failures: 1, slow: 0 });
    await call(breaker, clock, 'fail');
    assert.equal(breaker.state, 'open', 'the last four calls hold two failures: 50%');
  });

  it('with a time window, forgets outcomes older than the window', async () => {
    const { clock, breaker } = make({ minimumCalls: 3, failureRateThreshold: 60, window: { type: 'time', durationMs: 10_000, slices: 10 } });
    await call(breaker, clock, 'fail');
    await call(breaker, clock, 'fail');
    await clock.advance(11_000);
    await call(breaker, clock, 'ok');
    await call(breaker, clock, 'ok');
    await call(breaker, clock, 'fail');
    assert.equal(breaker.state, 'closed', 'the two early failures left the window: 1 of 3 failed');
    assert.deepEqual(breaker.snapshot().window, { calls: 3, failures: 1, slow: 0 });
  });

  it('does not count client errors (4xx) or its own rejections as failures', async () => {
    const { clock, breaker } = make({ minimumCalls: 2, failureRateThreshold: 50 });
    for (let i = 0; i < 5; i++) await call(breaker, clock, boom(404));
    assert.equal(breaker.state, 'closed');
    assert.deepEqual(breaker.snapshot().window, { calls: 5, failures: 0, slow: 0 });
  });

  it('opens on the slow-call rate', async () => {
    const { clock, breaker } = make({ minimumCalls: 4, slowCallDurationMs: 100, slowCallRateThreshold: 50, failureRateThreshold: 100 });
    await call(breaker, clock, 'ok', 150);
    await call(breaker, clock, 'ok', 10);
    await call(breaker, clock, 'ok', 10);
    assert.equal(breaker.state, 'closed');
    await call(breaker, clock, 'ok', 100);
    assert.equal(breaker.state, 'open', 'two of four calls took >= 100 ms');
  });

  it('half-opens after the open duration, closes after all probes succeed', async () => {
    const { clock, breaker, changes } = make({ minimumCalls: 1, failureRateThreshold: 100, halfOpenCalls: 2, openDuration: { baseMs: 1_000 } });
    await call(breaker, clock, 'fail');
    assert.equal(await call(breaker, clock, 'ok'), 'rejected');
    await clock.advance(999);
    assert.equal(await call(breaker, clock, 'ok'), 'rejected');
    await clock.advance(1);
    assert.equal(await call(breaker, clock, 'ok'), 'admitted');
    assert.equal(breaker.state, 'half-open');
    assert.equal(await call(breaker, clock, 'ok'), 'admitted');
    assert.equal(breaker.state, 'closed');
    assert.deepEqual(changes, ['closed->open@0', 'open->half-open@1000', 'half-open->closed@1000']);
  });

  it('admits at most halfOpenCalls concurrent probes', async () => {
    const { clock, breaker } = make({ minimumCalls: 1, failureRateThreshold: 100, halfOpenCalls: 2, openDuration: { baseMs: 10 } });
    await call(breaker, clock, 'fail');
    await clock.advance(10);
    let admitted = 0;
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < 5; i++) {
      pending.push(
        breaker
          .execute(() => {
            admitted++;
            return new Promise((resolve) => clock.setTimer(() => resolve('ok'), 5));
          })
          .catch((e: unknown) => e),
      );
    }
    await clock.advance(5);
    const results = await Promise.all(pending);
    assert.equal(admitted, 2);
    assert.equal(results.filter((r) => r instanceof CircuitOpenError).length, 3);
    assert.equal(breaker.state, 'closed');
  });

  it('reopens on a failed probe, for longer each time, and resets the growth when it closes', async () => {
    const { clock, breaker } = make({ minimumCalls: 1, failureRateThreshold: 100, halfOpenCalls: 1, openDuration: { baseMs: 100, multiplier: 2, maxMs: 300 } });
    const openFor: number[] = [];
    breaker.on('stateChange', (e) => {
      if (e.to === 'open') openFor.push(e.openForMs);
    });
    await call(breaker, clock, 'fail');
    await clock.advance(100);
    await call(breaker, clock, 'fail');
    await clock.advance(200);
    await call(breaker, clock, 'fail');
    await clock.advance(299);
    assert.equal(await call(breaker, clock, 'ok'), 'rejected', 'capped at maxMs = 300');
    await clock.advance(1);
    await call(breaker, clock, 'ok');
    assert.equal(breaker.state, 'closed');
    await call(breaker, clock, 'fail');
    assert.deepEqual(openFor, [100, 200, 300, 100]);
  });

  it('ignores outcomes of calls admitted before a transition', async () => {
    const { clock, breaker } = make({ minimumCalls: 1, failureRateThreshold: 100, halfOpenCalls: 1, openDuration: { baseMs: 50 } });
    const slow = breaker.execute(() => new Promise((_, reject) => clock.setTimer(() => reject(boom()), 500)));
    const slowOutcome = slow.catch((e: unknown) => e);
    await call(breaker, clock, 'fail');
    assert.equal(breaker.state, 'open');
    await clock.advance(50);
    await call(breaker, clock, 'ok');
    assert.equal(breaker.state, 'closed');
    await clock.advance(500);
    await slowOutcome;
    assert.equal(breaker.state, 'closed', 'the late failure belongs to an earlier generation');
    assert.deepEqual(breaker.snapshot().window, { calls: 0, failures: 0, slow: 0 });
  });

  it('does not count a call its caller cancelled, and frees its probe slot', async () => {
    const { clock, breaker } = make({ minimumCalls: 1, failureRateThreshold: 100, halfOpenCalls: 1, openDuration: { baseMs: 10 } });
    await call(breaker, clock, 'fail');
    await clock.advance(10);
    const controller = new AbortController();
    const probe = breaker.execute((ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))), { signal: controller.signal });
    controller.abort(new Error('client went away'));
    await assert.rejects(probe, /client went away/);
    assert.equal(breaker.state, 'half-open');
    assert.equal(await call(breaker, clock, 'ok'), 'admitted', 'the cancelled probe gave its slot back');
    assert.equal(breaker.state, 'closed');
  });

  it('isolate() refuses everything until reset()', async () => {
    const { clock, breaker } = make();
    breaker.isolate();
    const error = await breaker.execute(() => 'ok').catch((e: unknown) => e);
    assert.ok(error instanceof CircuitOpenError);
    assert.equal(error.isolated, true);
    assert.equal(error.retryable, false);
    assert.equal(error.code, 'BULWARK_CIRCUIT_OPEN');
    await clock.advance(3_600_000);
    assert.equal(breaker.state, 'isolated');
    breaker.reset();
    assert.equal(await breaker.execute(() => 'ok'), 'ok');
  });

  it('an open rejection says when to come back', async () => {
    const { clock, breaker } = make({ minimumCalls: 1, failureRateThreshold: 100, openDuration: { baseMs: 1_000 } });
    await call(breaker, clock, 'fail');
    await clock.advance(400);
    const error = await breaker.execute(() => 'ok').catch((e: unknown) => e);
    assert.ok(error instanceof CircuitOpenError);
    assert.equal(error.retryAfterMs, 600);
    assert.equal(error.isolated, false);
    assert.ok(error instanceof Error);
    assert.match(String(error.stack), /circuit breaker "breaker" is open/);
  });

  it('snapshots to plain data and restores from it', async () => {
    const { clock, breaker } = make({ minimumCalls: 1, failureRateThreshold: 100, openDuration: { baseMs: 1_000, multiplier: 2 } });
    await call(breaker, clock, 'fail');
    await clock.advance(250);
    const snapshot = JSON.parse(JSON.stringify(breaker.snapshot())) as ReturnType<typeof breaker.snapshot>;
    assert.deepEqual(snapshot, { state: 'open', openRemainingMs: 750, consecutiveOpens: 1, window: { calls: 1, failures: 1, slow: 0 } });
    const clock2 = new VirtualClock(5_000);
    const restored = circuitBreaker({ clock: clock2, minimumCalls: 1, failureRateThreshold: 100, halfOpenCalls: 1, openDuration: { baseMs: 1_000, multiplier: 2 }, initialState: snapshot });
    assert.equal(restored.state, 'open');
    await clock2.advance(749);
    assert.equal(restored.state, 'open');
    await clock2.advance(1);
    assert.equal(restored.state, 'half-open');
    const openFor: number[] = [];
    restored.on('stateChange', (e) => openFor.push(e.openForMs));
    await restored.execute(() => Promise.reject(boom())).catch(() => undefined);
    assert.deepEqual(openFor, [2_000], 'the restored breaker remembers it had opened once already');
    assert.throws(() => circuitBreaker({ initialState: { ...snapshot, state: 'ajar' as CircuitState } }), InvalidOptionError);
  });

  it('rejects invalid options naming the option and value', () => {
    const cases: [CircuitBreakerOptions, string][] = [
      [{ failureRateThreshold: 0 }, 'failureRateThreshold'],
      [{ failureRateThreshold: 101 }, 'failureRateThreshold'],
      [{ failureRateThreshold: Number.NaN }, 'failureRateThreshold'],
      [{ slowCallRateThreshold: -1 }, 'slowCallRateThreshold'],
      [{ slowCallDurationMs: 0 }, 'slowCallDurationMs'],
      [{ minimumCalls: 0 }, 'minimumCalls'],
      [{ minimumCalls: 1.5 }, 'minimumCalls'],
      [{ window: { type: 'count', size: 0 } }, 'window.size'],
      [{ window: { type: 'time', durationMs: -5 } }, 'window.durationMs'],
      [{ openDuration: { baseMs: -1 } }, 'openDuration.baseMs'],
      [{ openDuration: { baseMs: 1_000, maxMs: 10 } }, 'openDuration.maxMs'],
      [{ openDuration: { multiplier: 0.5 } }, 'openDuration.multiplier'],
      [{ halfOpenCalls: 0 }, 'halfOpenCalls'],
      [{ name: '' }, 'name'],
    ];
    for (const [options, option] of cases) {
      assert.throws(
        () => circuitBreaker(options),
        (e: unknown) => e instanceof InvalidOptionError && e.option === option && e.message.includes(option),
        `expected InvalidOptionError for ${option}`,
      );
    }
  });

  it('property: agrees with a reference model of the state machine on any sequence of calls and pauses', async () => {
    type Step = { kind: 'ok' | 'fail' | 'client-error' } | { kind: 'wait'; ms: number };
    const step = fc.oneof(
      fc.constantFrom<Step>({ kind: 'ok' }, { kind: 'fail' }, { kind: 'client-error' }),
      fc.integer({ min: 1, max: 400 }).map((ms): Step => ({ kind: 'wait', ms })),
    );
    const config = fc.record({
      size: fc.integer({ min: 1, max: 8 }),
      minimumCalls: fc.integer({ min: 1, max: 8 }),
      threshold: fc.integer({ min: 1, max: 100 }),
      halfOpenCalls: fc.integer({ min: 1, max: 3 }),
      baseMs: fc.integer({ min: 1, max: 300 }),
      multiplier: fc.integer({ min: 1, max: 3 }),
    });
    await fc.assert(
      fc.asyncProperty(config, fc.array(step, { minLength: 10, maxLength: 80, size: "max" }), async (c, steps) => {
        const clock = new VirtualClock();
        const maxMs = c.baseMs * 4;
        const breaker = circuitBreaker({
          clock,
          window: { type: 'count', size: c.size },
          minimumCalls: c.minimumCalls,
          failureRateThreshold: c.threshold,
          halfOpenCalls: c.halfOpenCalls,
          openDuration: { baseMs: c.baseMs, multiplier: c.multiplier, maxMs },
        });
        // The reference model, written from the documented rules.
        const m = { state: 'closed' as 'closed' | 'open' | 'half-open', window: [] as boolean[], openUntil: 0, opens: 0, probes: 0 };
        const open = (): void => {
          m.state = 'open';
          m.opens++;
          m.openUntil = clock.now() + Math.min(maxMs, c.baseMs * c.multiplier ** (m.opens - 1));
        };
        const halfOpenIfDue = (): void => {
          if (m.state === 'open' && clock.now() >= m.openUntil) {
            m.state = 'half-open';
            m.probes = 0;
          }
        };
        for (const s of steps) {
          if (s.kind === 'wait') {
            await clock.advance(s.ms);
            continue;
          }
          halfOpenIfDue();
          const expectAdmit = m.state !== 'open';
          const outcome = s.kind === 'ok' ? 'ok' : s.kind === 'fail' ? 'fail' : boom(400);
          const admitted = (await call(breaker, clock, outcome)) === 'admitted';
          assert.equal(admitted, expectAdmit);
          if (admitted) {
            const failed = s.kind === 'fail';
            if (m.state === 'closed') {
              m.window.push(failed);
              if (m.window.length > c.size) m.window.shift();
              const failures = m.window.filter(Boolean).length;
              if (m.window.length >= c.minimumCalls && (failures * 100) / m.window.length >= c.threshold) open();
            } else if (m.state === 'half-open') {
              if (failed) open();
              else if (++m.probes >= c.halfOpenCalls) {
                m.state = 'closed';
                m.opens = 0;
                m.window = [];
              }
            }
          }
          halfOpenIfDue();
          assert.equal(breaker.state, m.state);
        }
      }),
      { numRuns: 200 },
    );
  });
});
