import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { mkdtempSync, renameSync, rmSync, writeFileSync as writeRaw } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestIssuer } from '@bulwark/http/testing';
import { createGateway, GatewayConfigError, type Gateway, type GatewayConfig } from './index.js';
import { call, closeClients, raw } from './testing/client.js';
import { startUpstream, type UpstreamProcess } from './testing/upstream.js';

const PROBLEM = 'https://bulwark.dev/problems/';

/** Replaces the file atomically, as a deployment would (a reload never reads half a file). */
function writeFileSync(path: string, text: string): void {
  writeRaw(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

let a: UpstreamProcess;
let b: UpstreamProcess;
let canary: UpstreamProcess;
let failing: UpstreamProcess;
let issuer: TestIssuer;
let gateway: Gateway;
let port: number;
let adminPort: number;
let dir: string;
let configPath: string;

function baseConfig(): GatewayConfig {
  return {
    admin: { port: 0 },
    limits: { maxHeaderSize: 4096, maxResponseBytes: 1_000_000 },
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'api', jwksUri: issuer.jwksUri }] },
    upstreams: {
      api: { instances: [a.url, b.url], balancer: 'round-robin', outlierEjection: false },
      canary: { instances: [canary.url], outlierEjection: false },
      mixed: { instances: [failing.url, a.url], balancer: 'round-robin', outlierEjection: false },
      down: { instances: [failing.url], outlierEjection: false },
      dead: { instances: ['http://127.0.0.1:1'], outlierEjection: false },
    },
    routes: [
      { name: 'orders', match: { hosts: ['api.test'], pathPrefix: '/orders' }, upstream: 'api', rewrite: { stripPrefix: '/orders', addPrefix: '/v1/orders' } },
      { name: 'secure', match: { pathPrefix: '/secure' }, upstream: 'api', auth: { scopes: ['orders:read'] } },
      { name: 'limited', match: { pathPrefix: '/limited' }, upstream: 'api', rateLimit: { capacity: 2, refillRate: 1, refillIntervalMs: 3_600_000, key: 'ip' } },
      { name: 'mixed', match: { pathPrefix: '/mixed' }, upstream: 'mixed', retry: { maxAttempts: 2, budget: { ratio: 1, minRetriesPerSecond: 1000 } } },
      { name: 'broken', match: { pathPrefix: '/broken' }, upstream: 'down', retry: false, breaker: { minimumCalls: 4, failureRateThreshold: 50, windowSize: 10, openDurationMs: 60_000 } },
      { name: 'dead', match: { pathPrefix: '/dead' }, upstream: 'dead' },
      { name: 'slow', match: { pathPrefix: '/slow' }, upstream: 'api', timeoutMs: 300, retry: false },
      { name: 'small', match: { pathPrefix: '/big' }, upstream: 'api', maxResponseBytes: 1000 },
      { name: 'split', match: { pathPrefix: '/split' }, upstream: 'api', canary: { upstream: 'canary', weight: 30, sticky: 'header:x-user' } },
      { name: 'by-header', match: { path: '/pattern/:id', headers: { 'x-variant': 'b' } }, upstream: 'canary' },
      { name: 'pattern', match: { path: '/pattern/:id', methods: ['GET'] }, upstream: 'api' },
      { name: 'other-host', match: { hosts: ['*.other.test'], pathPrefix: '/' }, upstream: 'canary' },
      { name: 'flood', match: { pathPrefix: '/flood' }, upstream: 'api', maxResponseBytes: 1_000_000_000 },
      { name: 'rest', match: { hosts: ['api.test'], pathPrefix: '/' }, upstream: 'api' },
    ],
  };
}

before(async () => {
  [a, b, canary, failing] = await Promise.all([startUpstream('a'), startUpstream('b'), startUpstream('canary'), startUpstream('failing', { MODE: 'fail' })]);
  issuer = await TestIssuer.start();
  dir = mkdtempSync(join(tmpdir(), 'bulwark-gateway-'));
  configPath = join(dir, 'gateway.json');
  writeFileSync(configPath, JSON.stringify(baseConfig()));
  gateway = await createGateway({ configPath });
  ({ port, adminPort } = (await gateway.listen()) as { port: number; adminPort: number });
});

