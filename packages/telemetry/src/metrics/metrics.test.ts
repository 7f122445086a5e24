import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import Fastify from 'fastify';
import { request } from 'undici';
import { bulkhead, circuitBreaker, retry } from '@bulwark/resilience';
import { InvalidTelemetryOptionError, UnknownFunnelStepError, isUnknownFunnelStepError } from '../errors.js';
import { fastifyTelemetry } from '../http/fastify-telemetry.js';
import { metricsRoute } from '../http/metrics-route.js';
import { setupTelemetry } from '../tracing/setup.js';
import { funnel, businessCounter } from './business.js';
import { instrumentHttpClient } from './dependency-metrics.js';
import { Metrics } from './metrics.js';
import { instrumentResilience } from './resilience-metrics.js';
import { watchBulkhead } from './use-metrics.js';

const OPENMETRICS = 'application/openmetrics-text; version=1.0.0';
const telemetry = setupTelemetry({ serviceName: 'metrics-test', sampler: { ratio: 1 }, exporter: 'memory', processor: 'simple', messaging: false, httpClient: false, resilience: false });
after(() => telemetry.shutdown());

describe('RED per route and /metrics', () => {
  it('counts requests by method, route and status class, observes durations, and serves both formats with exemplars in OpenMetrics', async () => {
    const metrics = new Metrics({ defaultLabels: { service: 'shop' } });
    const app = Fastify();
    await app.register(fastifyTelemetry, { telemetry, metrics, accessLog: false, ignoreRoutes: ['/metrics'] });
    await app.register(metricsRoute, { metrics });
    app.get('/items/:id', () => ({ ok: true }));
    app.get('/fail', () => {
      throw new Error('down');
    });
    after(() => app.close());
    for (const id of ['1', '2', '3']) await app.inject({ url: `/items/${id}` });
    await app.inject({ url: '/fail' });
    await app.inject({ url: '/nowhere' });

    assert.equal(await metrics.value('bulwark_http_server_requests_total', { route: '/items/:id', status_class: '2xx' }), 3);
    assert.equal(await metrics.value('bulwark_http_server_requests_total', { route: '/fail', status_class: '5xx' }), 1);
    assert.equal(await metrics.value('bulwark_http_server_requests_total', { route: 'unmatched', status_class: '4xx' }), 1);
    assert.equal(await metrics.value('bulwark_http_server_request_duration_seconds', { route: '/items/:id' }), 3);

    const open = await app.inject({ url: '/metrics', headers: { accept: OPENMETRICS } });
    assert.match(String(open.headers['content-type']), /^application\/openmetrics-text/);
    assert.match(open.body, /bulwark_http_server_requests_total\{method="GET",route="\/items\/:id",status_class="2xx",service="shop"\} 3/);
    const exemplar = /bulwark_http_server_request_duration_seconds_bucket\{[^}]*route="\/items\/:id"[^}]*\} \d+ # \{trace_id="([0-9a-f]{32})"\}/.exec(open.body);
    assert.ok(exemplar, 'a duration bucket carries a trace id exemplar');
    assert.equal(telemetry.spans!.trace(exemplar[1]!).length, 1, 'the exemplar links to a stored trace');
    assert.ok(open.body.endsWith('# EOF\n'));

    const text = await app.inject({ url: '/metrics', headers: { accept: 'text/plain' } });
    assert.match(String(text.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    assert.match(text.body, /# TYPE bulwark_http_server_requests_total counter/, 'counter names keep _total after an OpenMetrics scrape');
    assert.doesNotMatch(text.body, /# \{trace_id=/);
    const spans = telemetry.spans!.query({ name: 'GET /fail' });
    assert.equal(spans[0]?.status.code, 'error');
    assert.equal(spans[0]?.attributes['http.response.status_code'], 500);
  });

  it('metric families are get-or-create, and a conflicting redefinition is a typed error', () => {
    const metrics = new Metrics();
    assert.equal(metrics.counter('x_total', 'x', ['a']), metrics.counter('x_total', 'x', ['a']));
    assert.throws(() => metrics.gauge('x_total', 'x', ['a']), InvalidTelemetryOptionError);
    assert.throws(() => metrics.counter('x_total', 'x', ['b']), InvalidTelemetryOptionError);
    assert.throws(() => new Metrics({ durationBuckets: [1, 0.5] }), (e: unknown) => e instanceof InvalidTelemetryOptionError && e.option === 'durationBuckets');
  });
});

describe('RED per dependency', () => {
  it('counts undici requests by dependency, method and status class, and failures as "error"', async () => {
    const metrics = new Metrics();
    const stop = instrumentHttpClient(metrics, { dependency: (origin) => (origin.includes('127.0.0.1') ? 'inventory' : 'other') });
    const upstream = Fastify();
    upstream.get('/stock', () => ({ n: 1 }));
    upstream.get('/broken', (_req, reply) => reply.code(503).send());
    await upstream.listen({ port: 0, host: '127.0.0.1' });
    const port = (upstream.server.address() as { port: number }).port;
    for (const path of ['/stock', '/stock', '/broken']) await (await request(`http://127.0.0.1:${port}${path}`)).body.text();
    await upstream.close();
    await assert.rejects(request(`http://127.0.0.1:${port}/stock`));
    stop();
    assert.equal(await metrics.value('bulwark_http_client_requests_total', { dependency: 'inventory', method: 'GET', status_class: '2xx' }), 2);
    assert.equal(await metrics.value('bulwark_http_client_requests_total', { dependency: 'inventory', status_class: '5xx' }), 1);
    assert.equal(await metrics.value('bulwark_http_client_requests_total', { dependency: 'inventory', status_class: 'error' }), 1);
    assert.equal(await metrics.value('bulwark_http_client_request_duration_seconds', { dependency: 'inventory' }), 4);
  });
});

describe('policy and USE metrics', () => {
  it('turns resilience events into retry, breaker, rejection metrics and reads bulkhead occupancy at scrape time', async () => {
    const metrics = new Metrics();
    const stop = instrumentResilience(metrics);
    after(stop);
    const policy = retry({ name: 'payments', maxAttempts: 3, backoff: { baseMs: 1, capMs: 1 }, retryOn: () => true });
    await assert.rejects(policy.execute(() => Promise.reject(new Error('down'))));
    const breaker = circuitBreaker({ name: 'inventory' });
    breaker.isolate();
    await assert.rejects(breaker.execute(() => Promise.resolve(1)));
    const slots = bulkhead({ name: 'recs', maxConcurrent: 1 });
    watchBulkhead(metrics, slots);
    let release!: () => void;
    const held = slots.execute(() => new Promise<void>((r) => (release = r)));
    await assert.rejects(slots.execute(() => Promise.resolve()));
    assert.equal(await metrics.value('bulwark_resource_waiting', { kind: 'bulkhead', name: 'recs' }), 0);
    const text = (await metrics.scrape()).body;
    release();
    await held;

    assert.equal(await metrics.value('bulwark_resilience_retries_total', { policy: 'payments' }), 2);
    assert.equal(await metrics.value('bulwark_resilience_retry_give_ups_total', { policy: 'payments', reason: 'attempts' }), 1);
    assert.equal(await metrics.value('bulwark_resilience_breaker_state', { policy: 'inventory' }), 3);
    assert.equal(await metrics.value('bulwark_resilience_breaker_transitions_total', { policy: 'inventory', from: 'closed', to: 'isolated' }), 1);
    assert.equal(await metrics.value('bulwark_resilience_rejections_total', { policy: 'inventory', kind: 'circuit-breaker' }), 1);
    assert.equal(await metrics.value('bulwark_resilience_rejections_total', { policy: 'recs', kind: 'bulkhead', reason: 'full' }), 1);
    assert.match(text, /bulwark_resource_in_use\{kind="bulkhead",name="recs"\} 1/);
    assert.match(text, /bulwark_resource_utilization\{kind="bulkhead",name="recs"\} 1/);
  });
});

describe('business counters', () => {
  it('a funnel counts each step from zero and refuses undeclared steps', async () => {
    const metrics = new Metrics();
    const checkout = funnel(metrics, 'checkout', ['cart', 'payment', 'confirmed']);
    assert.deepEqual(await checkout.counts(), { cart: 0, payment: 0, confirmed: 0 });
    checkout.reached('cart', 3);
    checkout.reached('payment');
    assert.deepEqual(await checkout.counts(), { cart: 3, payment: 1, confirmed: 0 });
    assert.throws(() => checkout.reached('shipped'), (e: unknown) => e instanceof UnknownFunnelStepError && isUnknownFunnelStepError(e) && e.step === 'shipped');
    assert.throws(() => funnel(metrics, 'dup', ['a', 'a']), InvalidTelemetryOptionError);
    const refunds = businessCounter(metrics, 'refunds', 'Refunds issued.', ['reason']);
    refunds.inc({ reason: 'damaged' });
    assert.equal(await metrics.value('bulwark_business_refunds_total', { reason: 'damaged' }), 1);
    assert.throws(() => businessCounter(metrics, 'Bad Name', 'x'), InvalidTelemetryOptionError);
  });
});
