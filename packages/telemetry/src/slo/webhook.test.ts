import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { VirtualClock, flushMicrotasks } from '@bulwark/resilience/testing';
import type { SloAlert } from './alert.js';
import { createSloEngine } from './engine.js';
import { WebhookRejectedError, isWebhookError } from './errors.js';
import { webhook, type WebhookRequest, type WebhookResponse, type WebhookPayload } from './webhook.js';

function alert(n: number): SloAlert {
  return {
    id: `checkout/page/${n}`,
    slo: 'checkout',
    service: 'orders',
    severity: 'page',
    state: 'firing',
    firedAt: 0,
    firedAtTime: new Date(0).toISOString(),
    resolvedAt: undefined,
    resolvedAtTime: undefined,
    conditions: [],
    budgetRemaining: 0.5,
    labels: {},
  };
}

/** A transport answering from a script of statuses; each call is recorded with its virtual time. */
function scripted(clock: VirtualClock, statuses: number[]) {
  const calls: { at: number; request: WebhookRequest }[] = [];
  return {
    calls,
    transport: async (request: WebhookRequest): Promise<WebhookResponse> => {
      calls.push({ at: clock.now(), request });
      return { status: statuses.shift() ?? 200 };
    },
  };
}

describe('webhook delivery', () => {
  it('retries a failing webhook with exponential backoff on the clock, with the same idempotency key, until it succeeds', async () => {
    const clock = new VirtualClock(0);
    const { calls, transport } = scripted(clock, [503, 502, 204]);
    const hook = webhook({ url: 'http://alerts.example/hook', clock, transport, backoff: { baseMs: 1_000, jitter: 'none' } });
    hook.notify(alert(1));
    await flushMicrotasks();
    // Attempt 1 at t=0 answered 503: the retry waits base * 2^0 = 1 000 ms, then 2 000 ms.
    assert.deepEqual(calls.map((c) => c.at), [0]);
    assert.equal(clock.nextDue(), 1_000, 'the next attempt is a timer 1 s out');
    await clock.advance(999);
    assert.equal(calls.length, 1, 'no attempt before the backoff is over');
    await clock.advance(1);
    assert.deepEqual(calls.map((c) => c.at), [0, 1_000]);
    await clock.advance(2_000);
    assert.deepEqual(calls.map((c) => c.at), [0, 1_000, 3_000]);
    await hook.idle();
    assert.deepEqual({ ...hook.stats() }, { queued: 0, inFlight: false, delivered: 1, failed: 0, dropped: 0, attempts: 3 });
    const keys = new Set(calls.map((c) => c.request.headers['idempotency-key']));
    assert.deepEqual([...keys], ['checkout/page/1:firing']);
    const body = JSON.parse(calls[0]!.request.body) as WebhookPayload;
    assert.equal(body.kind, 'bulwark.slo.alert');
    assert.equal(body.alert.id, 'checkout/page/1');
  });

  it('gives up at once on a 4xx that retrying cannot fix, and after maxAttempts on a 5xx', async () => {
    const clock = new VirtualClock(0);
    const rejected = scripted(clock, [400]);
    const hook = webhook({ url: 'http://alerts.example/hook', clock, transport: rejected.transport });
    const failures: unknown[] = [];
    hook.on('failed', (e) => failures.push(e.error));
    hook.notify(alert(1));
    await hook.idle();
    assert.equal(rejected.calls.length, 1);
    assert.ok(failures[0] instanceof WebhookRejectedError);

    const down = scripted(clock, [500, 500, 500]);
    const flaky = webhook({ url: 'http://alerts.example/hook', clock, transport: down.transport, maxAttempts: 3, backoff: { baseMs: 10, jitter: 'none' } });
    flaky.notify(alert(2));
    await clock.runAll();
    await flaky.idle();
    assert.equal(down.calls.length, 3);
    assert.equal(flaky.stats().failed, 1);
  });

  it('never blocks the engine: a hung webhook leaves record() and evaluate() synchronous, the queue bounded and drops counted', async () => {
    const clock = new VirtualClock(0);
    let sent = 0;
    const hook = webhook({
      url: 'http://alerts.example/hook',
      clock,
      maxQueue: 1,
      timeoutMs: 60_000,
      // A receiver that never answers: each attempt only ends when the timeout aborts it.
      transport: ({ signal }) => {
        sent++;
        return new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)));
      },
    });
    const engine = createSloEngine({
      clock,
      evaluateEveryMs: 0,
      sinks: [hook],
      slos: ['a', 'b', 'c'].map((name) => ({ name, service: 'orders', objective: 0.999 })),
    });
    const fired: string[] = [];
    engine.on('alert', (a) => fired.push(`${a.slo}/${a.severity}`));
    for (const name of ['a', 'b', 'c']) engine.record(name, 0, 100);
    engine.evaluate(); // a, b and c page and ticket: 6 transitions while the first delivery hangs
    assert.equal(fired.length, 6, 'alerts are emitted synchronously by evaluate()');
    for (let i = 0; i < 10_000; i++) engine.record('a', 1, 1); // returns at once: record() touches no webhook
    await flushMicrotasks();
    assert.equal(sent, 1);
    assert.deepEqual({ ...hook.stats() }, { queued: 1, inFlight: true, delivered: 0, failed: 0, dropped: 4, attempts: 1 });
    await engine.close();
    assert.equal(hook.stats().inFlight, false, 'close() aborts the hung attempt');
  });

  it('POSTs JSON over HTTP with undici and retries a real 503 until the receiver recovers', async () => {
    const received: { headers: IncomingMessage['headers']; body: string }[] = [];
    let arrived: () => void = () => undefined;
    const server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.statusCode = received.length < 3 ? 503 : 204;
        if (received.length < 3) res.setHeader('retry-after', '2');
        res.end();
        arrived();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const nextRequest = (): Promise<void> => new Promise((resolve) => (arrived = resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const clock = new VirtualClock(0);
      const hook = webhook({ url: `http://127.0.0.1:${port}/hook`, clock, backoff: { baseMs: 100, jitter: 'none' }, headers: { authorization: 'Bearer t' } });
      let request = nextRequest();
      hook.notify(alert(7));
      await request;
      request = nextRequest();
      // The 503 asked for Retry-After: 2 s, longer than the 100 ms backoff: the retry waits 2 s
      // (once the answer is in, the attempt's 5 s timeout timer is gone and the retry's is the only one).
      await waitFor(() => clock.pendingTimers() === 1 && clock.nextDue() === 2_000);
      await clock.advance(1_999);
      assert.equal(received.length, 1, 'no retry before Retry-After');
      await clock.advance(1);
      await request;
      request = nextRequest();
      await waitFor(() => clock.pendingTimers() === 1 && clock.nextDue() === 4_000);
      await clock.advance(2_000);
      await request;
      await hook.idle();
      assert.equal(received.length, 3);
      assert.equal(hook.stats().delivered, 1);
      assert.equal(received[2]!.headers['content-type'], 'application/json');
      assert.equal(received[2]!.headers.authorization, 'Bearer t');
      assert.equal(received[2]!.headers['idempotency-key'], 'checkout/page/7:firing');
      assert.equal((JSON.parse(received[2]!.body) as WebhookPayload).alert.id, 'checkout/page/7');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('reports an unreachable receiver as a retryable webhook error', async () => {
    const clock = new VirtualClock(0);
    const hook = webhook({ url: 'http://127.0.0.1:9/hook', clock, maxAttempts: 1 });
    const failures: unknown[] = [];
    hook.on('failed', (e) => failures.push(e.error));
    hook.notify(alert(1));
    await hook.idle();
    assert.equal(failures.length, 1);
    assert.ok(isWebhookError(failures[0]) && failures[0].code === 'BULWARK_SLO_WEBHOOK_FAILED' && failures[0].retryable);
  });
});

/** Waits (on real I/O, bounded) until `predicate` holds; a safety net, not a timing assertion. */
async function waitFor(predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 5_000 && !predicate(); i++) await new Promise((resolve) => setTimeout(resolve, 1));
  assert.ok(predicate(), 'condition never held');
}
