/**
 * The gateway against upstreams that speak HTTP/1.1 badly or unusually (raw
 * `net` servers in this process): what reaches the client, and what happens
 * to the upstream connection.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createGateway, type Gateway } from './index.js';
import { call, closeClients } from './testing/client.js';
import { startRawUpstream, type RawUpstream } from './testing/raw-upstream.js';

const PROBLEM = 'https://bulwark.dev/problems/';

let raw: RawUpstream;
let flaky: RawUpstream;
let good: RawUpstream;
let gateway: Gateway;
let port: number;
/** Set by /endless: resolves when the upstream connection that served it closes. */
let endlessClosed: Promise<void> | undefined;

const RESPONSES: Record<string, string> = {
  '/cl-te': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  '/dup-cl': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
  '/same-cl': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello',
  '/fold': 'HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 2\r\n\r\nok',
  '/te-gzip': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
  '/big-head': `HTTP/1.1 200 OK\r\nX-Big: ${'b'.repeat(3000)}\r\nContent-Length: 2\r\n\r\nok`,
  '/many': `HTTP/1.1 200 OK\r\n${'X-A: 1\r\n'.repeat(300)}Content-Length: 2\r\n\r\nok`,
  '/garbage': 'SMTP READY\r\n\r\n',
  '/bad-value': 'HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 2\r\n\r\nok',
  '/head': 'HTTP/1.1 200 OK\r\nContent-Length: 42\r\nX-Head: yes\r\n\r\n',
  '/204': 'HTTP/1.1 204 No Content\r\nX-Empty: yes\r\n\r\n',
  '/304': 'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 42\r\n\r\n',
  '/hints': 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal',
  '/conn-named': 'HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Internal\r\nX-Internal: secret\r\nX-Public: ok\r\nContent-Length: 2\r\n\r\nok',
};

