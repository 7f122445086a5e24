import { strict as assert } from 'node:assert';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, it } from 'node:test';
import { bulkhead, channelName, circuitBreaker, retry } from './index.js';
import { VirtualClock } from './testing/index.js';

const unavailable = (): Error => Object.assign(new Error('unavailable'), { status: 503 });

describe('policy events', () => {
  it('are published on the diagnostics channel of the policy kind, with type and policy name', async () => {
    const clock = new VirtualClock();
    const seen: unknown[] = [];
    const onMessage = (message: unknown): void => void seen.push(message);
    subscribe(channelName('retry'), onMessage);
    try {
      const policy = retry({ name: 'inventory', clock, maxAttempts: 2, backoff: { baseMs: 10, jitter: 'none' } });
      const result = policy.execute(() => Promise.reject(unavailable())).catch((e: unknown) => e);
      await clock.runAll();
      await result;
    } finally {
      unsubscribe(channelName('retry'), onMessage);
    }
    assert.equal(seen.length, 2);
    assert.deepEqual(
      seen.map((m) => [(m as { type: string }).type, (m as { policy: string }).policy]),
      [
        ['retry', 'inventory'],
        ['giveUp', 'inventory'],
      ],
    );
    assert.equal((seen[0] as { delayMs: number }).delayMs, 10);
    assert.equal((seen[1] as { reason: string }).reason, 'attempts');
  });

  it('reach typed listeners, which can unsubscribe', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ clock, minimumCalls: 1, failureRateThreshold: 100 });
    const changes: string[] = [];
    const stop = breaker.on('stateChange', (e) => changes.push(`${e.type}:${e.from}->${e.to}:${e.policy}`));
    await breaker.execute(() => Promise.reject(unavailable())).catch(() => undefined);
    stop();
    breaker.reset();
    assert.deepEqual(changes, ['stateChange:closed->open:breaker']);
  });

  it('a listener that throws does not change the outcome of the call', async () => {
    const limiter = bulkhead({ maxConcurrent: 1 });
    limiter.on('rejected', () => {
      throw new Error('listener bug');
    });
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      let release!: () => void;
      const first = limiter.execute(() => new Promise<void>((resolve) => (release = resolve)));
      const second = await limiter.execute(() => 'never runs').catch((e: unknown) => e);
      assert.equal((second as { code: string }).code, 'BULWARK_BULKHEAD_REJECTED');
      release();
      await first;
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    assert.ok(warnings.some((w) => w.includes('listener bug')));
  });
});
