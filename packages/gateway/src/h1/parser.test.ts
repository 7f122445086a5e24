import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ResponseParser, UpstreamClosedError, UpstreamHeadersTooLargeError, UpstreamProtocolError, type ParserSink } from './parser.js';

interface Parsed {
  status: number;
  headers: string[];
  contentLength: number;
  body: string;
  complete: boolean;
  lastFlags: boolean[];
}

/** A sink that records everything (body chunks copied: they are views of the input). */
class Recorder implements ParserSink {
  out: Parsed = { status: 0, headers: [], contentLength: -2, body: '', complete: false, lastFlags: [] };
  heads = 0;
  pauseOnHead = false;
  onHead(status: number, headers: string[], contentLength: number): boolean {
    this.heads++;
    Object.assign(this.out, { status, headers, contentLength });
    return !this.pauseOnHead;
  }
  onBody(buf: Buffer, start: number, end: number, last: boolean): boolean {
    this.out.body += buf.toString('latin1', start, end);
    this.out.lastFlags.push(last);
    return true;
  }
  onComplete(): void {
    this.out.complete = true;
  }
}

const LIMITS = { maxHeaderSize: 1024, maxHeaderCount: 20 };

/** Feeds `pieces` one after another; returns what was parsed and how many bytes followed the message. */
function parse(pieces: readonly (string | Buffer)[], options: { head?: boolean; eof?: boolean; limits?: typeof LIMITS } = {}): Parsed & { rest: number; keepAlive: boolean; hint: number } {
  const sink = new Recorder();
  const parser = new ResponseParser(sink, options.limits ?? LIMITS);
  parser.reset(options.head === true);
  let rest = 0;
  for (const piece of pieces) {
    const buf = typeof piece === 'string' ? Buffer.from(piece, 'latin1') : piece;
    if (parser.done) {
      rest += buf.length;
      continue;
    }
    const at = parser.execute(buf, 0);
    rest += buf.length - at;
  }
  if (options.eof === true && !parser.done) {
    parser.finish();
    parser.execute(Buffer.alloc(0), 0);
  }
  assert.equal(sink.heads <= 1, true, 'one final head at most');
  return { ...sink.out, rest, keepAlive: parser.keepAlive, hint: parser.keepAliveHintMs };
}

/** Every way of cutting `text` in two, and byte by byte: each must parse exactly like the whole. */
function splits(text: string): string[][] {
  const out: string[][] = [[text], [...text]];
  for (let i = 1; i < text.length; i++) out.push([text.slice(0, i), text.slice(i)]);
  return out;
}

function rejects(text: string, kind: typeof UpstreamProtocolError = UpstreamProtocolError, pattern?: RegExp): void {
  for (const pieces of [[text], [...text]]) {
    assert.throws(
      () => parse(pieces, { eof: true }),
      (e: unknown) => e instanceof kind && (pattern === undefined || pattern.test((e as Error).message)),
      `refused: ${JSON.stringify(text.slice(0, 80))}`,
    );
  }
}

const CL_RESPONSE = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nX-Empty:\r\nX-Spaces:   a b  \r\n\r\nhello world';
const CHUNKED_RESPONSE = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n5;ext=1;q="x"\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n';

