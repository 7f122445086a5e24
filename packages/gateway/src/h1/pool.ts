/**
 * The gateway's upstream HTTP/1.1 client: one keep-alive pool of `net.Socket`
 * connections per instance origin, one request at a time per connection (no
 * pipelining), built for a proxy's data path:
 *
 * - the request head is one pre-built `latin1` string written in one call
 *   (heads written in the same loop pass are flushed together at its end);
 *   a body (`Content-Length`, or chunked when the client's length is unknown)
 *   is streamed after it with backpressure;
 * - responses go through the strict `ResponseParser`; plain connections read
 *   into one shared buffer (`onread`: no stream machinery, no allocation per
 *   read); body bytes are copied out of it once, into the chunk handed on;
 * - the handler pauses the response by returning false (a held 5xx, a full
 *   client socket) and `resume()`s it; a connection goes back to the pool only
 *   after a complete response with keep-alive, its request body fully sent
 *   and no stray byte after it; bytes arriving on an idle connection close it;
 * - the head timeout (the deadline) covers queueing, connecting and waiting,
 *   but does not fire while the request body is still being sent; it is one
 *   timer per connection, re-armed per request. The body idle timeout is
 *   checked by a sweep every 500 ms and does not run while the handler holds
 *   the response paused. Idle connections close after the keep-alive timeout
 *   (4 s, or 1 s less than the upstream's `Keep-Alive: timeout=` hint);
 * - `abort(reason)` (client gone, deadline, a discarded held response) destroys
 *   the connection and reports `reason` to the handler's `onResponseError`.
 *
 * Active health checks keep using undici; this client only
 * carries proxied requests.
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { ResponseParser, UpstreamClosedError, type ParserLimits, type ParserSink } from './parser.js';

/** One request for `UpstreamPool.request`. */
export interface UpstreamRequest {
  /** The complete request head in `latin1`: request line, fields, the empty line. */
  readonly head: string;
  /** A HEAD request: the response has no body whatever its head says. */
  readonly isHead: boolean;
  /** Streamed after the head, or null (the gateway passes the client's `IncomingMessage`). */
  readonly body: Readable | null;
  /** Frame the body with the chunked coding (the head then says `transfer-encoding: chunked`). */
  readonly chunked: boolean;
  /** Milliseconds until the response head must have arrived (0: none). */
  readonly headersTimeoutMs: number;
  /** Milliseconds of silence allowed while the response body streams (0: none). */
  readonly bodyTimeoutMs: number;
}

/** Receives one response. A `false` return pauses it until `UpstreamCall.resume()`. */
export interface ResponseHandler {
  /** The final head, hop-by-hop fields removed; `contentLength` -1 when absent. */
  onResponseHead(status: number, headers: string[], contentLength: number): boolean;
  /** A body chunk (the handler's to keep); `last` when it completes a `Content-Length` body (`onResponseEnd` still follows). */
  onResponseData(chunk: Buffer, last: boolean): boolean;
  onResponseEnd(): void;
  /** Once, instead of `onResponseEnd`: transport or protocol failure, timeout, or the `abort` reason. */
  onResponseError(error: Error): void;
}

/** No response head within the deadline. */
export class UpstreamHeadersTimeoutError extends Error {
  readonly code = 'BULWARK_UPSTREAM_HEADERS_TIMEOUT';
  readonly retryable = false;
}

/** The response body stalled longer than the idle timeout. */
export class UpstreamBodyTimeoutError extends Error {
  readonly code = 'BULWARK_UPSTREAM_BODY_TIMEOUT';
  readonly retryable = false;
}

/** The client's request body ended early (client gone, or its stream failed). */
export class RequestBodyAbortedError extends Error {
  readonly code = 'BULWARK_REQUEST_BODY_ABORTED';
  readonly retryable = false;
}

/** The pool was closed before the request got a connection. */
export class PoolClosedError extends Error {
  readonly code = 'BULWARK_UPSTREAM_POOL_CLOSED';
  readonly retryable = false;
}