after(async () => {
  closeClients();
  await gateway.close(1_000);
  await Promise.all([a, b, canary, failing].map((u) => u.stop()));
  await issuer.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('routing and forwarding', () => {
  it('routes by prefix with rewrite, sets X-Forwarded-*/Forwarded, propagates traceparent and the deadline, strips hop-by-hop headers', async () => {
    const trace = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const reply = await call(port, '/orders/42?x=1', { headers: { traceparent: trace, connection: 'keep-alive, x-secret', 'x-secret': 's', 'x-forwarded-for': '6.6.6.6', 'bulwark-deadline-ms': '5000' } });
    assert.equal(reply.status, 200);
    const echo = reply.json<{ url: string; headers: Record<string, string> }>();
    assert.equal(echo.url, '/v1/orders/42?x=1');
    assert.equal(echo.headers.traceparent, trace);
    assert.equal(echo.headers['x-secret'], undefined, 'a header named in Connection is hop-by-hop');
    assert.equal(echo.headers['x-forwarded-for'], '127.0.0.1', 'a client X-Forwarded-For is not trusted by default');
    assert.equal(echo.headers['x-forwarded-proto'], 'http');
    assert.equal(echo.headers['x-forwarded-host'], 'api.test');
    assert.equal(echo.headers.forwarded, 'for=127.0.0.1;host="api.test";proto=http');
    assert.equal(echo.headers.host, 'api.test');
    const deadline = Number(echo.headers['bulwark-deadline-ms']);
    assert.ok(deadline > 0 && deadline <= 4995, `deadline header ${deadline} is the remaining budget`);
  });

  it('generates a traceparent when the client sent none, and drops an invalid one', async () => {
    const echo = (await call(port, '/orders/1', { headers: { traceparent: 'garbage' } })).json<{ headers: Record<string, string> }>();
    assert.match(echo.headers.traceparent!, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });

  it('strips hop-by-hop response headers', async () => {
    const reply = await call(port, '/hop');
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['x-kept'], 'yes');
    assert.equal(reply.headers['proxy-authenticate'], undefined);
    assert.notEqual(reply.headers['keep-alive'], 'timeout=60');
  });

  it('matches patterns, methods and headers; balances over both instances', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add((await call(port, '/pattern/7')).json<{ instance: string }>().instance);
    assert.deepEqual([...seen].sort(), ['a', 'b']);
    assert.equal((await call(port, '/pattern/7', { headers: { 'x-variant': 'b' } })).json<{ instance: string }>().instance, 'canary');
    // POST /pattern/7 is not the pattern route (GET only): the host's catch-all takes it
    assert.equal((await call(port, '/pattern/7', { method: 'POST' })).json<{ url: string }>().url, '/pattern/7');
    assert.equal((await call(port, '/anything', { headers: { host: 'x.other.test' } })).json<{ instance: string }>().instance, 'canary');
  });

  it('answers 421 for an unknown host, 400 for a malformed one, 404 when no route matches', async () => {
    // host-less routes serve any host: an unknown host finds no route among them
    const unrouted = await call(port, '/orders/1', { headers: { host: 'evil.test' } });
    assert.equal(unrouted.status, 404);
    assert.equal(unrouted.json().type, `${PROBLEM}gateway-route-not-found`);
    // when every route names its hosts, an unknown host is misdirected
    const hosted = await createGateway({ config: { upstreams: { api: { instances: [a.url] } }, routes: [{ match: { hosts: ['api.test'] }, upstream: 'api' }] } });
    const { port: hostedPort } = await hosted.listen();
    try {
      const unknown = await call(hostedPort, '/orders/1', { headers: { host: 'evil.test' } });
      assert.equal(unknown.status, 421);
      assert.equal(unknown.json().type, `${PROBLEM}gateway-unknown-host`);
      assert.equal((await call(hostedPort, '/orders/1', { headers: { host: 'API.test:8080' } })).status, 200, 'host match ignores case and port');
    } finally {
      await hosted.close(100);
    }
    const bad = await call(port, '/orders/1', { headers: { host: 'a b@c' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.json().type, `${PROBLEM}gateway-bad-host`);
    assert.equal(bad.headers['content-type'], 'application/problem+json');
    const none = await call(port, '/x', { headers: { host: 'y.other.test' }, method: 'DELETE' });
    assert.equal(none.status, 200); // the wildcard host's catch-all
    const dots = await call(port, '/orders/../admin');
    assert.equal(dots.status, 400);
  });
});

describe('bad input at the socket', () => {
  it('refuses conflicting Content-Length / Transfer-Encoding, duplicate lengths and oversize headers with 4xx, forwarding nothing', async () => {
    const before = (await a.counts())['*'] ?? 0;
    const beforeB = (await b.counts())['*'] ?? 0;
    const both = await raw(port, 'POST /orders/1 HTTP/1.1\r\nHost: api.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /orders/2 HTTP/1.1\r\nHost: api.test\r\n\r\n');
    assert.match(both, /^HTTP\/1\.1 400 /);
    const dup = await raw(port, 'POST /orders/1 HTTP/1.1\r\nHost: api.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!');
    assert.match(dup, /^HTTP\/1\.1 400 /);
    const te = await raw(port, 'POST /orders/1 HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n');
    assert.match(te, /^HTTP\/1\.1 400 /);
    const big = await raw(port, `GET /orders/1 HTTP/1.1\r\nHost: api.test\r\nX-Big: ${'x'.repeat(8000)}\r\n\r\n`);
    assert.match(big, /^HTTP\/1\.1 400 /, 'oversize headers are a 400 ...');
    assert.match(big, /"type":"https:\/\/bulwark\.dev\/problems\/gateway-header-too-large"/, '... whose problem type says why');
    assert.match(big, /Content-Type: application\/problem\+json/);
    const noHost = await raw(port, 'GET /orders/1 HTTP/1.1\r\n\r\n');
    assert.match(noHost, /^HTTP\/1\.1 400 /);
    assert.equal((await a.counts())['*'] ?? 0, before, 'nothing reached instance a');
    assert.equal((await b.counts())['*'] ?? 0, beforeB, 'nothing reached instance b');
  });
});

describe('auth', () => {
  it('401 without or with a bad token, 403 without the scope, 200 with it; a repeated token is served from the cache', async () => {
    const none = await call(port, '/secure/1');
    assert.equal(none.status, 401);
    assert.equal(none.headers['www-authenticate'], 'Bearer');
    const bad = await call(port, '/secure/1', { headers: { authorization: 'Bearer not.a.token' } });
    assert.equal(bad.status, 401);
    assert.equal(bad.json().type, `${PROBLEM}gateway-invalid-token`);
    const expired = await issuer.sign({ sub: 'u1', aud: 'api', scope: 'orders:read' }, { nowMs: Date.now() - 3_600_000 });
    assert.equal((await call(port, '/secure/1', { headers: { authorization: `Bearer ${expired}` } })).json().reason, 'expired');
    const noScope = await issuer.sign({ sub: 'u1', aud: 'api', scope: 'other' });
    assert.equal((await call(port, '/secure/1', { headers: { authorization: `Bearer ${noScope}` } })).status, 403);
    const good = await issuer.sign({ sub: 'u1', aud: 'api', scope: 'orders:read' });
    const hitsBefore = gateway.stats().tokens!.hits;
    for (let i = 0; i < 3; i++) assert.equal((await call(port, '/secure/1', { headers: { authorization: `Bearer ${good}` } })).status, 200);
    assert.ok(gateway.stats().tokens!.hits >= hitsBefore + 2, 'the second and third uses are cache hits');
  });
});

describe('rate limit', () => {
  it('refuses past the allowance with 429, Retry-After and RateLimit headers', async () => {
    const r1 = await call(port, '/limited/1');
    assert.equal(r1.status, 200);
    assert.equal(r1.headers['ratelimit-limit'], '2');
    assert.equal(r1.headers['ratelimit-remaining'], '1');
    assert.equal((await call(port, '/limited/1')).status, 200);
    const refused = await call(port, '/limited/1');
    assert.equal(refused.status, 429);
    assert.equal(refused.json().type, `${PROBLEM}gateway-rate-limited`);
    assert.ok(Number(refused.headers['retry-after']) >= 1);
  });
});

describe('retry, breaker, deadline, upstream errors', () => {
  it('retries an idempotent request that got a 503 on another instance; never retries a request with a body', async () => {
    for (let i = 0; i < 10; i++) {
      const r = await call(port, '/mixed/x');
      assert.equal(r.status, 200, 'a GET that hit the failing instance was retried on the healthy one');
      assert.equal(r.json<{ instance: string }>().instance, 'a');
    }
    const failingBefore = (await failing.counts())['/mixed/post'] ?? 0;
    const aBefore = (await a.counts())['/mixed/post'] ?? 0;
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await call(port, '/mixed/post', { method: 'POST', body: 'payload' })).status);
    const failed = statuses.filter((s) => s === 503).length;
    assert.ok(failed > 0, 'some POSTs hit the failing instance and got its 503 as is');
    const seenFailing = ((await failing.counts())['/mixed/post'] ?? 0) - failingBefore;
    const seenA = ((await a.counts())['/mixed/post'] ?? 0) - aBefore;
    assert.equal(seenFailing + seenA, 10, 'each POST reached exactly one instance');
    assert.equal(seenFailing, failed);
  });

  it('opens the route breaker after failures and answers 503 gateway-upstream-unavailable with Retry-After; admin shows it', async () => {
    const statuses: number[] = [];
    let open: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < 20 && open === undefined; i++) {
      const r = await call(port, '/broken');
      statuses.push(r.status);
      if (r.headers['content-type'] === 'application/problem+json') open = r;
    }
    assert.ok(open !== undefined, `breaker opened (statuses ${statuses.join(',')})`);
    assert.equal(open.status, 503);
    assert.equal(open.json().type, `${PROBLEM}gateway-upstream-unavailable`);
    assert.ok(Number(open.headers['retry-after']) >= 1);
    assert.equal(gateway.breakers().broken?.state, 'open');
  });

  it('answers 504 when the route deadline (or a smaller incoming budget) passes before the head', async () => {
    const slow = await call(port, '/slow/5000');
    assert.equal(slow.status, 504);
    assert.equal(slow.json().type, `${PROBLEM}gateway-timeout`);
    assert.equal(slow.json().retryable, true);
    const budget = await call(port, '/orders-slow', { headers: { 'bulwark-deadline-ms': '0' } });
    assert.equal(budget.status, 504, 'a spent incoming budget is not forwarded');
  });

  it('maps a refused connection to 502 with a retry hint, and a reset to 502', async () => {
    const dead = await call(port, '/dead');
    assert.equal(dead.status, 502);
    assert.equal(dead.json().type, `${PROBLEM}gateway-bad-gateway`);
    assert.equal(dead.headers['retry-after'], '1');
    const reset = await call(port, '/reset');
    assert.equal(reset.status, 502);
  });

  it('refuses a response larger than the route limit', async () => {
    const big = await call(port, '/big/5000');
    assert.equal(big.status, 502);
    assert.equal(big.json().type, `${PROBLEM}gateway-response-too-large`);
    assert.equal((await call(port, '/big/500')).body.length, 500);
    await assert.rejects(call(port, '/big/5000?length=no'), 'a chunked response over the limit is cut');
  });
});

