import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ROOT_CONTEXT, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { isBulwarkError, retry } from '@bulwark/resilience';
import type { Envelope } from '@bulwark/messaging';
import { InvalidTelemetryOptionError, isInvalidTelemetryOptionError } from '../errors.js';
import { messagingTracing } from './messaging-tracing.js';
import { kStartServerSpan, type StartServerSpan } from './server-span.js';
import { setupTelemetry, type Telemetry } from './setup.js';
import { MemorySpanStore } from './span-store.js';

// One globally registered handle for this file (context manager and propagator), shut down at the end.
const global = setupTelemetry({ serviceName: 'tracing-test', exporter: 'memory', processor: 'simple', messaging: false, httpClient: false });
after(() => global.shutdown());

function handle(ratio: number, keepErrors = true): Telemetry {
  return setupTelemetry({ serviceName: `s-${ratio}`, sampler: { ratio, keepErrors }, exporter: 'memory', processor: 'simple', register: false, messaging: false, httpClient: false, resilience: false });
}

describe('sampling keeps every error span', () => {
  it('ratio 0: a span that ends well is not exported; a failing span and its ancestors ending later are, marked as kept', async () => {
    const t = handle(0);
    const quiet = t.tracer.startSpan('quiet');
    quiet.end();
    const root = t.tracer.startSpan('root');
    const child = t.tracer.startSpan('child', {}, trace.setSpan(ROOT_CONTEXT, root));
    assert.equal(child.isRecording(), true, 'unsampled spans are recorded so their errors can be kept');
    assert.equal(child.spanContext().traceFlags & 1, 0, 'and not flagged sampled for downstream services');
    child.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
    child.end();
    root.end();
    await t.forceFlush();
    const names = t.spans!.recent().map((s) => [s.name, s.attributes['bulwark.sampling.kept']]);
    assert.deepEqual(names, [
      ['root', 'error-trace'],
      ['child', 'error'],
    ]);
    assert.equal(t.spans!.query({ name: 'child' })[0]!.parentSpanId, root.spanContext().spanId);
    await t.shutdown();
  });

  it('ratio 1 exports every span; keepErrors false with ratio 0 exports none and does not record', async () => {
    const all = handle(1);
    all.tracer.startSpan('a').end();
    await all.forceFlush();
    assert.equal(all.spans!.size, 1);
    const none = handle(0, false);
    const span = none.tracer.startSpan('b');
    assert.equal(span.isRecording(), false);
    span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
    await none.forceFlush();
    assert.equal(none.spans!.size, 0);
    await all.shutdown();
    await none.shutdown();
  });

  it('an unsampled server span is deferred: nothing exported when it ends well; with the same ids, times, attributes, events and exception when it fails or a child failed', async () => {
    const t = handle(0);
    const start = (t as unknown as Record<symbol, StartServerSpan>)[kStartServerSpan]!;
    const quiet = start('GET /a', { 'http.route': '/a' }, ROOT_CONTEXT);
    assert.equal(quiet.isRecording(), true);
    assert.equal(quiet.spanContext().traceFlags & 1, 0);
    quiet.end();
    await t.forceFlush();
    assert.equal(t.spans!.size, 0);

    const failing = start('GET /b', { 'http.route': '/b' }, ROOT_CONTEXT);
    failing.addEvent('resilience.retry.retry', { 'bulwark.attempt': 1 });
    failing.recordException(new Error('boom'));
    failing.setAttribute('http.response.status_code', 500);
    failing.setStatus({ code: SpanStatusCode.ERROR });
    failing.end();
    await t.forceFlush();
    const [stored] = t.spans!.query({ name: 'GET /b' });
    assert.ok(stored);
    assert.equal(stored.spanId, failing.spanContext().spanId);
    assert.equal(stored.traceId, failing.spanContext().traceId);
    assert.equal(stored.status.code, 'error');
    assert.equal(stored.attributes['http.response.status_code'], 500);
    assert.equal(stored.attributes['bulwark.sampling.kept'], 'error');
    assert.deepEqual(stored.events.map((e) => e.name), ['resilience.retry.retry', 'exception']);

    const root = start('GET /c', {}, ROOT_CONTEXT);
    const child = t.tracer.startSpan('client', {}, trace.setSpan(ROOT_CONTEXT, root));
    child.setStatus({ code: SpanStatusCode.ERROR });
    child.end();
    root.end();
    await t.forceFlush();
    const [kept] = t.spans!.query({ name: 'GET /c' });
    assert.equal(kept?.attributes['bulwark.sampling.kept'], 'error-trace');
    assert.equal(t.spans!.query({ name: 'client' })[0]!.parentSpanId, kept.spanId);
    await t.shutdown();
  });

  it('a sampled server span is an SDK span with the trace id the ratio decided on; keepErrors false gives a non-recording one', async () => {
    const all = handle(1);
    const span = (all as unknown as Record<symbol, StartServerSpan>)[kStartServerSpan]!('GET /d', {}, ROOT_CONTEXT);
    assert.equal(span.spanContext().traceFlags & 1, 1);
    span.end();
    await all.forceFlush();
    assert.equal(all.spans!.query({ name: 'GET /d' })[0]?.spanId, span.spanContext().spanId);
    const none = handle(0, false);
    assert.equal((none as unknown as Record<symbol, StartServerSpan>)[kStartServerSpan]!('GET /e', {}, ROOT_CONTEXT).isRecording(), false);
    await all.shutdown();
    await none.shutdown();
  });

  it('a bad option is a typed error naming the option', () => {
    for (const [options, option] of [
      [{ serviceName: 'x', sampler: { ratio: 1.5 } }, 'sampler.ratio'],
      [{ serviceName: '' }, 'serviceName'],
      [{ serviceName: 'x', exporter: 'zipkin' }, 'exporter'],
      [{ serviceName: 'x', register: true }, 'register'],
    ] as const) {
      assert.throws(
        () => setupTelemetry({ ...(options as { serviceName: string }), messaging: false, httpClient: false, resilience: false }),
        (error: unknown) => error instanceof InvalidTelemetryOptionError && isInvalidTelemetryOptionError(error) && isBulwarkError(error) && error.option === option && error.code === 'BULWARK_TELEMETRY_INVALID_OPTION' && !error.retryable,
      );
    }
  });
});