export interface UpstreamPoolOptions {
  /** Most connections open at once; further requests wait in order. Default 128. */
  connections?: number;
  /** Bytes of a response head (and of trailers). Default 16 KiB. */
  maxHeaderSize?: number;
  /** Fields per response head. Default 256. */
  maxHeaderCount?: number;
  /** Idle connections close after this long. Default 4 000 ms. */
  keepAliveTimeoutMs?: number;
  /** Extra `tls.connect` options for an `https:` origin (a private CA, ...). */
  tls?: ConnectionOptions;
}

const SWEEP_MS = 500;

/**
 * Request heads are not written one by one as requests come in: each socket
 * is corked at its first write of a loop pass and all are flushed together at
 * the end of it (`setImmediate`). An upstream process woken by the first
 * write then finds the others already there instead of being woken once per
 * request (on a small VM, where a wake-up costs more than parsing a request,
 * this saved ~2 µs of upstream CPU per request and gave ~4 % more
 * throughput). The delay is bounded by the rest of that loop pass; a first
 * body chunk that comes before the flush leaves in the same write.
 */
let corked: Socket[] = [];
let flushScheduled = false;
function flushCorked(): void {
  flushScheduled = false;
  const list = corked;
  corked = [];
  for (const socket of list) socket.uncork();
}
function corkUntilFlush(socket: Socket): void {
  if (socket.writableCorked > 0) return;
  socket.cork();
  corked.push(socket);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushCorked);
  }
}
const EMPTY = Buffer.alloc(0);
/**
 * The read buffer of every plain connection: each read is parsed and handled
 * synchronously in its callback, and anything kept past it is copied.
 */
const sharedReadBuffer = Buffer.allocUnsafe(64 * 1024);

/** One request in flight (or waiting for a connection). */
export class UpstreamCall {
  /** @internal */ conn: Connection | undefined = undefined;
  /** @internal */ finished = false;
  /** @internal while queued: when it was queued, and its own head timer */
  queuedAt = 0;
  private queueTimer: NodeJS.Timeout | undefined = undefined;

  constructor(
    /** @internal */ readonly req: UpstreamRequest,
    /** @internal */ readonly handler: ResponseHandler,
  ) {}

  /** Stops the request: the connection (if any) is destroyed and `reason` reported to `onResponseError`. No-op once finished. */
  abort(reason: Error): void {
    this.fail(reason);
  }

  /** Continues a response the handler paused. */
  resume(): void {
    this.conn?.resume(this);
  }

  /** @internal waits for a connection; the head timeout runs from now */
  queue(): void {
    this.queuedAt = performance.now();
    if (this.req.headersTimeoutMs > 0) {
      this.queueTimer = setTimeout(() => this.fail(headersTimeout(this.req.headersTimeoutMs)), this.req.headersTimeoutMs);
      this.queueTimer.unref();
    }
  }

  /** @internal leaves the queue: milliseconds left of the head timeout (0: none) */
  dequeue(): number {
    if (this.queueTimer === undefined) return 0;
    clearTimeout(this.queueTimer);
    this.queueTimer = undefined;
    return Math.max(1, Math.ceil(this.req.headersTimeoutMs - (performance.now() - this.queuedAt)));
  }

  /** @internal */
  fail(error: Error): void {
    if (this.finished) return;
    this.finished = true;
    if (this.queueTimer !== undefined) clearTimeout(this.queueTimer);
    const conn = this.conn;
    this.conn = undefined;
    conn?.abandon(this);
    this.handler.onResponseError(error);
  }
}

function headersTimeout(ms: number): UpstreamHeadersTimeoutError {
  return new UpstreamHeadersTimeoutError(`no response head from the upstream within ${ms} ms`);
}