describe('streaming', () => {
  it('streams the response: the first chunk arrives while the upstream is still writing', async () => {
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/stream', headers: { host: 'api.test' } }, (res) => {
        let body = '';
        let released = false;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
          if (!released && body.includes('first;')) {
            released = true;
            // the upstream only finishes once told to: the gateway passed the first chunk on without the rest
            void Promise.all([a, b].map((u) => fetch(`${u.url}/release`))).catch(reject);
          }
        });
        res.on('end', () => {
          try {
            assert.equal(body, 'first;last');
            resolve();
          } catch (e) {
            reject(e instanceof Error ? e : new Error(String(e)));
          }
        });
      });
      req.on('error', reject);
      req.end();
    });
  });

  it('streams the request body: the upstream answers after the first chunk, before the body ends', async () => {
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/upload-ack', method: 'POST', headers: { host: 'api.test', 'transfer-encoding': 'chunked' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
          if (body === 'ack:5;') req.end('world!'); // the rest only after the upstream saw the first part
        });
        res.on('end', () => {
          try {
            assert.equal(body, 'ack:5;done:11');
            resolve();
          } catch (e) {
            reject(e instanceof Error ? e : new Error(String(e)));
          }
        });
      });
      req.on('error', reject);
      req.write('hello');
    });
  });

  it('backpressure: a client that stops reading a large response holds the upstream back instead of the gateway buffering it', async () => {
    const total = 200 * 1024 * 1024;
    const socket = connect(port, '127.0.0.1');
    let received = 0;
    let head = '';
    let bodyStart = -1;
    const expectByte = (offset: number): number => offset % 251;
    let intact = true;
    socket.on('data', (d: Buffer) => {
      let body = d;
      if (bodyStart === -1) {
        head += d.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        bodyStart = end + 4;
        body = Buffer.from(head.slice(bodyStart), 'latin1');
        socket.pause(); // the head is here: now stop reading
      }
      for (let i = 0; i < body.length; i += 4093) if (body[i] !== expectByte(received + i)) intact = false;
      received += body.length;
    });
    const closed = once(socket, 'close');
    socket.write('GET /flood/' + total + ' HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n');
    while (bodyStart === -1) await new Promise((r) => setTimeout(r, 5));
    assert.match(head, /^HTTP\/1\.1 200 /);
    // let everything that can be buffered fill up
    let written = -1;
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 20));
      const now = (await Promise.all([a, b].map(async (u) => Number(await (await fetch(`${u.url}/flooded`)).text())))).reduce((x, y) => x + y, 0);
      if (now === written) break;
      written = now;
    }
    // socket buffers on three loopback hops hold some MB; the rest must still be in the upstream
    assert.ok(written < total / 4, `upstream wrote ${written} of ${total} bytes while the client read nothing`);
    socket.resume();
    await closed;
    assert.equal(received, total, 'every byte arrives once the client reads again');
    assert.ok(intact, 'the bytes arrive in order and unchanged');
  });

  it('passes a response written in many small chunks through intact', async () => {
    const reply = await call(port, '/chunks/3000');
    assert.equal(reply.status, 200);
    assert.equal(reply.body, Array.from({ length: 3000 }, (_, i) => `chunk-${i};`).join(''));
  });

  it('streams a large request body to the upstream', async () => {
    const body = Buffer.alloc(8 * 1024 * 1024, 7);
    const reply = await call(port, '/orders/upload', { method: 'POST', body });
    assert.equal(reply.status, 200);
    assert.equal(reply.json<{ bytes: number }>().bytes, body.length);
  });
});

