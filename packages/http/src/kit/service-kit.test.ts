import { strict as assert } from 'node:assert';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, it } from 'node:test';
import fastify, { type FastifyInstance } from 'fastify';
import { CircuitOpenError } from '@bulwark/resilience';
import { currentRequestContext, HTTP_REQUEST_CHANNEL, kitServerOptions, problem, serviceKit, type HttpRequestEvent, type ServiceKitOptions } from '../index.js';

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

async function service(options: ServiceKitOptions = {}, bodyLimit = 1024): Promise<FastifyInstance> {
  const app = fastify(kitServerOptions({ bodyLimit }));
  await app.register(serviceKit, { shutdown: { signals: [] }, ...options });
  const written: unknown[] = [];
  app.decorate('written', written);
  app.post(
    '/orders/:shop',
    {
      schema: {
        params: { type: 'object', properties: { shop: { type: 'string', pattern: '^[a-z]+$' } } },
        body: { type: 'object', required: ['sku', 'qty'], additionalProperties: false, properties: { sku: { type: 'string' }, qty: { type: 'integer', minimum: 1 } } },
        response: { 201: { type: 'object', properties: { id: { type: 'string' }, context: { type: 'object', additionalProperties: true } } } },
      },
    },
    async (request, reply) => {
      written.push(request.body);
      await new Promise((resolve) => setImmediate(resolve));
      return reply.code(201).send({ id: 'o-1', context: currentRequestContext() });
    },
  );
  app.get('/context', async () => {
    await new Promise((resolve) => setTimeout(resolve, 1));
    return currentRequestContext() ?? null;
  });
  app.get('/boom', async () => {
    throw new Error('connect ECONNREFUSED postgres://admin:hunter2@db:5432');
  });
  app.get('/custom', async () => {
    throw problem({ type: 'https://shop.example/problems/out-of-stock', status: 409, title: 'Out of stock', detail: 'sku A is gone', extensions: { sku: 'A' }, headers: { 'retry-after': '30' } });
  });
  app.get('/duck', async () => {
    throw Object.assign(new Error('x'), { toProblem: () => ({ type: 'https://auth.example/problems/expired', title: 'Token expired', status: 401 }), headers: { 'www-authenticate': 'Bearer error="invalid_token"' } });
  });
  app.get('/breaker', async () => {
    throw new CircuitOpenError('payments', false, 2_500);
  });
  return app;
}

function json(body: string): Record<string, unknown> {
  return JSON.parse(body) as Record<string, unknown>;
}

describe('service kit: problem+json for every error', () => {
  it('validation: 400 listing each invalid parameter, nothing written', async () => {
    const app = await service();
    const res = await app.inject({ method: 'POST', url: '/orders/acme', payload: { sku: 'A', qty: 0 } });
    assert.equal(res.statusCode, 400);
    assert.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8');
    const body = json(res.body);
    assert.equal(body.type, 'https://bulwark.dev/problems/validation');
    assert.deepEqual(body['invalid-params'], [{ in: 'body', name: 'qty', reason: 'must be >= 1' }]);
    const missing = json((await app.inject({ method: 'POST', url: '/orders/acme', payload: { qty: 1 } })).body);
    assert.deepEqual(missing['invalid-params'], [{ in: 'body', name: 'sku', reason: "must have required property 'sku'" }]);
    const params = json((await app.inject({ method: 'POST', url: '/orders/ACME', payload: { sku: 'A', qty: 1 } })).body);
    assert.deepEqual((params['invalid-params'] as { in: string; name: string }[]).map((p) => [p.in, p.name]), [['params', 'shop']]);
    assert.deepEqual((app as unknown as { written: unknown[] }).written, []);
    await app.close();
  });

  it('malformed JSON, empty JSON, wrong content type and an oversize body: 400, 400, 415, 413; nothing written; still healthy', async () => {
    const app = await service({}, 64);
    const cases: [Record<string, unknown>, number, string][] = [
      [{ payload: '{"sku": "A", "qty": ', headers: { 'content-type': 'application/json' } }, 400, 'malformed-json'],
      [{ payload: '', headers: { 'content-type': 'application/json' } }, 400, 'malformed-json'],
      [{ payload: '{"__proto__": {"admin": true}, "sku": "A", "qty": 1}', headers: { 'content-type': 'application/json' } }, 400, 'malformed-json'],
      [{ payload: '<order/>', headers: { 'content-type': 'application/xml' } }, 415, 'unsupported-media-type'],
      [{ payload: { sku: 'A'.repeat(200), qty: 1 } }, 413, 'payload-too-large'],
    ];
    for (const [request, status, slug] of cases) {
      const res = await app.inject({ method: 'POST', url: '/orders/acme', ...request });
      assert.equal(res.statusCode, status, slug);
      assert.equal(json(res.body).type, `https://bulwark.dev/problems/${slug}`);
      assert.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8');
    }
    assert.deepEqual((app as unknown as { written: unknown[] }).written, []);
    assert.equal((await app.inject('/health/live')).statusCode, 200);
    await app.close();
  });

  it('404 for an unknown route, 500 that discloses nothing, and the request id in every problem', async () => {
    const app = await service();
    const missing = await app.inject('/nowhere');
    assert.equal(missing.statusCode, 404);
    assert.equal(json(missing.body).type, 'https://bulwark.dev/problems/not-found');
    const boom = await app.inject({ url: '/boom', headers: { 'x-request-id': 'req-42' } });
    assert.equal(boom.statusCode, 500);
    assert.deepEqual(json(boom.body), { type: 'https://bulwark.dev/problems/internal', title: 'Internal server error', status: 500, requestId: 'req-42' });
    assert.doesNotMatch(boom.body, /hunter2|ECONNREFUSED|Error|at /);
    await app.close();
  });

  it('renders ProblemError and any error with toProblem() as its own problem, status and headers', async () => {
    const app = await service();
    const custom = await app.inject('/custom');
    assert.equal(custom.statusCode, 409);
    assert.equal(custom.headers['retry-after'], '30');
    assert.deepEqual({ ...json(custom.body), requestId: undefined }, { type: 'https://shop.example/problems/out-of-stock', title: 'Out of stock', status: 409, detail: 'sku A is gone', sku: 'A', requestId: undefined });
    const duck = await app.inject('/duck');
    assert.equal(duck.statusCode, 401);
    assert.equal(duck.headers['www-authenticate'], 'Bearer error="invalid_token"');
    assert.equal(json(duck.body).type, 'https://auth.example/problems/expired');
    const breaker = await app.inject('/breaker');
    assert.equal(breaker.statusCode, 503);
    assert.equal(breaker.headers['retry-after'], '3');
    assert.equal(json(breaker.body).type, 'https://bulwark.dev/problems/dependency-unavailable');
    await app.close();
  });
});