/** A keep-alive pool of HTTP/1.1 connections to one origin (`http:` or `https:`). */
export class UpstreamPool {
  readonly origin: string;
  /** `host: <host[:port]>` and CRLF, for requests that do not carry the client's Host. */
  readonly hostLine: string;
  /** @internal */ readonly host: string;
  /** @internal */ readonly port: number;
  /** @internal */ readonly tls: boolean;
  /** @internal */ readonly limits: ParserLimits;
  /** @internal */ readonly keepAliveMs: number;
  /** @internal */ readonly tlsOptions: ConnectionOptions | undefined;
  private readonly max: number;
  private readonly all = new Set<Connection>();
  private readonly idle: Connection[] = [];
  private queue: (UpstreamCall | undefined)[] = [];
  private queueHead = 0;
  private sweeper: NodeJS.Timeout | undefined = undefined;
  private closed = false;
  private onDrained: (() => void) | undefined = undefined;

  constructor(origin: string, options: UpstreamPoolOptions = {}) {
    const url = new URL(origin);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`upstream origin must be http(s), got ${origin}`);
    this.origin = url.origin;
    this.hostLine = `host: ${url.host}\r\n`;
    this.tls = url.protocol === 'https:';
    this.host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.port = url.port === '' ? (this.tls ? 443 : 80) : Number(url.port);
    this.max = options.connections ?? 128;
    this.limits = { maxHeaderSize: options.maxHeaderSize ?? 16 * 1024, maxHeaderCount: options.maxHeaderCount ?? 256 };
    this.keepAliveMs = options.keepAliveTimeoutMs ?? 4_000;
    this.tlsOptions = options.tls;
  }

  /** Sends `req`; the response goes to `handler`. */
  request(req: UpstreamRequest, handler: ResponseHandler): UpstreamCall {
    const call = new UpstreamCall(req, handler);
    if (this.closed) {
      process.nextTick(() => call.fail(new PoolClosedError(`the pool of ${this.origin} is closed`)));
      return call;
    }
    const conn = this.acquire();
    if (conn !== undefined) conn.assign(call, call.req.headersTimeoutMs);
    else if (this.all.size < this.max) this.open().assign(call, call.req.headersTimeoutMs);
    else {
      call.queue();
      this.queue.push(call);
    }
    return call;
  }

  /** Connections open (busy or idle), idle ones, requests waiting. */
  stats(): { connections: number; idle: number; queued: number } {
    let queued = 0;
    for (let i = this.queueHead; i < this.queue.length; i++) if (this.queue[i]?.finished === false) queued++;
    return { connections: this.all.size, idle: this.idle.length, queued };
  }

  /** Refuses new requests; closes idle connections now and the others once their request is done (waiting requests are still served). */
  close(): Promise<void> {
    this.closed = true;
    for (const conn of this.idle.splice(0)) conn.destroy();
    if (this.all.size === 0) {
      this.stopSweeper();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const previous = this.onDrained;
      this.onDrained = () => {
        previous?.();
        resolve();
      };
    });
  }

  private acquire(): Connection | undefined {
    const idle = this.idle;
    while (idle.length > 0) {
      const conn = idle.pop()!;
      // closed or closing (a FIN or an error while idle destroys at once; 'close' comes later)
      if (conn.closed || conn.socket.destroyed) continue;
      if (performance.now() - conn.idleSince >= conn.keepAliveMs) {
        conn.destroy();
        continue;
      }
      return conn;
    }
    return undefined;
  }

  private open(): Connection {
    const conn = new Connection(this);
    this.all.add(conn);
    if (this.sweeper === undefined) {
      this.sweeper = setInterval(this.sweep, SWEEP_MS);
      this.sweeper.unref();
    }
    return conn;
  }

  /** @internal a connection finished a response and may carry another */
  release(conn: Connection): void {
    const next = this.nextWaiting();
    if (next !== undefined) {
      conn.assign(next, next.dequeue());
      return;
    }
    if (this.closed) {
      conn.destroy();
      return;
    }
    conn.idleSince = performance.now();
    this.idle.push(conn);
  }

  /** @internal a connection closed */
  closedConnection(conn: Connection): void {
    this.all.delete(conn);
    const at = this.idle.indexOf(conn);
    if (at !== -1) this.idle.splice(at, 1);
    // a slot is free: a waiting request gets a new connection
    if (this.all.size < this.max) {
      const next = this.nextWaiting();
      if (next !== undefined) this.open().assign(next, next.dequeue());
    }
    if (this.all.size === 0 && this.closed) {
      this.stopSweeper();
      const drained = this.onDrained;
      this.onDrained = undefined;
      drained?.();
    }
  }

  private nextWaiting(): UpstreamCall | undefined {
    const q = this.queue;
    while (this.queueHead < q.length) {
      const call = q[this.queueHead];
      q[this.queueHead++] = undefined;
      if (call !== undefined && !call.finished) return call;
    }
    if (this.queueHead > 0) {
      this.queue = [];
      this.queueHead = 0;
    }
    return undefined;
  }

  private stopSweeper(): void {
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private readonly sweep = (): void => {
    const now = performance.now();
    for (const conn of this.all) conn.sweep(now);
  };
}

