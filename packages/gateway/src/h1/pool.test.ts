/**
 * The upstream client against real servers on loopback: node:http ones, and
 * raw `net` servers that write exactly the bytes a test wants, split however
 * it wants. No assertion depends on wall-clock time: waits are for events.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { startRawUpstream, type RawUpstream } from '../testing/raw-upstream.js';
import { UpstreamClosedError, UpstreamHeadersTooLargeError, UpstreamProtocolError } from './parser.js';
import { PoolClosedError, RequestBodyAbortedError, UpstreamBodyTimeoutError, UpstreamHeadersTimeoutError, UpstreamPool, type ResponseHandler, type UpstreamCall, type UpstreamPoolOptions, type UpstreamRequest } from './pool.js';

const cleanup: (() => unknown)[] = [];
after(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

// ---- servers ----

/** A raw upstream (see `testing/raw-upstream.ts`), closed after the tests. */
async function rawUpstream(onRequest: (socket: Socket, head: string, n: number) => void): Promise<RawUpstream> {
  const up = await startRawUpstream(onRequest);
  cleanup.push(() => up.close());
  return up;
}

async function httpUpstream(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; server: HttpServer; connections: () => number }> {
  let connections = 0;
  const server = createHttpServer({ keepAliveTimeout: 60_000 }, handler);
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(() => new Promise<void>((r) => {
    server.closeAllConnections();
    server.close(() => r());
  }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, connections: () => connections };
}

function newPool(url: string, options: UpstreamPoolOptions = {}): UpstreamPool {
  const pool = new UpstreamPool(url, { maxHeaderSize: 4096, ...options });
  cleanup.push(() => pool.close());
  return pool;
}

// ---- a recording handler ----

interface Result {
  status: number;
  headers: string[];
  contentLength: number;
  body: Buffer;
  error: Error | undefined;
  /** How many chunks said `last`. */
  lasts: number;
}

class Collect implements ResponseHandler {
  readonly result: Result = { status: 0, headers: [], contentLength: -2, body: Buffer.alloc(0), error: undefined, lasts: 0 };
  readonly done: Promise<Result>;
  /** Pause once this many body bytes arrived (the test resumes). */
  pauseAt = Infinity;
  paused = false;
  onHeadSeen: (() => void) | undefined;
  onChunk: ((bytes: number) => void) | undefined;
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  private finish!: (r: Result) => void;

  constructor() {
    this.done = new Promise((resolve) => (this.finish = resolve));
  }

  onResponseHead(status: number, headers: string[], contentLength: number): boolean {
    Object.assign(this.result, { status, headers, contentLength });
    this.onHeadSeen?.();
    return true;
  }

  onResponseData(chunk: Buffer, last: boolean): boolean {
    this.chunks.push(Buffer.from(chunk)); // a view of a reused buffer: copy
    this.bytes += chunk.length;
    if (last) this.result.lasts++;
    this.onChunk?.(this.bytes);
    if (this.bytes >= this.pauseAt && !this.paused) {
      this.paused = true;
      return false;
    }
    return true;
  }

  onResponseEnd(): void {
    this.result.body = Buffer.concat(this.chunks);
    this.finish(this.result);
  }

  onResponseError(error: Error): void {
    this.result.body = Buffer.concat(this.chunks);
    this.result.error = error;
    this.finish(this.result);
  }
}

function request(path: string, extra: Partial<UpstreamRequest> = {}, method = 'GET', headers = ''): UpstreamRequest {
  return { head: `${method} ${path} HTTP/1.1\r\nhost: upstream.test\r\n${headers}\r\n`, isHead: method === 'HEAD', body: null, chunked: false, headersTimeoutMs: 10_000, bodyTimeoutMs: 10_000, ...extra };
}

function send(pool: UpstreamPool, req: UpstreamRequest, handler = new Collect()): { call: UpstreamCall; handler: Collect; done: Promise<Result> } {
  const call = pool.request(req, handler);
  return { call, handler, done: handler.done };
}

/** Writes `text` in pieces of random sizes (1 to `max` bytes), a macrotask apart. */
async function writeInPieces(socket: Socket, text: string, random: () => number, max = 7): Promise<void> {
  let at = 0;
  while (at < text.length && !socket.destroyed) {
    const n = 1 + Math.floor(random() * max);
    socket.write(text.slice(at, at + n), 'latin1');
    at += n;
    await tick();
  }
}

/** A small deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---- tests ----

describe('UpstreamPool: keep-alive and reuse', () => {
  it('reuses one connection for sequential requests; each response is its own', async () => {
    const up = await httpUpstream((req, res) => res.end(`you asked for ${req.url}`));
    const pool = newPool(up.url);
    for (let i = 0; i < 30; i++) {
      const r = await send(pool, request(`/item/${i}`)).done;
      assert.equal(r.error, undefined);
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), `you asked for /item/${i}`);
    }
    assert.equal(up.connections(), 1);
    assert.deepEqual(pool.stats(), { connections: 1, idle: 1, queued: 0 });
  });

  it('never opens more than `connections`; the others wait their turn', async () => {
    let active = 0;
    let maxActive = 0;
    const up = await httpUpstream((req, res) => {
      active++;
      maxActive = Math.max(maxActive, active);
      setImmediate(() => {
        active--;
        res.end(req.url);
      });
    });
    const pool = newPool(up.url, { connections: 3 });
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => send(pool, request(`/q/${i}`)).done));
    results.forEach((r, i) => assert.equal(r.body.toString(), `/q/${i}`));
    assert.ok(up.connections() <= 3, `opened ${up.connections()} connections`);
    assert.ok(maxActive <= 3);
  });

  it('keeps responses apart under load: mixed framing, 1xx, HEAD, 204/304, every response split at random points', async () => {
    const random = prng(7);
    const kinds = ['cl', 'chunked', 'continue', 'head', '204', '304', 'cl-empty'] as const;
    const expected = (id: number): string => `body-${id}-${'x'.repeat(id % 37)}`;
    const up = await rawUpstream((socket, head) => {
      const [, method, path] = /^(\S+) (\S+)/.exec(head)!;
      const [, , id, kind] = path!.split('/') as [string, string, string, (typeof kinds)[number] | undefined];
      const body = expected(Number(id));
      let text: string;
      switch (kind) {
        case 'cl':
          text = `HTTP/1.1 200 OK\r\nX-Id: ${id}\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
          break;
        case 'chunked': {
          const cut = Math.floor(body.length / 2);
          text = `HTTP/1.1 200 OK\r\nX-Id: ${id}\r\nTransfer-Encoding: chunked\r\n\r\n${cut.toString(16)};x=y\r\n${body.slice(0, cut)}\r\n${(body.length - cut).toString(16)}\r\n${body.slice(cut)}\r\n0\r\nX-Trailer: t\r\n\r\n`;
          break;
        }
        case 'continue':
          text = `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nX-Id: ${id}\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
          break;
        case 'head':
          assert.equal(method, 'HEAD');
          text = `HTTP/1.1 200 OK\r\nX-Id: ${id}\r\nContent-Length: ${body.length}\r\n\r\n`;
          break;
        case '204':
          text = `HTTP/1.1 204 No Content\r\nX-Id: ${id}\r\n\r\n`;
          break;
        case '304':
          text = `HTTP/1.1 304 Not Modified\r\nX-Id: ${id}\r\nContent-Length: ${body.length}\r\n\r\n`;
          break;
        case 'cl-empty':
        case undefined:
          text = `HTTP/1.1 200 OK\r\nX-Id: ${id}\r\nContent-Length: 0\r\n\r\n`;
      }
      void writeInPieces(socket, text, random, 11);
    });
    const pool = newPool(up.url, { connections: 4 });
    const total = 300;
    let next = 0;
    const failures: string[] = [];
    const worker = async (): Promise<void> => {
      while (next < total) {
        const id = next++;
        const kind = kinds[id % kinds.length]!;
        const r = await send(pool, request(`/r/${id}/${kind}`, {}, kind === 'head' ? 'HEAD' : 'GET')).done;
        const hasBody = kind === 'cl' || kind === 'chunked' || kind === 'continue';
        const want = hasBody ? expected(id) : '';
        const xid = r.headers[r.headers.findIndex((h) => h === 'X-Id') + 1];
        if (r.error !== undefined || xid !== String(id) || r.body.toString('latin1') !== want) failures.push(`${id} ${kind}: ${r.error?.message ?? ''} id=${xid} body=${r.body.toString('latin1')}`);
      }
    };
    await Promise.all(Array.from({ length: 12 }, () => worker()));
    assert.deepEqual(failures, []);
    assert.ok(up.accepted <= 4, `${up.accepted} connections for ${total} requests`);
  });

  it('parses a response delivered one byte per write', async () => {
    const text = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n3\r\nabc\r\n4;e=1\r\ndefg\r\n0\r\n\r\n';
    const up = await rawUpstream((socket) => void writeInPieces(socket, text, () => 0, 1));
    const pool = newPool(up.url);
    for (let i = 0; i < 2; i++) {
      const r = await send(pool, request('/')).done;
      assert.equal(r.body.toString(), 'abcdefg');
      assert.deepEqual(r.headers, ['X-A', '1']);
    }
    assert.equal(up.accepted, 1, 'reused after a chunked response');
  });

  it('a body delimited by the close is complete at the close; that connection is not reused', async () => {
    const up = await rawUpstream((socket) => {
      void writeInPieces(socket, 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it, until the end', () => 0.5).then(() => socket.end());
    });
    const pool = newPool(up.url);
    for (let i = 0; i < 2; i++) assert.equal((await send(pool, request('/')).done).body.toString(), 'all of it, until the end');
    assert.equal(up.accepted, 2);
  });

  it('does not reuse a connection after Connection: close, an HTTP/1.0 response, or a Keep-Alive hint too short to use', async () => {
    for (const head of ['HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n', 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n', 'HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\n']) {
      const up = await rawUpstream((socket) => socket.write(`${head}ok`));
      const pool = newPool(up.url);
      for (let i = 0; i < 3; i++) assert.equal((await send(pool, request('/')).done).body.toString(), 'ok');
      assert.equal(up.accepted, 3, head.split('\r\n')[0]);
    }
    const keep = await rawUpstream((socket) => socket.write('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok'));
    const pool = newPool(keep.url);
    for (let i = 0; i < 3; i++) await send(pool, request('/')).done;
    assert.equal(keep.accepted, 1, 'HTTP/1.0 with keep-alive is kept');
  });

  it('never sends on a connection once it saw the upstream close it (FIN right after each response, unannounced)', async () => {
    // (a request sent before the FIN arrives meets a closed connection: the retryable
    // UpstreamClosedError, which the gateway's retry policy handles for idempotent requests)
    const up = await rawUpstream((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
    const pool = newPool(up.url);
    for (let i = 0; i < 10; i++) {
      const r = await send(pool, request('/')).done;
      assert.equal(r.error, undefined, `request ${i}`);
      assert.equal(r.body.toString(), 'ok');
      await up.closedCount(i + 1);
    }
    assert.equal(up.accepted, 10);
  });

  it('closes a connection with bytes after the response, or bytes nobody asked for while idle', async () => {
    let extra = false;
    const up = await rawUpstream((socket, _head, n) => {
      if (n === 0) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokSMUGGLED');
      else {
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        if (!extra) {
          extra = true;
          setImmediate(() => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale'));
        }
      }
    });
    const pool = newPool(up.url);
    assert.equal((await send(pool, request('/')).done).body.toString(), 'ok', 'the response itself is fine');
    await up.closedCount(1);
    assert.equal((await send(pool, request('/')).done).body.toString(), 'ok');
    await up.closedCount(2); // the unsolicited bytes closed that one
    const third = await send(pool, request('/')).done;
    assert.equal(third.body.toString(), 'ok', 'never the stale response');
    assert.equal(up.accepted, 3);
  });

  it('closes idle connections after the keep-alive timeout', async () => {
    const up = await rawUpstream((socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
    const pool = newPool(up.url, { keepAliveTimeoutMs: 20 });
    await send(pool, request('/')).done;
    await up.closedCount(1);
    while (pool.stats().connections > 0) await tick();
    assert.equal((await send(pool, request('/')).done).body.toString(), 'ok');
    assert.equal(up.accepted, 2);
  });
});

describe('UpstreamPool: failures', () => {
  it('refuses malformed or conflicting framing and oversize heads; the connection is dropped', async () => {
    const cases: [string, typeof UpstreamProtocolError][] = [
      ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', UpstreamProtocolError],
      ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokk', UpstreamProtocolError],
      ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok', UpstreamProtocolError],
      ['HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 2\r\n\r\nok', UpstreamProtocolError],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok', UpstreamProtocolError],
      ['NOT HTTP AT ALL\r\n\r\n', UpstreamProtocolError],
      [`HTTP/1.1 200 OK\r\nX-Big: ${'b'.repeat(5000)}\r\nContent-Length: 2\r\n\r\nok`, UpstreamHeadersTooLargeError],
      [`HTTP/1.1 200 OK\r\n${'X-A: 1\r\n'.repeat(300)}Content-Length: 2\r\n\r\nok`, UpstreamHeadersTooLargeError],
    ];
    for (const [text, kind] of cases) {
      const up = await rawUpstream((socket) => socket.write(text));
      const r = await send(newPool(up.url), request('/')).done;
      assert.ok(r.error instanceof kind, `${JSON.stringify(text.slice(0, 60))}: ${String(r.error)}`);
      assert.equal(r.status, 0, 'no head was delivered');
      await up.closedCount(1);
    }
  });

  it('reports a reset mid-body after the head, and a close before any response as retryable', async () => {
    const reset = await rawUpstream((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial', () => setImmediate(() => socket.resetAndDestroy()));
    });
    const r = await send(newPool(reset.url), request('/')).done;
    assert.equal(r.status, 200, 'the head had arrived');
    assert.ok(r.error !== undefined);
    assert.notEqual((r.error as { retryable?: boolean }).retryable, true, 'a response that started is not retryable');

    const silent = await rawUpstream((socket) => socket.end());
    const closed = await send(newPool(silent.url), request('/')).done;
    assert.ok(closed.error instanceof UpstreamClosedError);
    assert.equal(closed.error.retryable, true);

    const refused = await send(newPool('http://127.0.0.1:1'), request('/')).done;
    assert.equal((refused.error as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  });

  it('times out waiting for the head, and when the body stalls; the connection is closed either way', async () => {
    const mute = await rawUpstream(() => undefined);
    const r = await send(newPool(mute.url), request('/', { headersTimeoutMs: 30 })).done;
    assert.ok(r.error instanceof UpstreamHeadersTimeoutError);
    await mute.closedCount(1);

    const stall = await rawUpstream((socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
    const s = await send(newPool(stall.url), request('/', { bodyTimeoutMs: 30 })).done;
    assert.equal(s.status, 200);
    assert.ok(s.error instanceof UpstreamBodyTimeoutError);
    assert.equal(s.body.toString(), 'abc');
    await stall.closedCount(1);
  });

  it('a queued request times out too, and gets out of the queue', async () => {
    const mute = await rawUpstream(() => undefined);
    const pool = newPool(mute.url, { connections: 1 });
    const first = send(pool, request('/', { headersTimeoutMs: 60_000 }));
    const queued = await send(pool, request('/', { headersTimeoutMs: 20 })).done;
    assert.ok(queued.error instanceof UpstreamHeadersTimeoutError);
    assert.equal(pool.stats().queued, 0);
    first.call.abort(new Error('done'));
    assert.equal((await first.done).error?.message, 'done');
  });

  it('abort (the client went away) mid-body destroys the connection and reports the reason', async () => {
    const up = await rawUpstream((socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nfirst part'));
    const { call, handler, done } = send(newPool(up.url), request('/'));
    handler.onChunk = () => call.abort(new Error('client gone'));
    const r = await done;
    assert.equal(r.error?.message, 'client gone');
    await up.closedCount(1);
    call.abort(new Error('again')); // no-op once finished
  });

  it('after close(), idle connections are gone and new requests fail', async () => {
    const up = await httpUpstream((_req, res) => res.end('ok'));
    const pool = new UpstreamPool(up.url);
    await send(pool, request('/')).done;
    await pool.close();
    assert.equal(pool.stats().connections, 0);
    assert.ok((await send(pool, request('/')).done).error instanceof PoolClosedError);
  });
});

describe('UpstreamPool: backpressure and bodies', () => {
  it('a paused response holds the upstream back; resumed, every byte arrives in order', async () => {
    const total = 64 * 1024 * 1024;
    let written = 0;
    const up = await httpUpstream((_req, res) => {
      res.writeHead(200, { 'content-length': total });
      const pump = (): void => {
        while (written < total) {
          const chunk = Buffer.allocUnsafe(65_536);
          for (let i = 0; i < chunk.length; i++) chunk[i] = (written + i) % 251;
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    const handler = new Collect();
    handler.pauseAt = 1;
    let intact = true;
    let seen = 0;
    const check = handler.onResponseData.bind(handler);
    handler.onResponseData = (chunk, last) => {
      for (let i = 0; i < chunk.length; i += 997) if (chunk[i] !== (seen + i) % 251) intact = false;
      seen += chunk.length;
      return check(chunk, last);
    };
    const { call, done } = send(newPool(up.url), request('/', { bodyTimeoutMs: 0 }), handler);
    while (!handler.paused) await tick();
    let before = -1;
    while (before !== written) {
      before = written;
      for (let i = 0; i < 20; i++) await tick();
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(written < total / 2, `the upstream wrote ${written} of ${total} bytes while the response was paused`);
    call.resume();
    const r = await done;
    assert.equal(r.error, undefined);
    assert.equal(r.body.length, total);
    assert.ok(intact);
  });

  it('streams a request body with a length, and one without (chunked), byte for byte', async () => {
    const up = await httpUpstream((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => res.end(`${req.headers['transfer-encoding'] ?? 'length'}:${Buffer.concat(chunks).toString()}`));
    });
    const pool = newPool(up.url);
    const withLength = await send(pool, request('/', { body: Readable.from([Buffer.from('hello '), Buffer.from('world')]) }, 'POST', 'content-length: 11\r\n')).done;
    assert.equal(withLength.body.toString(), 'length:hello world');
    const parts = ['a', 'bb', '', 'ccc'];
    const chunked = await send(pool, request('/', { body: Readable.from(parts.map((p) => Buffer.from(p))), chunked: true }, 'POST', 'transfer-encoding: chunked\r\n')).done;
    assert.equal(chunked.body.toString(), 'chunked:abbccc');
    assert.equal(up.connections(), 1, 'the connection is reused after a request body');
  });

  it('a request body is sent no faster than the upstream reads it', async () => {
    const total = 64 * 1024 * 1024;
    let upstreamReq: IncomingMessage | undefined;
    const up = await httpUpstream((req, res) => {
      upstreamReq = req;
      req.pause();
      let bytes = 0;
      req.on('data', (c: Buffer) => void (bytes += c.length));
      req.on('end', () => res.end(String(bytes)));
    });
    let produced = 0;
    const chunk = Buffer.alloc(65_536, 1);
    const body = new Readable({
      read() {
        if (produced >= total) this.push(null);
        else {
          produced += chunk.length;
          this.push(chunk);
        }
      },
    });
    const { done } = send(newPool(up.url), request('/', { body }, 'POST', `content-length: ${total}\r\n`));
    while (upstreamReq === undefined) await tick();
    let before = -1;
    while (before !== produced) {
      before = produced;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(produced < total / 2, `${produced} of ${total} bytes were pulled while the upstream read nothing`);
    upstreamReq.resume();
    assert.equal((await done).body.toString(), String(total));
  });

  it('an answer before the request body ended: delivered, the connection dropped, the rest of the body drained', async () => {
    const up = await httpUpstream((_req, res) => res.end('too big'));
    const pool = newPool(up.url);
    const body = new PassThrough();
    body.write(Buffer.alloc(1024));
    const r = await send(pool, request('/', { body }, 'POST', 'content-length: 100000000\r\n')).done;
    assert.equal(r.body.toString(), 'too big');
    body.end(Buffer.alloc(1024));
    if (!body.readableEnded) await once(body, 'end');
    assert.equal((await send(pool, request('/')).done).body.toString(), 'too big');
    assert.equal(up.connections(), 2);
  });

  it('a request body that fails midway fails the call and closes the connection', async () => {
    let upstreamClosed: Promise<unknown> | undefined;
    const up = await httpUpstream((req) => {
      req.on('error', () => undefined); // ECONNRESET: the request was cut, as it should be
      upstreamClosed = new Promise((resolve) => req.on('close', resolve)); // (events.once would reject on that error)
    });
    const body = new PassThrough();
    const { done } = send(newPool(up.url), request('/', { body }, 'POST', 'content-length: 1000\r\n'));
    body.write('some');
    while (upstreamClosed === undefined) await tick();
    body.destroy(new Error('client reset'));
    assert.ok((await done).error instanceof RequestBodyAbortedError);
    await upstreamClosed;
  });
});

describe('UpstreamPool: https', () => {
  it('talks TLS to an https origin and reuses the connection', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-tls-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
    } catch {
      t.skip('openssl is not available');
      return;
    }
    const cert = readFileSync(join(dir, 'cert.pem'));
    let connections = 0;
    const server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (req, res) => res.end(`secure ${req.url}`));
    server.on('secureConnection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }));
    const pool = newPool(`https://localhost:${(server.address() as AddressInfo).port}`, { tls: { ca: cert } });
    for (let i = 0; i < 3; i++) assert.equal((await send(pool, request(`/${i}`)).done).body.toString(), `secure /${i}`);
    assert.equal(connections, 1);
  });
});
