import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import Fastify from 'fastify';
import { ROOT_CONTEXT, context, trace, type SpanContext } from '@opentelemetry/api';
import { InvalidLogLevelError, InvalidTelemetryOptionError, UnknownLogModuleError, isInvalidLogLevelError } from '../errors.js';
import { logLevelsRoute } from '../http/log-levels-route.js';
import { captureLogs } from '../testing/index.js';
import { setupTelemetry } from '../tracing/setup.js';
import { createLogger } from './logger.js';
import { traceFraction } from './trace-fields.js';

const telemetry = setupTelemetry({ serviceName: 'log-test', exporter: 'none', messaging: false, httpClient: false, resilience: false });
after(() => telemetry.shutdown());

/** Runs `fn` inside a non-recording span with the given ids and flags (no SDK needed). */
function inSpan<T>(traceId: string, sampled: boolean, fn: () => T): T {
  const ctx: SpanContext = { traceId, spanId: '00f067aa0ba902b7', traceFlags: sampled ? 1 : 0 };
  return context.with(trace.setSpanContext(ROOT_CONTEXT, ctx), fn);
}

describe('createLogger', () => {
  it('puts trace_id and span_id of the active span, service and version on every line; none outside a span', () => {
    const logs = captureLogs();
    const logger = createLogger({ service: 'orders', version: '1.2.3', destination: logs.stream });
    const span = telemetry.tracer.startSpan('op');
    context.with(trace.setSpan(ROOT_CONTEXT, span), () => logger.info({ orderId: 'o1' }, 'inside'));
    span.end();
    logger.info('outside');
    const [inside, outside] = logs.lines();
    assert.equal(inside!.trace_id, span.spanContext().traceId);
    assert.equal(inside!.span_id, span.spanContext().spanId);
    assert.equal(inside!.orderId, 'o1');
    assert.deepEqual([inside!.service, inside!.version, inside!.level], ['orders', '1.2.3', 'info']);
    assert.equal(outside!.msg, 'outside');
    assert.equal('trace_id' in outside!, false);
  });

  it('redacts secrets by key at any of the first three levels, and configured PII paths, without touching the caller\'s object', () => {
    const logs = captureLogs();
    const logger = createLogger({ service: 's', destination: logs.stream, redact: ['customer.email'] });
    const input = {
      password: 'hunter2',
      req: { headers: { Authorization: 'Bearer abc', cookie: 'sid=1', accept: 'json' } },
      payment: { apiKey: 'k', amount: 5 },
      customer: { email: 'a@b.c', name: 'Ann' },
    };
    logger.info(input, 'login');
    const line = logs.lines()[0]!;
    assert.equal(line.password, '[redacted]');
    assert.deepEqual(line.req, { headers: { Authorization: '[redacted]', cookie: '[redacted]', accept: 'json' } });
    assert.deepEqual(line.payment, { apiKey: '[redacted]', amount: 5 });
    assert.deepEqual(line.customer, { email: '[redacted]', name: 'Ann' });
    assert.equal(input.password, 'hunter2');
    assert.equal(input.req.headers.Authorization, 'Bearer abc');
  });

  it('sampling keeps every warn+ line, every line of a sampled trace, and decides unsampled traces by trace id', () => {
    const logs = captureLogs();
    const logger = createLogger({ service: 's', destination: logs.stream, sampling: { ratio: 0.5, random: () => 0.9 } });
    const low = '0af7651916cd43dd8448eb2100000001'; // fraction ~0: kept at ratio 0.5
    const high = '0af7651916cd43dd8448eb21ffffff00'; // fraction ~1: dropped
    assert.ok(traceFraction(low) < 0.5 && traceFraction(high) > 0.5);
    logger.info('no trace, random 0.9: dropped');
    logger.warn('warn: kept');
    inSpan(high, true, () => logger.debug('never: debug is below the level'));
    inSpan(high, true, () => logger.info('sampled trace: kept'));
    inSpan(high, false, () => logger.info('unsampled, high: dropped'));
    inSpan(high, false, () => logger.error('error: kept'));
    inSpan(low, false, () => logger.info('unsampled, low: kept'));
    assert.deepEqual(
      logs.lines().map((l) => l.msg),
      ['warn: kept', 'sampled trace: kept', 'error: kept', 'unsampled, low: kept'],
    );
    assert.throws(() => createLogger({ service: 's', sampling: { ratio: 2 } }), (e: unknown) => e instanceof InvalidTelemetryOptionError && e.option === 'sampling.ratio');
  });

  it('never throws into the caller: a failing destination or a throwing getter loses the line and counts it', () => {
    const broken = new Writable({ write: () => { throw new Error('disk full'); } });
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    const logger = createLogger({ service: 's', destination: broken });
    assert.doesNotThrow(() => logger.info('x'));
    const logs = captureLogs();
    const other = createLogger({ service: 's', destination: logs.stream });
    const evil = { get boom(): string { throw new Error('getter'); } };
    assert.doesNotThrow(() => other.info(evil, 'evil'));
    other.info('after');
    assert.equal(logger.modules.failures, 1);
    assert.deepEqual(logs.lines().map((l) => l.msg).at(-1), 'after');
    process.off('warning', onWarning);
    assert.throws(() => createLogger({ service: '' }), InvalidTelemetryOptionError);
    assert.throws(() => createLogger({ service: 's', level: 'loud' as 'info' }), InvalidTelemetryOptionError);
  });

  it('module loggers change level at runtime; modules without a level of their own follow the root', () => {
    const logs = captureLogs();
    const logger = createLogger({ service: 's', destination: logs.stream });
    const payments = logger.modules.get('payments');
    const orders = logger.modules.get('orders');
    assert.equal(logger.modules.get('payments'), payments, 'one child per module');
    payments.debug('hidden');
    logger.modules.setLevel('payments', 'debug');
    payments.debug('shown');
    orders.debug('hidden too');
    logger.modules.setLevel('root', 'warn');
    orders.info('hidden: orders follows root');
    payments.info('shown: payments has its own level');
    logger.modules.setLevel('payments', null);
    payments.info('hidden: back to root');
    assert.deepEqual(logs.lines().map((l) => [l.module, l.msg]), [['payments', 'shown'], ['payments', 'shown: payments has its own level']]);
    assert.deepEqual(logger.modules.snapshot(), { root: 'warn', modules: { payments: { level: 'warn', own: false }, orders: { level: 'warn', own: false } } });
    assert.throws(() => logger.modules.setLevel('orders', 'verbose'), (e: unknown) => e instanceof InvalidLogLevelError && isInvalidLogLevelError(e));
    assert.throws(() => logger.modules.setLevel('nope', 'info'), UnknownLogModuleError);
  });
});