/** One connection: socket, parser, and the request it carries (at most one). */
class Connection implements ParserSink {
  readonly socket: Socket;
  readonly parser: ResponseParser;
  call: UpstreamCall | undefined = undefined;
  closed = false;
  idleSince = 0;
  keepAliveMs: number;
  /** False once anything makes the connection unfit for another request. */
  private reusable = true;
  private lastRead = 0;
  /** The handler paused the response: reading is stopped, unparsed bytes kept. */
  private readPaused = false;
  private saved: Buffer | undefined = undefined;
  /** What `run` is parsing may be kept as is (else it is the shared read buffer). */
  private owned = false;
  /** Inside `run` (the parser is executing). */
  private running = false;
  private eofWhilePaused = false;
  private body: Readable | undefined = undefined;
  private bodyChunked = false;
  /** The request body (if any) was sent completely. */
  bodyDone = true;
  private bodyPaused = false;
  /**
   * The head timeout of the current call: one timer per connection, re-armed
   * with `refresh()` (no allocation) while the timeout stays the same. It is
   * not stopped when the head arrives: a late firing finds nothing to do.
   */
  private headTimer: NodeJS.Timeout | undefined = undefined;
  private headTimerMs = 0;
  private waitingForHead = false;

  constructor(private readonly pool: UpstreamPool) {
    this.keepAliveMs = pool.keepAliveMs;
    this.parser = new ResponseParser(this, pool.limits);
    if (pool.tls) {
      const servername = isIP(pool.host) === 0 ? pool.host : undefined;
      this.socket = tlsConnect({ ...pool.tlsOptions, host: pool.host, port: pool.port, ALPNProtocols: ['http/1.1'], ...(servername === undefined ? {} : { servername }) });
      this.socket.setNoDelay(true);
      this.socket.on('data', (chunk: Buffer) => {
        if (this.call === undefined) {
          this.destroy();
          return;
        }
        this.lastRead = performance.now();
        this.run(chunk, chunk.length, true);
      });
    } else {
      this.socket = netConnect({ host: pool.host, port: pool.port, noDelay: true, onread: { buffer: sharedReadBuffer, callback: this.onRead } });
    }
    this.socket.on('end', this.onEnd);
    this.socket.on('error', this.onError);
    this.socket.on('close', this.onClose);
    this.socket.on('drain', this.onDrain);
  }

