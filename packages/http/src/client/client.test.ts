/**
 * The client against real HTTP servers on loopback. Waits that matter
 * (backoff, Retry-After) run on virtual time; nothing asserts wall-clock time.
 */
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Dispatcher } from 'undici';
import { CircuitOpenError, DEADLINE_HEADER, TimeoutError, deadline } from '@bulwark/resilience';
import { VirtualClock, track } from '@bulwark/resilience/testing';
import { runWithRequestContext } from '../request-context.js';
import { CLIENT_OPEN_DURATION, createClient, type HttpClient } from './client.js';
import { ClientOptionError, HttpNetworkError, HttpStatusError, InvalidResponseError, ResponseTooLargeError, isHttpClientError } from './errors.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

class TestServer {
  seen: Seen[] = [];
  handler: Handler = (_req, res) => json(res, 200, { ok: true });
  readonly server: Server;
  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
        this.handler(req, res, this.seen.length);
      });
    });
  }
  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

/** A port with nothing listening on it. */
async function deadPort(): Promise<string> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

const fastRetry = { maxAttempts: 3, backoff: { baseMs: 1, capMs: 2, jitter: 'none' as const } };

describe('HttpClient', () => {
  const server = new TestServer();
  let baseUrl: string;
  const clients: HttpClient[] = [];
  const client = (options: Partial<Parameters<typeof createClient>[0]> = {}) => {
    const c = createClient({ baseUrl, name: 'orders', retry: fastRetry, ...options });
    clients.push(c);
    return c;
  };

  before(async () => {
    baseUrl = await server.start();
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server.close();
  });
  beforeEach(() => {
    server.seen = [];
    server.handler = (_req, res) => json(res, 200, { ok: true });
  });

  it('GET/POST JSON helpers return parsed bodies; query strings and base paths compose', async () => {
    server.handler = (req, res) => json(res, 200, { url: req.url, method: req.method });
    const c = createClient({ baseUrl: `${baseUrl}/v1/`, name: 'orders' });
    clients.push(c);
    assert.deepEqual(await c.get('/orders', { query: { page: 2, q: 'a b', skip: undefined } }), { url: '/v1/orders?page=2&q=a+b', method: 'GET' });
    assert.deepEqual(await c.post('/orders', { sku: 'x' }), { url: '/v1/orders', method: 'POST' });
    assert.equal(server.seen[1]!.body, '{"sku":"x"}');
    assert.equal(server.seen[1]!.headers['content-type'], 'application/json');
    server.handler = (_req, res) => res.writeHead(204).end();
    assert.equal(await c.delete('/orders/1'), undefined);
  });

  it('retries a 503 and succeeds, with the same Idempotency-Key on every attempt; a new call gets a new key', async () => {
    server.handler = (_req, res, n) => (n < 3 ? json(res, 503, { error: 'busy' }) : json(res, 201, { id: 'o1' }));
    const c = client();
    assert.deepEqual(await c.post('/orders', { sku: 'x' }), { id: 'o1' });
    assert.equal(server.seen.length, 3);
    const keys = server.seen.map((s) => s.headers['idempotency-key']);
    assert.match(String(keys[0]), /^[0-9a-f-]{36}$/);
    assert.deepEqual(keys, [keys[0], keys[0], keys[0]]);
    server.seen = [];
    server.handler = (_req, res) => json(res, 200, {});
    await c.post('/orders', {});
    assert.notEqual(server.seen[0]!.headers['idempotency-key'], keys[0]);
    // The caller's own key is used as given, on PUT/PATCH/DELETE too; GET carries none.
    await c.put('/orders/1', {}, { idempotencyKey: 'order-1-v2' });
    await c.patch('/orders/1', {});
    await c.delete('/orders/1');
    await c.get('/orders/1');
    assert.equal(server.seen[1]!.headers['idempotency-key'], 'order-1-v2');
    assert.ok(server.seen[2]!.headers['idempotency-key'] !== undefined && server.seen[3]!.headers['idempotency-key'] !== undefined);
    assert.equal(server.seen[4]!.headers['idempotency-key'], undefined);
  });

  it('an unsafe call without an Idempotency-Key is never retried; retry: false and retry: "none" never retry', async () => {
    server.handler = (_req, res) => json(res, 503, {});
    const c = client();
    await assert.rejects(c.post('/orders', {}, { idempotencyKey: false }), (e: unknown) => e instanceof HttpStatusError && e.status === 503);
    assert.equal(server.seen.length, 1);
    assert.equal(server.seen[0]!.headers['idempotency-key'], undefined);
    server.seen = [];
    await assert.rejects(c.get('/orders', { retry: false }), HttpStatusError);
    assert.equal(server.seen.length, 1, 'per-call retry: false');
    server.seen = [];
    await assert.rejects(client({ retry: 'none' }).post('/orders', {}), HttpStatusError);
    assert.equal(server.seen.length, 1, 'an inner hop with retry: "none"');
    assert.ok(server.seen[0]!.headers['idempotency-key'] !== undefined, 'still carries a key for the callee to deduplicate');
    server.seen = [];
    await assert.rejects(c.get('/orders'), HttpStatusError);
    assert.equal(server.seen.length, 3, 'a safe GET is retried');
  });

  it('4xx other than 429 is not retried; problem+json is surfaced on the typed error', async () => {
    const problem = { type: 'https://bulwark.dev/problems/out-of-stock', title: 'Out of stock', status: 409, detail: 'sku x has 0 left', sku: 'x' };
    server.handler = (_req, res) => res.writeHead(409, { 'content-type': 'application/problem+json' }).end(JSON.stringify(problem));
    const error = await client().post('/orders', {}).then(
      () => assert.fail('must throw'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof HttpStatusError);
    assert.ok(isHttpClientError(error));
    assert.equal(error.code, 'BULWARK_HTTP_STATUS');
    assert.equal(error.status, 409);
    assert.equal(error.retryable, false);
    assert.equal(error.dependencyFailure, false);
    assert.deepEqual(error.problem, problem);
    assert.equal(server.seen.length, 1);
    // A plain JSON error body is not mistaken for a problem.
    server.handler = (_req, res) => json(res, 400, { type: 'x' });
    await assert.rejects(client().get('/x'), (e: unknown) => e instanceof HttpStatusError && e.status === 400 && e.problem === undefined);
  });

  it('honours Retry-After on 429 and 503 (virtual time)', async () => {
    for (const status of [429, 503]) {
      server.seen = [];
      server.handler = (_req, res, n) => (n === 1 ? json(res, status, {}, { 'retry-after': '2' }) : json(res, 200, { ok: true }));
      const clock = new VirtualClock();
      const c = client({ clock, retry: { maxAttempts: 2, backoff: { baseMs: 10, jitter: 'none' } } });
      const delays: number[] = [];
      const retried = new Promise<void>((resolve) => c.retryPolicy!.on('retry', (e) => (delays.push(e.delayMs), resolve())));
      const call = track(c.get('/orders'));
      await retried;
      assert.equal(delays[0], 2_000, 'waits as long as Retry-After asks, not the 10 ms backoff');
      await clock.advance(1_999);
      assert.equal(server.seen.length, 1, 'no retry before Retry-After');
      assert.equal(call.settled, false);
      await clock.advance(1);
      await call.done;
      assert.deepEqual(call.value, { ok: true });
      assert.equal(server.seen.length, 2);
    }
  });

  it('sends the remaining budget as bulwark-deadline-ms, shrinking across retries and nested under an ambient deadline', async () => {
    server.handler = (_req, res, n) => (n === 1 ? json(res, 503, {}) : json(res, 200, {}));
    const clock = new VirtualClock();
    const c = client({ clock, timeoutMs: 5_000, retry: { maxAttempts: 2, backoff: { baseMs: 300, jitter: 'none' } } });
    const retried = new Promise<number>((resolve) => c.retryPolicy!.on('retry', (e) => resolve(e.delayMs)));
    const call = track(c.get('/orders', { timeoutMs: 1_000 }));
    await clock.advance(await retried);
    await call.done;
    assert.equal(call.error, undefined);
    assert.deepEqual(server.seen.map((s) => s.headers[DEADLINE_HEADER]), ['1000', '700']);

    // Per-attempt timeout smaller than the budget: the attempt's own limit is what the callee gets.
    server.seen = [];
    server.handler = (_req, res) => json(res, 200, {});
    await c.get('/orders');
    assert.equal(server.seen[0]!.headers[DEADLINE_HEADER], '5000');

    // Inside an enclosing deadline (e.g. the kit's per-request budget), the call inherits it.
    server.seen = [];
    const outer = deadline(800, { clock });
    await outer.execute(() => c.get('/orders'));
    assert.equal(server.seen[0]!.headers[DEADLINE_HEADER], '800');
  });

  it('propagates traceparent, tracestate and x-request-id from the request context, keeping ones already set', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const c = client();
    await runWithRequestContext({ requestId: 'req-42', traceparent, tracestate: 'vendor=abc' }, () => c.get('/orders'));
    assert.equal(server.seen[0]!.headers.traceparent, traceparent);
    assert.equal(server.seen[0]!.headers.tracestate, 'vendor=abc');
    assert.equal(server.seen[0]!.headers['x-request-id'], 'req-42');
    // A traceparent injected upstream of us (a tracer, or the caller) wins, and ours is not paired with it.
    const injected = '00-11111111111111111111111111111111-2222222222222222-01';
    await runWithRequestContext({ requestId: 'req-43', traceparent, tracestate: 'vendor=abc' }, () => c.get('/orders', { headers: { TraceParent: injected, 'X-Request-Id': 'own' } }));
    assert.equal(server.seen[1]!.headers.traceparent, injected);
    assert.equal(server.seen[1]!.headers.tracestate, undefined);
    assert.equal(server.seen[1]!.headers['x-request-id'], 'own');
    // Outside a request, nothing is invented.
    await c.get('/orders');
    assert.equal(server.seen[2]!.headers.traceparent, undefined);
    assert.equal(server.seen[2]!.headers['x-request-id'], undefined);
  });

  it('caps the response body: refused by content-length, or aborted mid-stream without reading the rest', async () => {
    let finished: boolean | undefined;
    let closed!: () => void;
    const serverClosed = new Promise<void>((resolve) => (closed = resolve));
    server.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(16_384, 97);
      let sent = 0;
      res.on('close', () => {
        finished = res.writableFinished;
        closed();
      });
      const pump = (): void => {
        while (sent < 2_048) {
          sent++;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    };
    const c = client({ maxResponseBytes: 65_536 });
    await assert.rejects(c.get('/big'), (e: unknown) => e instanceof ResponseTooLargeError && e.limit === 65_536 && e.retryable === false);
    await serverClosed;
    assert.equal(finished, false, 'the server was cut off before it sent the whole 32 MiB (socket buffers hold a few MiB at most)');
    assert.equal(server.seen.length, 1, 'a too-large response is not retried');

    server.handler = (_req, res) => res.writeHead(200, { 'content-length': '1000000' }).end(Buffer.alloc(1_000_000));
    await assert.rejects(c.get('/big', { maxResponseBytes: 1_000 }), ResponseTooLargeError);
    server.handler = (_req, res) => json(res, 200, { ok: true });
    assert.deepEqual(await c.get('/small'), { ok: true }, 'the client still works afterwards');
  });

  it('connection refused is a retryable network error; retries exhaust, then the breaker opens against the dead dependency', async () => {
    const dead = await deadPort();
    const retrying = createClient({ baseUrl: dead, name: 'dead', retry: fastRetry, breaker: false });
    clients.push(retrying);
    let retries = 0;
    retrying.retryPolicy!.on('retry', () => retries++);
    const error = await retrying.get('/x').then(
      () => assert.fail('must throw'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof HttpNetworkError);
    assert.equal(error.reason, 'ECONNREFUSED');
    assert.equal(error.retryable, true);
    assert.equal(retries, 2, 'three attempts in all');

    const c = createClient({ baseUrl: dead, name: 'dead2', retry: 'none', breaker: { minimumCalls: 3, failureRateThreshold: 50, window: { type: 'count', size: 10 } } });
    clients.push(c);
    for (let i = 0; i < 3; i++) await assert.rejects(c.get('/x'), HttpNetworkError);
    assert.equal(c.breaker!.state, 'open');
    await assert.rejects(c.get('/x'), (e: unknown) => e instanceof CircuitOpenError);
  });

  it("the breaker opens for 2 s by default, doubling with each re-open (a short stall costs seconds, not the breaker's flat 30 s)", async () => {
    const dead = await deadPort();
    const clock = new VirtualClock();
    const c = createClient({ baseUrl: dead, name: 'dead3', retry: 'none', clock, breaker: { minimumCalls: 3, failureRateThreshold: 50, window: { type: 'count', size: 10 } } });
    clients.push(c);
    for (let i = 0; i < 3; i++) await assert.rejects(c.get('/x'), HttpNetworkError);
    assert.equal(c.breaker!.state, 'open');
    await clock.advance(CLIENT_OPEN_DURATION.baseMs - 1);
    assert.equal(c.breaker!.state, 'open', 'still open just before 2 s');
    await clock.advance(1);
    assert.equal(c.breaker!.state, 'half-open', 'probing after 2 s');
    await assert.rejects(c.get('/x'), HttpNetworkError); // the probe fails: open again, for twice as long
    assert.equal(c.breaker!.state, 'open');
    await clock.advance(2 * CLIENT_OPEN_DURATION.baseMs - 1);
    assert.equal(c.breaker!.state, 'open', 'the second opening lasts 4 s');
    await clock.advance(1);
    assert.equal(c.breaker!.state, 'half-open');
  });

  it('4xx answers do not open the breaker', async () => {
    server.handler = (_req, res) => json(res, 404, {});
    const c = client({ retry: 'none', breaker: { minimumCalls: 2, failureRateThreshold: 50 } });
    for (let i = 0; i < 5; i++) await assert.rejects(c.get('/missing'), HttpStatusError);
    assert.equal(c.breaker!.state, 'closed');
  });

  it('a hung dependency fails the attempt with a retryable TimeoutError', async () => {
    server.handler = () => undefined; // never answers
    const c = client({ retry: 'none', timeoutMs: 50 });
    await assert.rejects(c.get('/hang'), (e: unknown) => e instanceof TimeoutError && e.retryable === true);
  });

  it('a body that is not JSON gives InvalidResponseError from the JSON helpers', async () => {
    server.handler = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{nope');
    await assert.rejects(client().get('/x'), (e: unknown) => e instanceof InvalidResponseError && e.status === 200);
  });

  it('sends every attempt through its interceptors; an interceptor failure is classified like the network failure it imitates', async () => {
    const intercepted: string[] = [];
    const tag: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (opts, handler) => {
      intercepted.push(`${opts.method} ${opts.path}`);
      return dispatch({ ...opts, headers: { ...(opts.headers as Record<string, string>), 'x-intercepted': 'yes' } }, handler);
    };
    let resets = 1;
    const resetOnce: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (opts, handler) => {
      if (resets-- <= 0) return dispatch(opts, handler);
      // What undici raises when the peer resets the connection.
      queueMicrotask(() => handler.onResponseError?.(null as never, Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' })));
      return true;
    };
    const c = client({ interceptors: [tag, resetOnce] });
    assert.deepEqual(await c.get('/through'), { ok: true });
    assert.equal(server.seen.length, 1, 'the reset attempt never reached the server, the retry did');
    assert.equal(server.seen[0]!.headers['x-intercepted'], 'yes');
    assert.deepEqual(intercepted, ['GET /through']);
    resets = 1;
    await assert.rejects(client({ interceptors: [resetOnce], retry: 'none' }).get('/reset'), (e: unknown) => e instanceof HttpNetworkError && e.reason === 'UND_ERR_SOCKET' && e.retryable);
    assert.throws(() => createClient({ baseUrl, name: 'x', interceptors: ['nope'] as never }), ClientOptionError);
  });

  it('refuses bad options and header injection with ClientOptionError, sending nothing', async () => {
    for (const options of [{ baseUrl: 'not a url' }, { baseUrl: 'ftp://x' }, { baseUrl: 'http://u:p@x' }, { name: 'has space' }, { maxResponseBytes: 0 }, { timeoutMs: -1 }]) {
      assert.throws(() => createClient({ baseUrl, name: 'x', ...options }), ClientOptionError, JSON.stringify(options));
    }
    const c = client();
    await assert.rejects(c.get('//evil.example/x'), ClientOptionError);
    await assert.rejects(c.get('http://evil.example/x'), ClientOptionError);
    await assert.rejects(c.request({ method: 'TRACE' as never, path: '/x' }), ClientOptionError);
    await assert.rejects(c.get('/x', { headers: { 'x-evil': 'a\r\nset-cookie: s=1' } }), ClientOptionError);
    assert.equal(server.seen.length, 0);
  });
});
