/**
 * The request path's cheap forms keep their behaviour: deferred server spans with lazily made ids
 * still put the trace id on every log line and in `traceparent`; the ratio rule on id words answers
 * as the SDK's sampler; the RED series read by prom-client at scrape time expose the same numbers
 * prom-client's own histogram would; the log file buffer writes a quiet service's lines.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT_CONTEXT, context, createContextKey, trace } from '@opentelemetry/api';
import { SamplingDecision, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';
import Fastify, { LogController } from 'fastify';
import { request } from 'undici';
import { LineBuffer } from '../logging/line-buffer.js';
import { createLogger } from '../logging/logger.js';
import { traceFraction } from '../logging/trace-fields.js';
import { HttpServerMetrics } from '../metrics/http-metrics.js';
import { Metrics } from '../metrics/metrics.js';
import { captureLogs } from '../testing/index.js';
import { kStartServerSpan, withSpan, type StartServerSpan } from '../tracing/server-span.js';
import { setupTelemetry } from '../tracing/setup.js';
import { fastifyTelemetry } from './fastify-telemetry.js';
import { metricsRoute } from './metrics-route.js';

// Registered globally (context manager, propagator, undici client spans); nothing sampled by the ratio.
const telemetry = setupTelemetry({ serviceName: 'req-path', sampler: { ratio: 0 }, exporter: 'memory', processor: 'simple', messaging: false, resilience: false });
after(() => telemetry.shutdown());

const OPENMETRICS = 'application/openmetrics-text; version=1.0.0';
const HEX32 = /^[0-9a-f]{32}$/;

describe('unsampled requests (deferred server span, ids made on first read)', () => {
  it('every log line of the request carries its trace id, and the outgoing call propagates it (not sampled)', async () => {
    const seen: IncomingHttpHeaders[] = [];
    const upstream = createServer((req, res) => {
      seen.push(req.headers);
      res.end('{}');
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    after(() => upstream.close());
    const port = (upstream.address() as { port: number }).port;

    const logs = captureLogs();
    const logger = createLogger({ service: 'a', destination: logs.stream });
    const app = Fastify({ loggerInstance: logger, logController: new LogController({ disableRequestLogging: true }) });
    await app.register(fastifyTelemetry, { telemetry });
    app.get('/orders/:id', async (req) => {
      req.log.info('before the await');
      await sleep(1);
      logger.info('root logger, after the await');
      await (await request(`http://127.0.0.1:${port}/stock`)).body.text();
      req.log.info('after the call');
      return { ok: true };
    });
    after(() => app.close());

    for (let i = 0; i < 3; i++) assert.equal((await app.inject({ url: `/orders/${i}` })).statusCode, 200);
    const lines = logs.lines();
    assert.equal(lines.length, 12);
    assert.equal(seen.length, 3);
    for (let i = 0; i < 3; i++) {
      const request = lines.slice(i * 4, i * 4 + 4);
      const traceId = request[0]!.trace_id as string;
      assert.match(traceId, HEX32);
      assert.deepEqual(request.map((l) => l.trace_id), [traceId, traceId, traceId, traceId], JSON.stringify(request));
      assert.deepEqual(request.map((l) => l.msg), ['before the await', 'root logger, after the await', 'after the call', 'request completed']);
      const server = request[3]!.span_id as string;
      assert.deepEqual(request.map((l) => l.span_id), [server, server, server, server]);
      const traceparent = String(seen[i]!.traceparent);
      assert.match(traceparent, new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`), 'the trace continues downstream, not sampled');
    }
    assert.equal(new Set(lines.map((l) => l.trace_id)).size, 3, 'one trace per request');
    await telemetry.forceFlush();
    assert.equal(telemetry.spans!.size, 0, 'nothing exported: the requests ended well');
  });

  it('an incoming unsampled traceparent is continued: its trace id on the lines, a new span id', async () => {
    const logs = captureLogs();
    const app = Fastify({ loggerInstance: createLogger({ service: 'b', destination: logs.stream }), logController: new LogController({ disableRequestLogging: true }) });
    await app.register(fastifyTelemetry, { telemetry });
    app.get('/x', (req) => {
      req.log.info('handler');
      return 'ok';
    });
    after(() => app.close());
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    await app.inject({ url: '/x', headers: { traceparent: `00-${traceId}-b7ad6b7169203331-00` } });
    const lines = logs.lines();
    assert.deepEqual(lines.map((l) => l.trace_id), [traceId, traceId]);
    assert.match(String(lines[0]!.span_id), /^[0-9a-f]{16}$/);
    assert.notEqual(lines[0]!.span_id, 'b7ad6b7169203331');
    assert.equal(lines[0]!.span_id, lines[1]!.span_id);
  });

  it('the access line is kept or dropped with its trace (log sampling at a ratio), for new and continued traces', async () => {
    const logs = captureLogs();
    const ratio = 0.5;
    const app = Fastify({ loggerInstance: createLogger({ service: 'c', destination: logs.stream, sampling: { ratio, random: () => 0 } }), logController: new LogController({ disableRequestLogging: true }) });
    await app.register(fastifyTelemetry, { telemetry });
    app.get('/y', (req) => {
      req.log.warn('always kept'); // warn: names the trace of every request
      return 'ok';
    });
    after(() => app.close());
    for (let i = 0; i < 40; i++) await app.inject({ url: '/y' });
    const low = '0af7651916cd43dd8448eb2100000001';
    const high = '0af7651916cd43dd8448eb21ffffff00';
    for (const id of [low, high]) await app.inject({ url: '/y', headers: { traceparent: `00-${id}-b7ad6b7169203331-00` } });
    const lines = logs.lines();
    const traces = lines.filter((l) => l.msg === 'always kept').map((l) => l.trace_id as string);
    const access = new Set(lines.filter((l) => l.msg === 'request completed').map((l) => l.trace_id as string));
    assert.equal(traces.length, 42);
    const expected = traces.filter((id) => traceFraction(id) < ratio);
    assert.ok(expected.length > 0 && expected.length < 42, 'some kept, some dropped');
    assert.deepEqual([...access].sort(), expected.sort());
    assert.ok(access.has(low) && !access.has(high));
  });
});

describe('server span ids and sampling', () => {
  it('the ratio decision on new trace ids is the SDK sampler\'s, and the ids are valid', () => {
    for (const ratio of [0.1, 0.5, 0.9]) {
      const t = setupTelemetry({ serviceName: `r-${ratio}`, sampler: { ratio }, exporter: 'none', register: false, messaging: false, httpClient: false, resilience: false });
      const start = (t as unknown as Record<symbol, StartServerSpan>)[kStartServerSpan]!;
      const sdk = new TraceIdRatioBasedSampler(ratio);
      let sampled = 0;
      for (let i = 0; i < 2_000; i++) {
        const span = start('GET /z', {}, ROOT_CONTEXT, performance.now());
        const { traceId, spanId, traceFlags } = span.spanContext();
        assert.match(traceId, HEX32);
        assert.match(spanId, /^[0-9a-f]{16}$/);
        assert.notEqual(spanId, '0000000000000000');
        const expected = sdk.shouldSample(ROOT_CONTEXT, traceId).decision === SamplingDecision.RECORD_AND_SAMPLED;
        assert.equal((traceFlags & 1) === 1, expected, `${traceId} at ${ratio}`);
        if (expected) sampled++;
        span.end();
      }
      assert.ok(Math.abs(sampled / 2_000 - ratio) < 0.06, `${sampled} of 2000 at ${ratio}`);
      void t.shutdown();
    }
  });

  it('the request context made by withSpan behaves as trace.setSpan: the span, the parent\'s values, setValue and deleteValue', () => {
    const key = createContextKey('k');
    const other = createContextKey('o');
    const parent = ROOT_CONTEXT.setValue(key, 'parent');
    const span = trace.wrapSpanContext({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 0 });
    const ctx = withSpan(parent, span);
    assert.equal(trace.getSpan(ctx), span);
    assert.equal(ctx.getValue(key), 'parent');
    const more = ctx.setValue(other, 1);
    assert.equal(trace.getSpan(more), span);
    assert.deepEqual([more.getValue(key), more.getValue(other), ctx.getValue(other)], ['parent', 1, undefined]);
    assert.equal(trace.getSpan(trace.deleteSpan(ctx)), undefined);
    assert.equal(trace.getSpan(ctx), span, 'unchanged');
    assert.equal(context.with(ctx, () => trace.getActiveSpan()), span);
  });
});

describe('RED series, read by prom-client at scrape time', () => {
  it('expose the same text as prom-client\'s own counter and histogram fed the same requests, exemplars included', async () => {
    const requests: [number, number, string | undefined][] = [
      [200, 0.0005, undefined],
      [204, 0.003, '0af7651916cd43dd8448eb211c80319c'],
      [201, 0.003, undefined],
      [200, 20, undefined],
      [503, 0.2, 'b7ad6b7169203331b7ad6b7169203331'],
      [404, 0.01, undefined],
    ];
    const metrics = new Metrics({ defaultLabels: { service: 'shop' } });
    const red = new HttpServerMetrics(metrics);
    // The reference: the families as prom-client records them itself, one observation at a time.
    const reference = new Metrics({ defaultLabels: { service: 'shop' } });
    const names = ['method', 'route', 'status_class'];
    const counter = reference.counter('bulwark_http_server_requests_total', 'HTTP requests served, by method, route and status class.', names);
    const histogram = reference.histogram('bulwark_http_server_request_duration_seconds', 'Time to serve an HTTP request, by method, route and status class.', names, { exemplars: true });
    for (const [status, seconds, traceId] of requests) {
      if (status === 201) red.series('GET', '/a', status).observe(seconds, traceId);
      else red.observe('GET', '/a', status, seconds, traceId);
      const labels = { method: 'GET', route: '/a', status_class: `${Math.floor(status / 100)}xx` };
      counter.inc(labels);
      (histogram as unknown as { observe(o: object): void }).observe({ labels, value: seconds, exemplarLabels: traceId === undefined ? {} : { trace_id: traceId } });
    }
    red.observe('GET', '/a', 200, Number.NaN); // not a duration: not recorded
    const text = (await metrics.scrape('text/plain')).body;
    assert.equal(text, (await reference.scrape('text/plain')).body);
    assert.match(text, /bulwark_http_server_request_duration_seconds_bucket\{le="0.005",service="shop",method="GET",route="\/a",status_class="2xx"\} 3\n/);
    assert.match(text, /bulwark_http_server_request_duration_seconds_sum\{service="shop",method="GET",route="\/a",status_class="2xx"\} 20.0065\n/);
    assert.match(text, /bulwark_http_server_requests_total\{method="GET",route="\/a",status_class="2xx",service="shop"\} 4\n/);
    const withoutTimes = (body: string) => body.replace(/ (\d+(\.\d+)?)$/gm, (m, _t, _f, offset: number, all: string) => (all.lastIndexOf(' # {', offset) > all.lastIndexOf('\n', offset) ? ' <time>' : m));
    const open = (await metrics.scrape(OPENMETRICS)).body;
    assert.equal(withoutTimes(open), withoutTimes((await reference.scrape(OPENMETRICS)).body));
    const exemplars = open.split('\n').filter((l) => l.includes(' # {'));
    assert.equal(exemplars.length, 2, open);
    assert.match(exemplars[0]!, /^bulwark_http_server_request_duration_seconds_bucket\{le="0.005",service="shop",method="GET",route="\/a",status_class="2xx"\} 3 # \{trace_id="0af7651916cd43dd8448eb211c80319c"\} 0.003 \d+(\.\d+)?$/);
    // A second scrape reads the same numbers (the series are copied in, not moved).
    assert.equal((await metrics.scrape('text/plain')).body, text);
    assert.equal(await metrics.value('bulwark_http_server_requests_total', { status_class: '5xx' }), 1);
    assert.equal(await metrics.value('bulwark_http_server_request_duration_seconds', { route: '/a' }), 6);
  });

  it('two recorders on one registry share the families; past maxSeries new routes fold into "other"', async () => {
    const metrics = new Metrics();
    const a = new HttpServerMetrics(metrics, 2);
    const b = new HttpServerMetrics(metrics, 2);
    a.observe('GET', '/1', 200, 0.01);
    b.observe('GET', '/1', 200, 0.01);
    a.observe('GET', '/2', 200, 0.01);
    b.observe('GET', '/3', 200, 0.01);
    a.observe('GET', '/4', 200, 0.01);
    assert.equal(await metrics.value('bulwark_http_server_requests_total', { route: '/1' }), 2);
    assert.equal(await metrics.value('bulwark_http_server_requests_total', { route: '/3' }), undefined);
    assert.equal(await metrics.value('bulwark_http_server_requests_total', { route: 'other' }), 2);
    assert.equal(await metrics.value('bulwark_http_server_request_duration_seconds', {}), 5);
  });

  it('through the plugin: the counter and the histogram count every request of a route, cached per route and status class', async () => {
    const metrics = new Metrics();
    const app = Fastify();
    await app.register(fastifyTelemetry, { telemetry, metrics, accessLog: false, ignoreRoutes: ['/metrics'] });
    await app.register(metricsRoute, { metrics });
    app.get('/items/:id', (req, reply) => ((req.params as { id: string }).id === 'gone' ? reply.code(404).send() : { ok: true }));
    after(() => app.close());
    for (const id of ['1', '2', 'gone', '3', 'gone']) await app.inject({ url: `/items/${id}` });
    await app.inject({ url: '/nowhere' });
    await app.inject({ url: '/nowhere/else' });
    await app.inject({ url: '/metrics' });
    assert.equal(await metrics.value('bulwark_http_server_requests_total', { route: '/items/:id', status_class: '2xx' }), 3);
    assert.equal(await metrics.value('bulwark_http_server_requests_total', { route: '/items/:id', status_class: '4xx' }), 2);
    assert.equal(await metrics.value('bulwark_http_server_request_duration_seconds', { route: '/items/:id' }), 5);
    assert.equal(await metrics.value('bulwark_http_server_requests_total', { route: 'unmatched' }), 2);
    assert.equal(await metrics.value('bulwark_http_server_requests_total', { route: '/metrics' }), undefined);
  });
});

describe('LineBuffer', () => {
  it('writes a full chunk at once, and the lines of a quiet service within maxDelayMs', async () => {
    const writes: string[] = [];
    const stream = { write: (s: string) => void writes.push(s), flush: () => undefined, flushSync: () => undefined, end: () => undefined, on: () => stream };
    const buffer = new LineBuffer(stream, 10, 20);
    buffer.write('abc\n');
    assert.deepEqual(writes, []);
    buffer.write('defghij\n');
    assert.deepEqual(writes, ['abc\ndefghij\n']);
    buffer.write('quiet\n');
    await sleep(60);
    assert.deepEqual(writes, ['abc\ndefghij\n', 'quiet\n']);
    buffer.write('last\n');
    buffer.end();
    assert.deepEqual(writes, ['abc\ndefghij\n', 'quiet\n', 'last\n']);
  });
});