describe('MemorySpanStore', () => {
  it('is bounded: the oldest spans are evicted, also from their trace', async () => {
    const store = new MemorySpanStore({ maxSpans: 3 });
    const t = setupTelemetry({ serviceName: 'bounded', exporter: 'memory', memory: { store }, processor: 'simple', register: false, messaging: false, httpClient: false, resilience: false });
    const first = t.tracer.startSpan('s0');
    first.end();
    for (let i = 1; i < 5; i++) t.tracer.startSpan(`s${i}`).end();
    await t.forceFlush();
    assert.equal(store.size, 3);
    assert.deepEqual(store.recent().map((s) => s.name), ['s4', 's3', 's2']);
    assert.deepEqual(store.trace(first.spanContext().traceId), []);
    assert.throws(() => new MemorySpanStore({ maxSpans: 0 }), InvalidTelemetryOptionError);
    await t.shutdown();
  });

  it('answers queries by trace, service, name, errors and limit, and summarises traces', async () => {
    const store = new MemorySpanStore();
    const a = setupTelemetry({ serviceName: 'a', exporter: 'memory', memory: { store }, processor: 'simple', register: false, messaging: false, httpClient: false, resilience: false });
    const b = setupTelemetry({ serviceName: 'b', exporter: 'memory', memory: { store }, processor: 'simple', register: false, messaging: false, httpClient: false, resilience: false });
    const root = a.tracer.startSpan('GET /x');
    const parent = trace.setSpan(ROOT_CONTEXT, root);
    const failed = b.tracer.startSpan('work', {}, parent);
    failed.setStatus({ code: SpanStatusCode.ERROR, message: 'nope' });
    failed.end();
    b.tracer.startSpan('work', {}, parent).end();
    root.end();
    a.tracer.startSpan('other').end();
    await Promise.all([a.forceFlush(), b.forceFlush()]);
    const traceId = root.spanContext().traceId;
    assert.deepEqual(store.trace(traceId).map((s) => s.name), ['GET /x', 'work', 'work']);
    assert.equal(store.query({ service: 'b' }).length, 2);
    assert.deepEqual(store.query({ errorsOnly: true }).map((s) => [s.name, s.status]), [['work', { code: 'error', message: 'nope' }]]);
    assert.equal(store.query({ name: 'work', limit: 1 }).length, 1);
    assert.equal(store.query({ traceId, service: 'a' }).length, 1);
    const summary = store.traces().find((s) => s.traceId === traceId)!;
    assert.deepEqual({ root: summary.rootName, services: summary.services.sort(), spans: summary.spanCount, errors: summary.errorCount }, { root: 'GET /x', services: ['a', 'b'], spans: 3, errors: 1 });
    await a.shutdown();
    await b.shutdown();
  });
});

describe('integrations', () => {
  it('resilience events become span events on the active span', async () => {
    const policy = retry({ name: 'payments', maxAttempts: 2, backoff: { baseMs: 1, capMs: 1 }, retryOn: () => true });
    const span = global.tracer.startSpan('call');
    let calls = 0;
    await context.with(trace.setSpan(ROOT_CONTEXT, span), () =>
      policy.execute(async () => {
        if (++calls === 1) throw new Error('flaky');
        return 'ok';
      }),
    );
    span.end();
    await global.forceFlush();
    const stored = global.spans!.query({ name: 'call' })[0]!;
    const event = stored.events.find((e) => e.name === 'resilience.retry.retry');
    assert.ok(event, `events: ${JSON.stringify(stored.events)}`);
    assert.equal(event.attributes['bulwark.policy'], 'payments');
    assert.equal(event.attributes['bulwark.attempt'], 1);
    assert.equal(event.attributes['exception.message'], 'flaky');
  });

  it('messaging: inject writes the active traceparent; handle runs in a consumer span parented to and linked with it, and fails with the handler', async () => {
    const hook = messagingTracing(global.tracer);
    const producer = global.tracer.startSpan('produce');
    const headers: Record<string, string> = {};
    context.with(trace.setSpan(ROOT_CONTEXT, producer), () => hook.inject(headers));
    producer.end();
    const { traceId, spanId } = producer.spanContext();
    assert.equal(headers.traceparent, `00-${traceId}-${spanId}-01`);
    const envelope = { id: 'm1', type: 'T', version: 1, key: 'k', occurredAt: new Date().toISOString(), headers, payload: {} } as Envelope;
    const info = { topic: 'orders', group: 'g', envelope, deliveryCount: 1, batchSize: 1 };
    const seen = await hook.handle(info, () => Promise.resolve(trace.getActiveSpan()?.spanContext()));
    assert.equal(seen?.traceId, traceId);
    await assert.rejects(hook.handle(info, () => Promise.reject(new Error('handler failed'))), /handler failed/);
    await global.forceFlush();
    const consumers = global.spans!.query({ name: 'orders process' });
    assert.equal(consumers.length, 2);
    for (const c of consumers) {
      assert.equal(c.parentSpanId, spanId);
      assert.deepEqual(c.links.map((l) => l.spanId), [spanId]);
    }
    assert.deepEqual(consumers.map((c) => c.status.code), ['error', 'unset']);
  });
});