describe('ResponseParser: framing', () => {
  it('Content-Length: head fields as sent (trimmed), the body, then complete; the same at every split', () => {
    for (const pieces of splits(CL_RESPONSE)) {
      const r = parse(pieces);
      assert.equal(r.status, 200);
      assert.deepEqual(r.headers, ['Content-Type', 'text/plain', 'Content-Length', '11', 'X-Empty', '', 'X-Spaces', 'a b']);
      assert.equal(r.contentLength, 11);
      assert.equal(r.body, 'hello world');
      assert.equal(r.complete, true);
      assert.equal(r.rest, 0);
      assert.equal(r.lastFlags.at(-1), true, 'the chunk that completes the length says so');
      assert.equal(r.lastFlags.slice(0, -1).includes(true), false);
      assert.equal(r.keepAlive, true);
    }
  });

  it('chunked: extensions skipped, data joined, trailers validated and dropped; the same at every split', () => {
    for (const pieces of splits(CHUNKED_RESPONSE)) {
      const r = parse(pieces);
      assert.equal(r.body, 'hello 0123456789');
      assert.deepEqual(r.headers, ['X-A', '1'], 'Transfer-Encoding is consumed, not forwarded');
      assert.equal(r.contentLength, -1);
      assert.equal(r.complete, true);
      assert.equal(r.rest, 0);
    }
  });

  it('no length and no chunking: the body runs to the close, and the connection is not kept', () => {
    const text = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end';
    for (const pieces of splits(text)) {
      const open = parse(pieces);
      assert.equal(open.complete, false, 'not complete before the close');
      const r = parse(pieces, { eof: true });
      assert.equal(r.body, 'until the end');
      assert.equal(r.complete, true);
      assert.equal(r.keepAlive, false);
    }
  });

  it('skips 1xx interim responses (their fields too) and parses the final one', () => {
    const text = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok';
    for (const pieces of splits(text)) {
      const r = parse(pieces);
      assert.equal(r.status, 201);
      assert.deepEqual(r.headers, ['Content-Length', '2']);
      assert.equal(r.body, 'ok');
      assert.equal(r.complete, true);
    }
  });

  it('HEAD, 204 and 304 have no body whatever their head says; the bytes after belong to the next message', () => {
    const head = parse(['HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nHTTP/1.1 200'], { head: true });
    assert.equal(head.complete, true);
    assert.equal(head.body, '');
    assert.equal(head.contentLength, 1000, 'the length of the representation is still reported');
    assert.equal(head.rest, 'HTTP/1.1 200'.length, 'nothing after the head was taken as a body');
    const headChunked = parse(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'], { head: true });
    assert.equal(headChunked.complete, true);
    for (const status of [204, 304]) {
      const r = parse([`HTTP/1.1 ${status} X\r\nContent-Length: 5\r\n\r\nnext!`]);
      assert.equal(r.complete, true);
      assert.equal(r.body, '');
      assert.equal(r.rest, 5);
    }
    const zero = parse(['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n']);
    assert.equal(zero.complete, true, 'a zero length completes with the head');
  });

  it('status line without a reason phrase, HTTP/1.0 and keep-alive rules', () => {
    assert.equal(parse(['HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n']).status, 200);
    assert.equal(parse(['HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n']).status, 404);
    assert.equal(parse(['HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n']).keepAlive, false, 'HTTP/1.0 closes by default');
    assert.equal(parse(['HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n']).keepAlive, true);
    assert.equal(parse(['HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n']).keepAlive, false);
    assert.equal(parse(['HTTP/1.1 200 OK\r\nConnection: x-a, Close\r\nContent-Length: 0\r\n\r\n']).keepAlive, false);
  });

  it('drops connection-level fields and those Connection names; reads the Keep-Alive timeout hint', () => {
    const r = parse([
      'HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=7, max=100\r\nX-Hop: secret\r\nProxy-Connection: x\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\nProxy-Authenticate: Basic\r\nX-Kept: yes\r\nContent-Length: 0\r\n\r\n',
    ]);
    assert.deepEqual(r.headers, ['X-Kept', 'yes', 'Content-Length', '0']);
    assert.equal(r.hint, 7000);
    assert.equal(parse(['HTTP/1.1 200 OK\r\nKeep-Alive: max=5; Timeout=3\r\nContent-Length: 0\r\n\r\n']).hint, 3000);
    assert.equal(parse(['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n']).hint, -1);
  });

  it('reads only buf[start, end): stale bytes after what was read (a reused read buffer) are never parsed', () => {
    const sink = new Recorder();
    const parser = new ResponseParser(sink, LIMITS);
    parser.reset(false);
    const stale = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello', 'latin1');
    // first read: the head is incomplete, and the bytes after it (stale) hold an end of head
    const first = 'HTTP/1.1 200 OK\r\nContent-Len';
    stale.write(first, 0, 'latin1');
    assert.equal(parser.execute(stale, 0, first.length), first.length);
    assert.equal(sink.heads, 0, 'no head from stale bytes');
    const rest = Buffer.from('gth: 5\r\n\r\nhelloSTALE-STALE', 'latin1');
    const at = parser.execute(rest, 0, rest.length - 'STALE-STALE'.length);
    assert.equal(sink.out.body, 'hello');
    assert.equal(sink.out.complete, true);
    assert.equal(at, rest.length - 'STALE-STALE'.length);
  });

  it('pauses when the sink says so, and continues from the offset it returned', () => {
    const sink = new Recorder();
    sink.pauseOnHead = true;
    const parser = new ResponseParser(sink, LIMITS);
    parser.reset(false);
    const buf = Buffer.from(CL_RESPONSE, 'latin1');
    const at = parser.execute(buf, 0);
    assert.equal(parser.paused, true);
    assert.equal(buf.toString('latin1', at), 'hello world', 'stopped right after the head');
    assert.equal(sink.out.body, '');
    parser.paused = false;
    assert.equal(parser.execute(buf, at), buf.length);
    assert.equal(sink.out.body, 'hello world');
    assert.equal(parser.done, true);
  });

  it('a message that ends right after a paused head completes once resumed, even with nothing more to read', () => {
    const sink = new Recorder();
    sink.pauseOnHead = true;
    const parser = new ResponseParser(sink, LIMITS);
    parser.reset(false);
    parser.execute(Buffer.from('HTTP/1.1 503 X\r\nContent-Length: 0\r\n\r\n', 'latin1'), 0);
    assert.equal(sink.out.complete, false);
    parser.paused = false;
    parser.execute(Buffer.alloc(0), 0);
    assert.equal(sink.out.complete, true);
  });

  it('a close before the response is complete is an error, retryable only when nothing of the response arrived', () => {
    assert.throws(() => parse(['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort'], { eof: true }), (e: unknown) => e instanceof UpstreamClosedError && !e.retryable);
    assert.throws(() => parse(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab'], { eof: true }), (e: unknown) => e instanceof UpstreamClosedError && !e.retryable);
    assert.throws(() => parse(['HTTP/1.1 200 OK\r\nContent-'], { eof: true }), (e: unknown) => e instanceof UpstreamClosedError && e.retryable);
    assert.throws(() => parse([], { eof: true }), (e: unknown) => e instanceof UpstreamClosedError && e.retryable);
  });
});

describe('ResponseParser: refusals', () => {
  it('malformed status lines', () => {
    rejects('HTTP/2.0 200 OK\r\n\r\n');
    rejects('HTTP/1.1 20 OK\r\n\r\n');
    rejects('HTTP/1.1 099 OK\r\n\r\n');
    rejects('HTTP/1.1 600 OK\r\n\r\n');
    rejects('HTTP/1.1 2000 OK\r\n\r\n');
    rejects('http/1.1 200 OK\r\n\r\n');
    rejects('HTTP/1.1 200 O\x00K\r\n\r\n');
    rejects('ICY 200 OK\r\n\r\n');
    rejects('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n', UpstreamProtocolError, /switched protocols/);
  });

  it('bare LF line endings, obs-fold, whitespace before the colon, bad names and values', () => {
    rejects('HTTP/1.1 200 OK\nContent-Length: 0\n\n\r\n\r\n');
    rejects('HTTP/1.1 200 OK\r\nX-A: 1\nX-B: 2\r\n\r\n');
    rejects('HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n', UpstreamProtocolError, /folding/);
    rejects('HTTP/1.1 200 OK\r\nX-A: 1\r\n\tfolded\r\nContent-Length: 0\r\n\r\n', UpstreamProtocolError, /folding/);
    rejects('HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n');
    rejects('HTTP/1.1 200 OK\r\nX(A): 1\r\n\r\n');
    rejects('HTTP/1.1 200 OK\r\n: 1\r\n\r\n');
    rejects('HTTP/1.1 200 OK\r\nNoColon\r\n\r\n');
    rejects('HTTP/1.1 200 OK\r\nX-A: a\x00b\r\n\r\n');
    rejects('HTTP/1.1 200 OK\r\nX-A: a\x7fb\r\n\r\n');
    rejects('HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n');
  });

  it('conflicting or repeated framing: CL + TE, two lengths (even equal), a list of lengths, bad lengths, TE other than chunked', () => {
    rejects('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', UpstreamProtocolError, /both/);
    rejects('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n', UpstreamProtocolError, /both/);
    rejects('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello', UpstreamProtocolError, /more than once/);
    rejects('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!', UpstreamProtocolError, /more than once/);
    rejects('HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello');
    rejects('HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n');
    rejects('HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n');
    rejects('HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n');
    rejects('HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456\r\n\r\n');
    rejects('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n', UpstreamProtocolError, /Transfer-Encoding/);
    rejects('HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nx', UpstreamProtocolError, /Transfer-Encoding/);
    rejects('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', UpstreamProtocolError, /more than once/);
  });

  it('bad chunked framing', () => {
    const head = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
    rejects(`${head}g\r\nx\r\n0\r\n\r\n`);
    rejects(`${head}\r\n0\r\n\r\n`);
    rejects(`${head} 5\r\nhello\r\n0\r\n\r\n`);
    rejects(`${head}5\nhello\r\n0\r\n\r\n`);
    rejects(`${head}5\r\nhelloXX0\r\n\r\n`, UpstreamProtocolError, /CRLF/);
    rejects(`${head}5\r\nhello\r\n0\r\n\r\r\n`);
    rejects(`${head}${'0'.repeat(14)}1\r\nx\r\n0\r\n\r\n`, UpstreamProtocolError, /too large/);
    rejects(`${head}5;\x00\r\nhello\r\n0\r\n\r\n`);
    rejects(`${head}0\r\nBad Trailer: x\r\n\r\n`);
    rejects(`${head}0\r\n folded: x\r\n\r\n`);
    rejects(`${head}0\r\nX-T: a\x01\r\n\r\n`);
  });

  it('limits: head size, field count, trailer size', () => {
    rejects(`HTTP/1.1 200 OK\r\nX-Big: ${'x'.repeat(2000)}\r\nContent-Length: 0\r\n\r\n`, UpstreamHeadersTooLargeError);
    // an unterminated head is refused as soon as it outgrows the limit, not buffered forever
    assert.throws(() => parse([`HTTP/1.1 200 OK\r\nX-Big: ${'x'.repeat(1100)}`]), UpstreamHeadersTooLargeError);
    const many = Array.from({ length: 21 }, (_, i) => `X-${i}: v\r\n`).join('');
    rejects(`HTTP/1.1 200 OK\r\n${many}\r\n`, UpstreamHeadersTooLargeError, /more than 20/);
    assert.equal(parse([`HTTP/1.1 200 OK\r\n${Array.from({ length: 19 }, (_, i) => `X-${i}: v\r\n`).join('')}Content-Length: 0\r\n\r\n`]).complete, true, '20 fields are fine');
    rejects(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: ${'t'.repeat(2000)}\r\n\r\n`, UpstreamHeadersTooLargeError);
    rejects(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${'e'.repeat(2000)}\r\nx\r\n0\r\n\r\n`, UpstreamHeadersTooLargeError);
  });
});