describe('canary', () => {
  it('X-Canary forces a side; a sticky key always lands on the same side; the split is near its weight', async () => {
    assert.equal((await call(port, '/split', { headers: { 'x-canary': 'true' } })).json<{ instance: string }>().instance, 'canary');
    assert.notEqual((await call(port, '/split', { headers: { 'x-canary': 'false' } })).json<{ instance: string }>().instance, 'canary');
    let onCanary = 0;
    for (let user = 0; user < 200; user++) {
      const first = (await call(port, '/split', { headers: { 'x-user': `user-${user}` } })).json<{ instance: string }>().instance === 'canary';
      const again = (await call(port, '/split', { headers: { 'x-user': `user-${user}` } })).json<{ instance: string }>().instance === 'canary';
      assert.equal(first, again, `user-${user} stays on its side`);
      if (first) onCanary++;
    }
    assert.ok(onCanary > 30 && onCanary < 100, `about 30% of 200 users on the canary, got ${onCanary}`);
  });
});

describe('admin', () => {
  it('requires a token with gateway:admin and shows routes, upstreams with health and ejection state, breakers, stats', async () => {
    assert.equal((await call(adminPort, '/admin/routes')).status, 401);
    const user = await issuer.sign({ sub: 'u', aud: 'api', scope: 'orders:read' });
    assert.equal((await call(adminPort, '/admin/routes', { headers: { authorization: `Bearer ${user}` } })).status, 403);
    const admin = await issuer.sign({ sub: 'ops', aud: 'api', scope: 'gateway:admin' });
    const auth = { authorization: `Bearer ${admin}` };
    const routes = (await call(adminPort, '/admin/routes', { headers: auth })).json<{ routes: { name: string }[] }>();
    assert.ok(routes.routes.some((r) => r.name === 'orders'));
    const upstreams = (await call(adminPort, '/admin/upstreams', { headers: auth })).json<Record<string, { url: string; ejected: boolean; health: string }[]>>();
    assert.deepEqual(upstreams.api!.map((i) => i.url).sort(), [a.url, b.url].sort());
    assert.equal(typeof upstreams.api![0]!.ejected, 'boolean');
    const breakers = (await call(adminPort, '/admin/breakers', { headers: auth })).json<Record<string, { state: string }>>();
    assert.ok(breakers.broken !== undefined);
    const stats = (await call(adminPort, '/admin/stats', { headers: auth })).json<{ counters: { requests: number } }>();
    assert.ok(stats.counters.requests > 0);
  });
});