before(async () => {
  raw = await startRawUpstream((socket, head) => {
    const path = /^\S+ ([^\s?]+)/.exec(head)![1]!;
    const canned = RESPONSES[path];
    if (canned !== undefined) return void socket.write(canned, 'latin1');
    if (path === '/echo-head') return void socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(head, 'latin1')}\r\n\r\n${head}`, 'latin1');
    if (path === '/close-delimited') {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ');
      setImmediate(() => socket.end('the close'));
      return;
    }
    if (path === '/endless') {
      endlessClosed = new Promise((resolve) => socket.on('close', () => resolve()));
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 60000000\r\n\r\n'); // under the 64 MB default limit
      const timer = setInterval(() => socket.write(Buffer.alloc(1024, 120)), 5);
      socket.on('close', () => clearInterval(timer));
      return;
    }
    socket.write('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
  });
  // each connection answers its first request, then drops the second without a word: a keep-alive race
  flaky = await startRawUpstream((socket) => {
    const served = (socket as Socket & { served?: number }).served ?? 0;
    (socket as Socket & { served?: number }).served = served + 1;
    if (served === 0) socket.write('HTTP/1.1 200 OK\r\nX-Instance: flaky\r\nContent-Length: 5\r\n\r\nflaky');
    else socket.destroy();
  });
  good = await startRawUpstream((socket) => socket.write('HTTP/1.1 200 OK\r\nX-Instance: good\r\nContent-Length: 4\r\n\r\ngood'));
  gateway = await createGateway({
    config: {
      upstreams: {
        raw: { instances: [raw.url], outlierEjection: false, maxHeaderSize: 2048 },
        pair: { instances: [flaky.url, good.url], balancer: 'round-robin', outlierEjection: false },
      },
      routes: [
        { name: 'pair', match: { pathPrefix: '/pair' }, upstream: 'pair', retry: { maxAttempts: 2, budget: { ratio: 1, minRetriesPerSecond: 1000 } } },
        { name: 'raw', match: { pathPrefix: '/' }, upstream: 'raw', retry: false },
      ],
    },
  });
  ({ port } = await gateway.listen());
});

after(async () => {
  closeClients();
  await gateway.close(1_000);
  await Promise.all([raw, flaky, good].map((u) => u.close()));
});

/** Sends `text` on a new connection and resolves with what came back once `done(received)` says so (or the socket closed). */
function exchange(text: string, done: (received: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      received += d;
      if (done(received)) {
        socket.destroy();
        resolve(received);
      }
    });
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
    socket.write(text);
  });
}

describe('upstream protocol errors', () => {
  it('answers 502 gateway-bad-gateway to malformed, conflicting or oversize upstream responses, and forwards nothing of them', async () => {
    for (const path of ['/cl-te', '/dup-cl', '/same-cl', '/fold', '/te-gzip', '/big-head', '/many', '/garbage', '/bad-value']) {
      const before = raw.closed;
      const reply = await call(port, path);
      assert.equal(reply.status, 502, path);
      assert.equal(reply.headers['content-type'], 'application/problem+json', path);
      assert.equal(reply.json().type, `${PROBLEM}gateway-bad-gateway`, path);
      assert.equal(reply.headers['x-a'], undefined, path);
      assert.equal(reply.headers['x-big'], undefined, path);
      await raw.closedCount(before + 1); // that upstream connection is not reused
    }
  });
});

describe('upstream framing', () => {
  it('HEAD, 204 and 304 pass through without a body, and the client connection goes on', async () => {
    const head = await call(port, '/head', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '42');
    assert.equal(head.headers['x-head'], 'yes');
    assert.equal(head.body, '');
    const noContent = await call(port, '/204');
    assert.equal(noContent.status, 204);
    assert.equal(noContent.headers['x-empty'], 'yes');
    const notModified = await call(port, '/304');
    assert.equal(notModified.status, 304);
    assert.equal(notModified.headers.etag, '"v1"');
    // the same client connections (keep-alive agent) still work: nothing was left half-read
    assert.equal((await call(port, '/echo-head')).status, 200);
    // and on one raw connection, back to back
    const text = await exchange('HEAD /head HTTP/1.1\r\nHost: api.test\r\n\r\nGET /204 HTTP/1.1\r\nHost: api.test\r\n\r\n', (r) => r.includes('HTTP/1.1 204'));
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nHTTP\/1\.1 204 No Content\r\n/);
  });

  it('skips 1xx interim responses: the client sees only the final one', async () => {
    const text = await exchange('GET /hints HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n', () => false);
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.doesNotMatch(text, /HTTP\/1\.1 10[03]/);
    assert.match(text, /\r\n\r\nfinal$/);
  });

  it('a body delimited by the upstream closing reaches the client whole', async () => {
    const reply = await call(port, '/close-delimited');
    assert.equal(reply.status, 200);
    assert.equal(reply.body, 'until the close');
    assert.equal(reply.headers['transfer-encoding'], 'chunked', 'framed for the client, whose connection stays open');
  });

  it('drops response fields the upstream names in Connection', async () => {
    const reply = await call(port, '/conn-named');
    assert.equal(reply.headers['x-public'], 'ok');
    assert.equal(reply.headers['x-internal'], undefined);
  });

  it('sends one well-formed head upstream: request line, Host, forwarding fields, traceparent, deadline; no hop-by-hop fields', async () => {
    const reply = await call(port, '/echo-head?q=1', { headers: { 'x-custom': 'v', te: 'trailers', connection: 'keep-alive, x-hop', 'x-hop': 'h', 'keep-alive': 'timeout=5', 'proxy-authorization': 'Basic x' } });
    const lines = reply.body.split('\r\n');
    assert.equal(lines[0], 'GET /echo-head?q=1 HTTP/1.1');
    assert.equal(reply.body.endsWith('\r\n\r\n'), true);
    const fields = new Map(lines.slice(1, -2).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 2)]));
    assert.equal(fields.get('host'), 'api.test');
    assert.equal(fields.get('x-custom'), 'v');
    assert.equal(fields.get('x-forwarded-for'), '127.0.0.1');
    assert.equal(fields.get('x-forwarded-proto'), 'http');
    assert.equal(fields.get('x-forwarded-host'), 'api.test');
    assert.equal(fields.get('forwarded'), 'for=127.0.0.1;host="api.test";proto=http');
    assert.match(fields.get('traceparent')!, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    assert.match(fields.get('bulwark-deadline-ms')!, /^\d+$/);
    for (const hop of ['te', 'connection', 'x-hop', 'keep-alive', 'proxy-authorization', 'transfer-encoding']) assert.equal(fields.has(hop), false, hop);
  });
});

describe('forwarding options', () => {
  it('trustForwarded appends to the client X-Forwarded-For and Forwarded and keeps its proto; preserveHost: false sends the instance host', async () => {
    const trusting = await createGateway({
      config: {
        trustForwarded: true,
        upstreams: { raw: { instances: [raw.url], outlierEjection: false } },
        routes: [
          { name: 'own-host', match: { pathPrefix: '/echo-head', headers: { 'x-own-host': true } }, upstream: 'raw', preserveHost: false },
          { name: 'raw', match: { pathPrefix: '/' }, upstream: 'raw' },
        ],
      },
    });
    const { port: trustingPort } = await trusting.listen();
    try {
      const fieldsOf = (body: string): Map<string, string> => new Map(body.split('\r\n').slice(1, -2).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 2)]));
      const trusted = fieldsOf((await call(trustingPort, '/echo-head', { headers: { 'x-forwarded-for': '6.6.6.6', forwarded: 'for=6.6.6.6', 'x-forwarded-proto': 'https' } })).body);
      assert.equal(trusted.get('x-forwarded-for'), '6.6.6.6, 127.0.0.1');
      assert.equal(trusted.get('forwarded'), 'for=6.6.6.6, for=127.0.0.1;host="api.test";proto=http');
      assert.equal(trusted.get('x-forwarded-proto'), 'https');
      assert.equal(trusted.get('x-forwarded-host'), 'api.test');
      assert.equal(trusted.get('host'), 'api.test');
      const own = fieldsOf((await call(trustingPort, '/echo-head', { headers: { 'x-own-host': '1' } })).body);
      assert.equal(own.get('host'), `127.0.0.1:${raw.port}`);
      assert.equal(own.get('x-forwarded-host'), 'api.test');
    } finally {
      await trusting.close(100);
    }
  });
});

describe('upstream connections', () => {
  it('a client that goes away mid-body closes the upstream connection', async () => {
    endlessClosed = undefined;
    const text = await exchange('GET /endless HTTP/1.1\r\nHost: api.test\r\n\r\n', (r) => r.length > 10_000);
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    const closed = endlessClosed as Promise<void> | undefined; // set by the upstream handler
    assert.ok(closed !== undefined);
    await closed;
  });

  it('a keep-alive connection the upstream dropped before answering: a GET is retried on the other instance, a POST is not', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await call(port, '/pair/x');
      statuses.push(r.status);
      assert.ok(r.body === 'flaky' || r.body === 'good', r.body);
    }
    assert.deepEqual([...new Set(statuses)], [200], 'every GET succeeded');
    assert.ok(flaky.requests > flaky.accepted, 'some GETs met a dropped connection and were retried');
    const posts: number[] = [];
    for (let i = 0; i < 12; i++) posts.push((await call(port, '/pair/x', { method: 'POST', body: 'payload' })).status);
    assert.ok(posts.includes(502), `a POST on a dropped connection is answered 502, not retried (${posts.join(',')})`);
  });
});