  /** Sends `call` on this connection; `headTimeoutMs` (0: none) bounds the wait for its head. */
  assign(call: UpstreamCall, headTimeoutMs: number): void {
    this.call = call;
    call.conn = this;
    this.parser.reset(call.req.isHead);
    this.waitingForHead = headTimeoutMs > 0;
    if (headTimeoutMs > 0) {
      if (this.headTimer !== undefined && this.headTimerMs === headTimeoutMs) this.headTimer.refresh();
      else {
        if (this.headTimer !== undefined) clearTimeout(this.headTimer);
        this.headTimer = setTimeout(this.onHeadTimeout, headTimeoutMs);
        this.headTimer.unref();
        this.headTimerMs = headTimeoutMs;
      }
    }
    const req = call.req;
    corkUntilFlush(this.socket);
    this.socket.write(req.head, 'latin1');
    if (req.body !== null) {
      this.body = req.body;
      this.bodyChunked = req.chunked;
      this.bodyDone = false;
      req.body.on('data', this.onBodyData);
      req.body.on('end', this.onBodyEnd);
      req.body.on('error', this.onBodyAborted);
      req.body.on('close', this.onBodyAborted);
    }
  }

  /** Destroys the connection on behalf of a call that failed or was aborted. */
  abandon(call: UpstreamCall): void {
    if (this.call !== call) return;
    this.call = undefined;
    this.destroy();
  }

  destroy(): void {
    this.reusable = false;
    this.detachBody();
    this.socket.destroy();
  }

  resume(call: UpstreamCall): void {
    if (this.running) {
      // from inside a parser callback: continue once that parse has returned
      queueMicrotask(() => this.resume(call));
      return;
    }
    if (this.call !== call || !this.readPaused) return;
    this.readPaused = false;
    this.parser.paused = false;
    const saved = this.saved;
    this.saved = undefined;
    if (saved === undefined) this.run(EMPTY, 0, true);
    else this.run(saved, saved.length, true);
    if (this.closed || this.readPaused) return;
    if (this.eofWhilePaused) {
      this.eofWhilePaused = false;
      this.onEnd();
      return;
    }
    if (!this.socket.destroyed) this.socket.resume();
  }

  sweep(now: number): void {
    const call = this.call;
    if (call === undefined) {
      if (!this.closed && now - this.idleSince >= this.keepAliveMs) this.destroy();
      return;
    }
    const timeout = call.req.bodyTimeoutMs;
    if (timeout > 0 && this.parser.headDone && !this.readPaused && now - this.lastRead > timeout) {
      call.fail(new UpstreamBodyTimeoutError(`upstream response body stalled for more than ${timeout} ms`));
    }
  }

  // ---- reading ----

  private readonly onRead = (n: number, buf: Buffer): boolean => {
    if (this.call === undefined) {
      // bytes nobody asked for: this connection is out of step
      this.destroy();
      return false;
    }
    this.lastRead = performance.now();
    return this.run(buf, n, false);
  };

  /** Parses `buf[0, end)`; true to keep reading. `owned`: `buf` may be kept without copying (not the shared read buffer). */
  private run(buf: Buffer, end: number, owned: boolean): boolean {
    const call = this.call!;
    this.owned = owned;
    let off: number;
    this.running = true;
    try {
      off = this.parser.execute(buf, 0, end);
    } catch (error) {
      this.reusable = false;
      call.fail(error as Error);
      return false;
    } finally {
      this.running = false;
    }
    if (this.call !== call) return false; // aborted from a handler callback
    if (this.parser.done) {
      this.complete(call, off < end);
      return true;
    }
    if (this.parser.paused) {
      if (off < end) this.saved = owned ? buf.subarray(off, end) : Buffer.from(buf.subarray(off, end));
      this.readPaused = true;
      this.socket.pause();
      return false;
    }
    return true;
  }

  private complete(call: UpstreamCall, strayBytes: boolean): void {
    this.call = undefined;
    call.finished = true;
    call.conn = undefined;
    if (!this.bodyDone) this.reusable = false; // answered before the whole request body was sent
    const hint = this.parser.keepAliveHintMs;
    if (hint !== -1) this.keepAliveMs = Math.min(this.pool.keepAliveMs, hint - 1_000);
    if (strayBytes || !this.reusable || !this.parser.keepAlive || this.closed || this.keepAliveMs <= 0) this.destroy();
    else this.pool.release(this);
    call.handler.onResponseEnd();
  }