describe('service kit: request id and trace context', () => {
  it('keeps a well-formed x-request-id, replaces a malformed one, generates unique ids, and echoes the id', async () => {
    const app = await service();
    const kept = await app.inject({ url: '/health/live', headers: { 'x-request-id': 'abc-123_X:y' } });
    assert.equal(kept.headers['x-request-id'], 'abc-123_X:y');
    const replaced = await app.inject({ url: '/health/live', headers: { 'x-request-id': 'has space <script>' } });
    assert.equal(replaced.statusCode, 200);
    assert.notEqual(replaced.headers['x-request-id'], 'has space <script>');
    assert.match(String(replaced.headers['x-request-id']), /^[A-Za-z0-9_-]+-[0-9a-z]+$/);
    const long = await app.inject({ url: '/health/live', headers: { 'x-request-id': 'a'.repeat(129) } });
    assert.notEqual(long.headers['x-request-id'], 'a'.repeat(129));
    const ids = new Set<string>();
    for (let i = 0; i < 50; i++) ids.add(String((await app.inject('/health/live')).headers['x-request-id']));
    assert.equal(ids.size, 50);
    await app.close();
  });

  it('refuses header-injection attempts with 400 invalid-header and never echoes them', async () => {
    const app = await service();
    const attempts: [string, string][] = [
      ['x-request-id', 'abc\r\nset-cookie: admin=1'],
      ['x-request-id', 'abc\u0000def'],
      ['x-request-id', 'caf\u00e9'],
      ['traceparent', `${TRACEPARENT}\nx-evil: 1`],
      ['tracestate', 'a=1\r\nx-evil: 1'],
    ];
    for (const [header, value] of attempts) {
      const headers: Record<string, string> = { [header]: value };
      if (header === 'tracestate') headers.traceparent = TRACEPARENT;
      const res = await app.inject({ method: 'POST', url: '/orders/acme', payload: { sku: 'A', qty: 1 }, headers });
      assert.equal(res.statusCode, 400, `${header}: ${JSON.stringify(value)}`);
      const body = json(res.body);
      assert.equal(body.type, 'https://bulwark.dev/problems/invalid-header');
      assert.equal(body.header, header);
      assert.doesNotMatch(String(res.headers['x-request-id']), /evil|admin|\r|\n/);
      assert.equal(res.headers['set-cookie'], undefined);
    }
    assert.deepEqual((app as unknown as { written: unknown[] }).written, []);
    assert.equal((await app.inject('/health/live')).statusCode, 200);
    await app.close();
  });

  it('puts the request id and a valid traceparent/tracestate in the request context, across awaits and body parsing', async () => {
    // 'always': the ambient context is otherwise entered on demand (request-context.test.ts).
    const app = await service({ requestContext: 'always' });
    const get = json((await app.inject({ url: '/context', headers: { 'x-request-id': 'ctx-1', traceparent: TRACEPARENT, tracestate: 'congo=t61rcWkgMzE, rojo=00f067aa0ba902b7' } })).body);
    assert.deepEqual(get, { requestId: 'ctx-1', traceparent: TRACEPARENT, tracestate: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7' });
    const post = json((await app.inject({ method: 'POST', url: '/orders/acme', payload: { sku: 'A', qty: 1 }, headers: { 'x-request-id': 'ctx-2', traceparent: TRACEPARENT } })).body);
    assert.deepEqual(post, { id: 'o-1', context: { requestId: 'ctx-2', traceparent: TRACEPARENT } }, 'the context survives the body being read on socket events');
    const invalid = json((await app.inject({ url: '/context', headers: { 'x-request-id': 'ctx-3', traceparent: '00-00000000000000000000000000000000-b7ad6b7169203331-01', tracestate: 'a=1' } })).body);
    assert.deepEqual(invalid, { requestId: 'ctx-3' }, 'an all-zero trace id is invalid: trace context dropped, tracestate with it');
    const badState = json((await app.inject({ url: '/context', headers: { 'x-request-id': 'ctx-4', traceparent: TRACEPARENT, tracestate: 'UPPER=1' } })).body);
    assert.deepEqual(badState, { requestId: 'ctx-4', traceparent: TRACEPARENT });
    const isolated = await Promise.all(Array.from({ length: 20 }, (_, i) => app.inject({ url: '/context', headers: { 'x-request-id': `iso-${i}` } })));
    assert.deepEqual(isolated.map((r) => json(r.body).requestId), Array.from({ length: 20 }, (_, i) => `iso-${i}`));
    await app.close();
  });
});

describe('service kit: metrics hook, /metrics, OpenAPI, health', () => {
  it('publishes each finished request with its route pattern on bulwark:http:request', async () => {
    const app = await service();
    const events: HttpRequestEvent[] = [];
    const listener = (message: unknown): void => void events.push(message as HttpRequestEvent);
    subscribe(HTTP_REQUEST_CHANNEL, listener);
    try {
      await app.inject({ method: 'POST', url: '/orders/acme', payload: { sku: 'A', qty: 1 }, headers: { 'x-request-id': 'm-1' } });
      await app.inject({ url: '/nowhere', headers: { 'x-request-id': 'm-2' } });
    } finally {
      unsubscribe(HTTP_REQUEST_CHANNEL, listener);
    }
    assert.deepEqual(
      events.map((e) => ({ ...e, durationMs: typeof e.durationMs })),
      [
        { method: 'POST', route: '/orders/:shop', status: 201, durationMs: 'number', requestId: 'm-1' },
        { method: 'GET', route: '*', status: 404, durationMs: 'number', requestId: 'm-2' },
      ],
    );
    assert.ok(events.every((e) => e.durationMs >= 0));
    await app.close();
  });

  it('serves /metrics from the renderer given, and OpenAPI generated from the route schemas', async () => {
    const app = await service({ metrics: { contentType: 'text/plain; version=0.0.4', render: async () => 'http_requests_total 7\n' }, openapi: { info: { title: 'orders', version: '1.2.3' } } });
    const metrics = await app.inject('/metrics');
    assert.equal(metrics.statusCode, 200);
    assert.equal(metrics.headers['content-type'], 'text/plain; version=0.0.4');
    assert.equal(metrics.body, 'http_requests_total 7\n');
    const doc = json((await app.inject('/openapi.json')).body) as { info: { title: string }; paths: Record<string, { post?: { requestBody?: { content: Record<string, { schema: { required: string[] } }> } } }> };
    assert.equal(doc.info.title, 'orders');
    assert.deepEqual(doc.paths['/orders/{shop}']?.post?.requestBody?.content['application/json']?.schema.required, ['sku', 'qty']);
    assert.equal(doc.paths['/health/ready'], undefined, 'kit routes are hidden');
    await app.close();
  });

  it('readiness runs every check in parallel, each within its timeout, and names what failed', async () => {
    const app = await service({ readiness: { defaultTimeoutMs: 200 } });
    const started: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    app.readiness.add('postgres', async () => {
      started.push('postgres');
      await gate;
    });
    app.readiness.add('redis', async () => {
      started.push('redis');
      release();
    });
    const ok = await app.inject('/health/ready');
    assert.equal(ok.statusCode, 200, 'postgres waited on redis: they ran together');
    assert.deepEqual(json(ok.body), { status: 'ready', checks: { postgres: { status: 'up' }, redis: { status: 'up' } } });
    app.readiness.add('broker', () => new Promise(() => undefined), { timeoutMs: 20 });
    app.readiness.add('search', () => {
      throw Object.assign(new Error('password=hunter2'), { code: 'ECONNREFUSED' });
    });
    const down = await app.inject('/health/ready');
    assert.equal(down.statusCode, 503);
    const body = json(down.body);
    assert.equal(body.type, 'https://bulwark.dev/problems/not-ready');
    assert.deepEqual(body.checks, { postgres: { status: 'up' }, redis: { status: 'up' }, broker: { status: 'down', reason: 'timed out after 20 ms' }, search: { status: 'down', reason: 'failed (ECONNREFUSED)' } });
    assert.doesNotMatch(down.body, /hunter2/);
    assert.throws(() => app.readiness.add('broker', () => undefined), /already registered/);
    await app.close();
  });
});