describe('configuration reload', () => {
  it('a failed reload names the route and field and keeps the old table; a good one swaps it', async () => {
    const admin = await issuer.sign({ sub: 'ops', aud: 'api', scope: 'gateway:admin' });
    const bad = baseConfig();
    (bad.routes as unknown as { upstream: string }[])[2]!.upstream = 'paymnts';
    writeFileSync(configPath, JSON.stringify(bad));
    const refused = await call(adminPort, '/admin/reload', { method: 'POST', headers: { authorization: `Bearer ${admin}` } });
    assert.equal(refused.status, 400);
    assert.ok(refused.json<{ issues: string[] }>().issues.includes('routes[2] (limited).upstream: unknown upstream "paymnts"'));
    await assert.rejects(gateway.reload(), (e: unknown) => e instanceof GatewayConfigError && e.issues[0] === 'routes[2] (limited).upstream: unknown upstream "paymnts"');
    assert.equal((await call(port, '/orders/1')).status, 200, 'the old table still serves');

    const good = baseConfig();
    (good.routes as unknown[]).unshift({ name: 'new', match: { pathPrefix: '/new' }, upstream: 'canary' });
    writeFileSync(configPath, JSON.stringify(good));
    const ok = await call(adminPort, '/admin/reload', { method: 'POST', headers: { authorization: `Bearer ${admin}` } });
    assert.equal(ok.status, 200);
    assert.equal((await call(port, '/new')).json<{ instance: string }>().instance, 'canary');
  });

  it('reloads under load without losing a request (admin route and SIGHUP)', async () => {
    const total = 1500;
    let done = 0;
    const failures: string[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < total) {
        next++;
        const r = await call(port, '/orders/load');
        if (r.status !== 200) failures.push(`${r.status} ${r.body}`);
        done++;
      }
    };
    const workers = Array.from({ length: 32 }, () => worker());
    let reloads = 0;
    while (done < total) {
      const config = baseConfig();
      (config.routes as unknown as { timeoutMs?: number }[])[0]!.timeoutMs = 10_000 + reloads; // a real change every time
      if (reloads % 2 === 1) (config.upstreams as Record<string, unknown>).extra = { instances: [canary.url] };
      writeFileSync(configPath, JSON.stringify(config));
      if (reloads % 3 === 2) process.emit('SIGHUP', 'SIGHUP');
      else await gateway.reload();
      reloads++;
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(workers);
    assert.deepEqual(failures, []);
    assert.ok(reloads >= 3, `reloaded ${reloads} times during the load`);
  });
});