  // ---- ParserSink ----

  onHead(status: number, headers: string[], contentLength: number): boolean {
    const call = this.call!;
    this.waitingForHead = false;
    return call.handler.onResponseHead(status, headers, contentLength) && this.call === call;
  }

  onBody(buf: Buffer, start: number, end: number, last: boolean): boolean {
    const call = this.call;
    if (call === undefined) return false;
    let chunk: Buffer;
    if (this.owned) chunk = start === 0 && end === buf.length ? buf : buf.subarray(start, end);
    else {
      // out of the shared read buffer, which the next read overwrites
      chunk = Buffer.allocUnsafe(end - start);
      buf.copy(chunk, 0, start, end);
    }
    return call.handler.onResponseData(chunk, last) && this.call === call;
  }

  onComplete(): void {
    // handled by run() once the parser returns (it needs to know what followed the message)
  }

  // ---- socket events ----

  private readonly onEnd = (): void => {
    this.reusable = false;
    const call = this.call;
    if (call === undefined) {
      this.destroy();
      return;
    }
    if (this.readPaused) {
      this.eofWhilePaused = true;
      return;
    }
    try {
      this.parser.finish();
    } catch (error) {
      call.fail(error as Error);
      return;
    }
    this.run(EMPTY, 0, true);
  };

  private readonly onError = (error: Error): void => {
    this.reusable = false;
    this.call?.fail(error);
  };

  private readonly onHeadTimeout = (): void => {
    const call = this.call;
    if (call === undefined || !this.waitingForHead) return;
    // still sending the request body: the upstream cannot be expected to have answered
    if (!this.bodyDone) {
      this.headTimer?.refresh();
      return;
    }
    call.fail(headersTimeout(this.headTimerMs));
  };

  private readonly onClose = (): void => {
    this.closed = true;
    if (this.headTimer !== undefined) clearTimeout(this.headTimer);
    this.reusable = false;
    this.detachBody();
    const call = this.call;
    if (call !== undefined) call.fail(new UpstreamClosedError(this.parser.headDone));
    this.pool.closedConnection(this);
  };

  // ---- request body ----

  private readonly onBodyData = (chunk: Buffer): void => {
    if (chunk.length === 0) return;
    const socket = this.socket;
    let ok: boolean;
    if (this.bodyChunked) {
      socket.cork();
      socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      ok = socket.write('\r\n', 'latin1');
      socket.uncork();
    } else ok = socket.write(chunk);
    if (!ok) {
      this.bodyPaused = true;
      this.body!.pause();
    }
  };

  private readonly onDrain = (): void => {
    if (this.bodyPaused) {
      this.bodyPaused = false;
      this.body?.resume();
    }
  };

  private readonly onBodyEnd = (): void => {
    if (this.bodyChunked) this.socket.write('0\r\n\r\n', 'latin1');
    this.bodyDone = true;
    this.detachBody();
  };

  private readonly onBodyAborted = (): void => {
    if (this.bodyDone) return;
    this.detachBody();
    const call = this.call;
    if (call !== undefined) call.fail(new RequestBodyAbortedError('the client request body ended before it was complete'));
    else this.destroy();
  };

  /**
   * Stops forwarding the request body. Nobody else reads it (a body is never
   * retried), so the client's remaining bytes are let flow to nowhere: its
   * connection can then carry its next request.
   */
  private detachBody(): void {
    const body = this.body;
    if (body === undefined) return;
    this.body = undefined;
    this.bodyPaused = false;
    body.off('data', this.onBodyData);
    body.off('end', this.onBodyEnd);
    body.off('error', this.onBodyAborted);
    body.off('close', this.onBodyAborted);
    if (!body.readableEnded) body.resume();
  }
}