describe('logLevelsRoute', () => {
  it('GET lists, PUT changes, bad input answers 400/404 problem+json and changes nothing', async () => {
    const logger = createLogger({ service: 's', destination: captureLogs().stream });
    logger.modules.get('payments');
    const app = Fastify();
    await app.register(logLevelsRoute, { levels: logger.modules });
    after(() => app.close());
    const listed = await app.inject({ method: 'GET', url: '/admin/log-levels' });
    assert.deepEqual(listed.json(), { root: 'info', modules: { payments: { level: 'info', own: false } } });
    const changed = await app.inject({ method: 'PUT', url: '/admin/log-levels', payload: { levels: { payments: 'debug', root: 'warn' } } });
    assert.equal(changed.statusCode, 200);
    assert.deepEqual(changed.json(), { root: 'warn', modules: { payments: { level: 'debug', own: true } } });
    const bad = await app.inject({ method: 'PUT', url: '/admin/log-levels', payload: { levels: { root: 'info', payments: 'loud' } } });
    assert.equal(bad.statusCode, 400);
    assert.match(String(bad.headers['content-type']), /^application\/problem\+json/);
    assert.equal(bad.json<{ code: string }>().code, 'BULWARK_TELEMETRY_INVALID_LOG_LEVEL');
    const unknown = await app.inject({ method: 'PUT', url: '/admin/log-levels', payload: { levels: { shipping: 'info' } } });
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknown.json<{ code: string }>().code, 'BULWARK_TELEMETRY_UNKNOWN_LOG_MODULE');
    assert.equal(logger.level, 'warn', 'the rejected request changed nothing');
  });
});
