/**
 * A strict, incremental HTTP/1.1 response parser for the gateway's upstream
 * client (RFC 9112). It is fed whatever the socket delivers, split anywhere,
 * and calls its sink with the final response head, body slices and the end
 * of the message. Everything it does not understand is a protocol error (the
 * gateway answers 502 and drops the connection); it never guesses:
 *
 * - status line `HTTP/1.x SP 3DIGIT [SP reason] CRLF`, status 100-599;
 *   lines end in CRLF (a bare LF is refused);
 * - header names are tokens with no whitespace before the colon; values are
 *   visible characters, obs-text, SP and HTAB only; obs-fold is refused;
 *   the head (status line and fields) is bounded in bytes and in fields;
 * - framing: no body for HEAD, 1xx, 204 and 304; `Transfer-Encoding` must be
 *   exactly `chunked` (other codings, a repeated field, or together with
 *   `Content-Length` are refused); one `Content-Length` of 1-15 digits (a
 *   second one, even equal, is refused); otherwise the body runs to the close;
 * - interim 1xx responses are skipped (101 is refused: the client never asks
 *   for an upgrade); chunk extensions are skipped, trailers validated and
 *   dropped, both bounded by the head limit.
 *
 * The forwarded header list leaves out the connection-level fields
 * (`Connection` and the fields it names, `Keep-Alive`, `Proxy-Connection`,
 * `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`) and `Proxy-Authenticate`;
 * the parser reads what it needs from them (framing, keep-alive and its
 * `timeout=` hint).
 */

/** The upstream broke the protocol: the response (and the connection) are unusable. */
export class UpstreamProtocolError extends Error {
  readonly code: string = 'BULWARK_UPSTREAM_PROTOCOL';
  readonly retryable = false;
}

/** The upstream's head (or trailers) exceeded the size or field-count limit. */
export class UpstreamHeadersTooLargeError extends UpstreamProtocolError {
  override readonly code = 'BULWARK_UPSTREAM_HEADERS_TOO_LARGE';
}

/** The upstream closed the connection before the response was complete. */
export class UpstreamClosedError extends Error {
  readonly code = 'BULWARK_UPSTREAM_CLOSED';
  /** Retryable only before any of the response arrived (a stale keep-alive connection). */
  readonly retryable: boolean;
  constructor(headReceived: boolean) {
    super(headReceived ? 'upstream closed the connection before the response was complete' : 'upstream closed the connection before responding');
    this.retryable = !headReceived;
  }
}

/** What the parser reports to. A `false` return pauses the parser after that call. */
export interface ParserSink {
  /** The final (non-1xx) head. `contentLength` is -1 when the response has none. */
  onHead(status: number, headers: string[], contentLength: number): boolean;
  /** Body bytes `buf[start, end)`, valid only during the call. `last` when they complete a `Content-Length` body. */
  onBody(buf: Buffer, start: number, end: number, last: boolean): boolean;
  /** The message is complete. */
  onComplete(): void;
}

const enum S {
  Head,
  BodyLength,
  BodyClose,
  ChunkSize,
  ChunkExt,
  ChunkSizeLf,
  ChunkData,
  ChunkDataCr,
  ChunkDataLf,
  TrailerLineStart,
  TrailerName,
  TrailerValue,
  TrailerLf,
  TrailerEndLf,
  Done,
}

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

/** tchar (RFC 9110 §5.6.2). */
const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TOKEN[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TOKEN[c] = 1;
for (let c = 65; c <= 90; c++) TOKEN[c] = 1;
for (let c = 97; c <= 122; c++) TOKEN[c] = 1;
/** field-vchar / obs-text / SP / HTAB: what a field value (or reason phrase, chunk extension) may hold. */
const FIELD = new Uint8Array(256);
FIELD[HTAB] = 1;
for (let c = 0x20; c <= 0x7e; c++) FIELD[c] = 1;
for (let c = 0x80; c <= 0xff; c++) FIELD[c] = 1;
const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[48 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX[65 + c] = 10 + c;
  HEX[97 + c] = 10 + c;
}

/** What the parser does with a field: forward it, or consume or drop it (connection-level fields). */
const enum F {
  Other,
  ContentLength,
  TransferEncoding,
  Connection,
  KeepAlive,
  Drop,
}

/** True when `b[at, at + name.length)` spells `name` (lower-case letters and `-`) in any case; the bytes are known tchars. */
function nameIs(b: Buffer, at: number, name: string): boolean {
  for (let i = 0; i < name.length; i++) if ((b[at + i]! | 0x20) !== name.charCodeAt(i)) return false;
  return true;
}

/** Classifies the field name in `b[at, at + len)` without making a string of it (length and first letter first). */
function classify(b: Buffer, at: number, len: number): F {
  const first = b[at]! | 0x20;
  switch (len) {
    case 2:
      return first === 116 /* t */ && nameIs(b, at, 'te') ? F.Drop : F.Other;
    case 7:
      if (first === 116) return nameIs(b, at, 'trailer') ? F.Drop : F.Other;
      return first === 117 /* u */ && nameIs(b, at, 'upgrade') ? F.Drop : F.Other;
    case 10:
      if (first === 99 /* c */) return nameIs(b, at, 'connection') ? F.Connection : F.Other;
      return first === 107 /* k */ && nameIs(b, at, 'keep-alive') ? F.KeepAlive : F.Other;
    case 14:
      return first === 99 && nameIs(b, at, 'content-length') ? F.ContentLength : F.Other;
    case 16:
      return first === 112 /* p */ && nameIs(b, at, 'proxy-connection') ? F.Drop : F.Other;
    case 17:
      return first === 116 && nameIs(b, at, 'transfer-encoding') ? F.TransferEncoding : F.Other;
    case 18:
      return first === 112 && nameIs(b, at, 'proxy-authenticate') ? F.Drop : F.Other;
    default:
      return F.Other;
  }
}

/** The `timeout=<s>` parameter of a `Keep-Alive` field, in ms, or -1. */
function keepAliveTimeout(b: Buffer, start: number, end: number): number {
  // the usual `timeout=5` (Node) or `timeout=5, max=100`, read from the bytes
  if (end - start > 8 && nameIs(b, start, 'timeout=')) {
    let n = 0;
    let p = start + 8;
    const from = p;
    while (p < end && p - from < 9) {
      const d = b[p]! - 48;
      if (d < 0 || d > 9) break;
      n = n * 10 + d;
      p++;
    }
    if (p > from && (p === end || b[p] === 44 /* , */ || b[p] === SP || b[p] === 59 /* ; */)) return n * 1000;
  }
  const m = /(?:^|[,;\s])timeout\s*=\s*(\d{1,9})/i.exec(latin1.call(b, start, end));
  return m === null ? -1 : Number(m[1]) * 1000;
}

/** `Buffer#latin1Slice`: what `toString('latin1', start, end)` ends up calling, without its argument handling. */
const latin1 = (Buffer.prototype as unknown as { latin1Slice: (this: Buffer, start: number, end: number) => string }).latin1Slice;

export interface ParserLimits {
  /** Bytes of the status line and header fields (and of the trailer section). */
  readonly maxHeaderSize: number;
  /** Header fields per head. */
  readonly maxHeaderCount: number;
}

export class ResponseParser {
  /** Whether the connection may carry another request once this message is complete. */
  keepAlive = true;
  /** The upstream's `Keep-Alive: timeout=<s>` hint in ms, or -1. */
  keepAliveHintMs = -1;
  /** A sink call returned false: feed the rest (from the returned offset) once resumed. */
  paused = false;
  /** The head of the final response was delivered (retries are over for the caller). */
  headDone = false;
  private state = S.Head;
  private noBody = false;
  private remaining = 0;
  /** Hex digits seen of the current chunk size. */
  private sizeDigits = 0;
  /** Bytes of a partial head kept from earlier reads. */
  private partial: Buffer | undefined = undefined;
  private completeSent = false;
  /** Bytes counted against the limit in chunk extensions and trailers. */
  private extraBytes = 0;
  private readonly maxHeaderSize: number;
  private readonly maxHeaderCount: number;

  constructor(
    private readonly sink: ParserSink,
    limits: ParserLimits,
  ) {
    this.maxHeaderSize = limits.maxHeaderSize;
    this.maxHeaderCount = limits.maxHeaderCount;
  }

  /** Ready for the response to a new request; `head` when it was a HEAD request (no body, whatever the head says). */
  reset(head: boolean): void {
    this.state = S.Head;
    this.noBody = head;
    this.keepAlive = true;
    this.keepAliveHintMs = -1;
    this.paused = false;
    this.headDone = false;
    this.partial = undefined;
    this.completeSent = false;
    this.remaining = 0;
    this.sizeDigits = 0;
    this.extraBytes = 0;
  }

  /** The message is complete and `onComplete` was called. */
  get done(): boolean {
    return this.completeSent;
  }

  /** True while the body runs until the connection closes. */
  get closeDelimited(): boolean {
    return this.state === S.BodyClose;
  }

  /**
   * Parses `buf[start, end)` (`end` defaults to the buffer's length: a reused
   * read buffer is passed whole with the length read). Returns where it
   * stopped: `end` when it consumed everything, earlier when the message
   * completed (the rest does not belong to it) or a sink call paused it.
   * Throws `UpstreamProtocolError`.
   */
  execute(buf: Buffer, start: number, end: number = buf.length): number {
    let p = start;
    while (!this.paused) {
      const state = this.state;
      if (state === S.Done) {
        if (!this.completeSent) {
          this.completeSent = true;
          this.sink.onComplete();
        }
        return p;
      }
      if (p >= end) break;
      if (state === S.Head) p = this.head(buf, p, end);
      else if (state === S.BodyLength) {
        const take = Math.min(this.remaining, end - p);
        this.remaining -= take;
        const last = this.remaining === 0;
        if (last) this.state = S.Done;
        if (!this.sink.onBody(buf, p, p + take, last)) this.paused = true;
        p += take;
      } else if (state === S.ChunkData) {
        const take = Math.min(this.remaining, end - p);
        this.remaining -= take;
        if (this.remaining === 0) this.state = S.ChunkDataCr;
        if (!this.sink.onBody(buf, p, p + take, false)) this.paused = true;
        p += take;
      } else if (state === S.BodyClose) {
        if (!this.sink.onBody(buf, p, end, false)) this.paused = true;
        p = end;
      } else p = this.framing(buf, p, end);
    }
    return p;
  }

  /**
   * The upstream closed its side: a body delimited by the close is complete
   * (the next `execute`, even of nothing, reports it); anything else
   * incomplete is an error.
   */
  finish(): void {
    if (this.state === S.BodyClose) this.state = S.Done;
    else if (this.state !== S.Done) throw new UpstreamClosedError(this.headDone);
  }

  // ---- head ----

  /** Parses a head once all of it is here (possibly over several reads); returns the offset after it. */
  private head(buf: Buffer, p: number, end: number): number {
    let data = buf;
    let from = p;
    let dataEnd = end;
    let searchFrom = p;
    if (this.partial !== undefined) {
      const kept = this.partial.length;
      data = Buffer.concat([this.partial, buf.subarray(p, end)]);
      from = 0;
      dataEnd = data.length;
      searchFrom = kept > 3 ? kept - 3 : 0;
    }
    let at = data.indexOf(CRLFCRLF, searchFrom);
    if (at + 4 > dataEnd) at = -1; // found in stale bytes past what was read
    if (at === -1 || at + 4 - from > this.maxHeaderSize) {
      if (dataEnd - from > this.maxHeaderSize) throw new UpstreamHeadersTooLargeError(`upstream response head exceeds ${this.maxHeaderSize} bytes`);
      // keep a copy: `buf` may be a reused read buffer (a concatenation is already one)
      this.partial = data === buf ? Buffer.from(buf.subarray(p, end)) : data;
      return end;
    }
    const consumedFromBuf = this.partial === undefined ? at + 4 : at + 4 - this.partial.length + p;
    this.partial = undefined;
    this.parseHead(data, from, at + 2);
    return consumedFromBuf;
  }

  /** Parses the head in `b[start, end)` (`end` just after the last field's CRLF) and moves to the body state. */
  private parseHead(b: Buffer, start: number, end: number): void {
    // status line: HTTP/1.x SP 3DIGIT [SP reason] CRLF
    if (
      end - start < 14 ||
      b[start] !== 72 || b[start + 1] !== 84 || b[start + 2] !== 84 || b[start + 3] !== 80 ||
      b[start + 4] !== 47 || b[start + 5] !== 49 || b[start + 6] !== 46 ||
      (b[start + 7] !== 48 && b[start + 7] !== 49) || b[start + 8] !== SP
    ) {
      throw new UpstreamProtocolError('malformed upstream status line');
    }
    const minor = b[start + 7]! - 48;
    const d0 = b[start + 9]! - 48;
    const d1 = b[start + 10]! - 48;
    const d2 = b[start + 11]! - 48;
    if (d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) throw new UpstreamProtocolError('malformed upstream status code');
    const status = d0 * 100 + d1 * 10 + d2;
    let p = start + 12;
    if (b[p] === SP) {
      p++;
      while (b[p] !== CR) {
        if (FIELD[b[p]!] !== 1) throw new UpstreamProtocolError('invalid character in upstream reason phrase');
        p++;
      }
    } else if (b[p] !== CR) throw new UpstreamProtocolError('malformed upstream status line');
    if (b[p + 1] !== LF) throw new UpstreamProtocolError('upstream status line not ended by CRLF');
    p += 2;

    const interim = status < 200;
    if (status === 101) throw new UpstreamProtocolError('upstream switched protocols without being asked to');
    // one string of the whole head, sliced in JS: far cheaper than a native slice per name and value
    const text = interim ? '' : latin1.call(b, start, end);
    const headers: string[] = [];
    let count = 0;
    let contentLength = -1;
    let chunked = false;
    let sawTransferEncoding = false;
    let sawClose = false;
    let sawKeepAlive = false;
    let dropNames: string[] | undefined;
    while (p < end) {
      if (++count > this.maxHeaderCount) throw new UpstreamHeadersTooLargeError(`upstream response has more than ${this.maxHeaderCount} header fields`);
      const c = b[p]!;
      if (c === SP || c === HTAB) throw new UpstreamProtocolError('obsolete line folding in upstream response');
      const nameStart = p;
      while (TOKEN[b[p]!] === 1) p++;
      if (p === nameStart || b[p] !== COLON) throw new UpstreamProtocolError('invalid upstream header name');
      const nameEnd = p;
      p++;
      while (b[p] === SP || b[p] === HTAB) p++;
      const valueStart = p;
      let valueEnd = p;
      for (;;) {
        const v = b[p]!;
        if (v === CR) break;
        if (FIELD[v] !== 1) throw new UpstreamProtocolError('invalid character in upstream header value');
        p++;
        if (v !== SP && v !== HTAB) valueEnd = p;
      }
      if (b[p + 1] !== LF) throw new UpstreamProtocolError('upstream header line not ended by CRLF');
      p += 2;
      if (interim) continue;
      switch (classify(b, nameStart, nameEnd - nameStart)) {
        case F.Other:
          headers.push(text.slice(nameStart - start, nameEnd - start), text.slice(valueStart - start, valueEnd - start));
          break;
        case F.ContentLength: {
          if (contentLength !== -1) throw new UpstreamProtocolError('upstream sent Content-Length more than once');
          const digits = valueEnd - valueStart;
          if (digits < 1 || digits > 15) throw new UpstreamProtocolError('invalid upstream Content-Length');
          let n = 0;
          for (let i = valueStart; i < valueEnd; i++) {
            const d = b[i]! - 48;
            if (d < 0 || d > 9) throw new UpstreamProtocolError('invalid upstream Content-Length');
            n = n * 10 + d;
          }
          contentLength = n;
          headers.push(text.slice(nameStart - start, nameEnd - start), text.slice(valueStart - start, valueEnd - start));
          break;
        }
        case F.TransferEncoding:
          if (sawTransferEncoding) throw new UpstreamProtocolError('upstream sent Transfer-Encoding more than once');
          sawTransferEncoding = true;
          if (valueEnd - valueStart !== 7 || !nameIs(b, valueStart, 'chunked')) throw new UpstreamProtocolError(`unsupported upstream Transfer-Encoding ${JSON.stringify(latin1.call(b, valueStart, valueEnd))}`);
          chunked = true;
          break;
        case F.Connection: {
          const len = valueEnd - valueStart;
          if (len === 10 && nameIs(b, valueStart, 'keep-alive')) sawKeepAlive = true;
          else if (len === 5 && nameIs(b, valueStart, 'close')) sawClose = true;
          else {
            for (const raw of text.slice(valueStart - start, valueEnd - start).split(',')) {
              const token = raw.trim().toLowerCase();
              if (token === 'close') sawClose = true;
              else if (token === 'keep-alive') sawKeepAlive = true;
              else if (token !== '') (dropNames ??= []).push(token);
            }
          }
          break;
        }
        case F.KeepAlive:
          this.keepAliveHintMs = keepAliveTimeout(b, valueStart, valueEnd);
          break;
        case F.Drop:
          break;
      }
    }
    if (interim) {
      // 100 Continue, 102, 103 Early Hints: skipped; the final head follows
      return;
    }
    if (chunked && contentLength !== -1) throw new UpstreamProtocolError('upstream sent both Content-Length and Transfer-Encoding');
    // HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 only when it says keep-alive
    this.keepAlive = !sawClose && (minor === 1 || sawKeepAlive);
    if (dropNames !== undefined) stripNamed(headers, dropNames);
    if (this.noBody || status === 204 || status === 304) {
      this.state = S.Done;
    } else if (chunked) {
      this.state = S.ChunkSize;
      this.sizeDigits = 0;
      this.remaining = 0;
    } else if (contentLength !== -1) {
      this.state = contentLength === 0 ? S.Done : S.BodyLength;
      this.remaining = contentLength;
    } else {
      this.state = S.BodyClose;
      this.keepAlive = false;
    }
    this.headDone = true;
    if (!this.sink.onHead(status, headers, contentLength)) this.paused = true;
  }

  // ---- chunked framing and trailers, byte by byte (data itself is sliced in execute) ----

  private framing(b: Buffer, p: number, end: number): number {
    while (p < end) {
      const c = b[p]!;
      switch (this.state) {
        case S.ChunkSize: {
          const h = HEX[c]!;
          if (h !== -1) {
            if (++this.sizeDigits > 13) throw new UpstreamProtocolError('upstream chunk size too large');
            this.remaining = this.remaining * 16 + h;
          } else if (this.sizeDigits === 0) throw new UpstreamProtocolError('invalid upstream chunk size');
          else if (c === CR) this.state = S.ChunkSizeLf;
          else if (c === 59 /* ; */) this.state = S.ChunkExt;
          else throw new UpstreamProtocolError('invalid upstream chunk size');
          break;
        }
        case S.ChunkExt:
          if (c === CR) this.state = S.ChunkSizeLf;
          else if (FIELD[c] !== 1) throw new UpstreamProtocolError('invalid character in upstream chunk extension');
          else if (++this.extraBytes > this.maxHeaderSize) throw new UpstreamHeadersTooLargeError('upstream chunk extensions too large');
          break;
        case S.ChunkSizeLf:
          if (c !== LF) throw new UpstreamProtocolError('upstream chunk size not ended by CRLF');
          this.sizeDigits = 0;
          if (this.remaining === 0) this.state = S.TrailerLineStart;
          else {
            this.state = S.ChunkData;
            return p + 1;
          }
          break;
        case S.ChunkDataCr:
          if (c !== CR) throw new UpstreamProtocolError('upstream chunk data not followed by CRLF');
          this.state = S.ChunkDataLf;
          break;
        case S.ChunkDataLf:
          if (c !== LF) throw new UpstreamProtocolError('upstream chunk data not followed by CRLF');
          this.state = S.ChunkSize;
          this.remaining = 0;
          break;
        case S.TrailerLineStart:
          if (c === CR) this.state = S.TrailerEndLf;
          else if (TOKEN[c] === 1) this.state = S.TrailerName;
          else throw new UpstreamProtocolError('invalid upstream trailer field');
          break;
        case S.TrailerName:
          if (c === COLON) this.state = S.TrailerValue;
          else if (TOKEN[c] !== 1) throw new UpstreamProtocolError('invalid upstream trailer field name');
          break;
        case S.TrailerValue:
          if (c === CR) this.state = S.TrailerLf;
          else if (FIELD[c] !== 1) throw new UpstreamProtocolError('invalid character in upstream trailer value');
          break;
        case S.TrailerLf:
          if (c !== LF) throw new UpstreamProtocolError('upstream trailer line not ended by CRLF');
          this.state = S.TrailerLineStart;
          break;
        case S.TrailerEndLf:
          if (c !== LF) throw new UpstreamProtocolError('upstream trailer section not ended by CRLF');
          this.state = S.Done;
          return p + 1;
        case S.Head:
        case S.BodyLength:
        case S.BodyClose:
        case S.ChunkData:
        case S.Done:
          return p; // handled in execute
      }
      if (this.state >= S.TrailerLineStart && ++this.extraBytes > this.maxHeaderSize) throw new UpstreamHeadersTooLargeError('upstream trailers too large');
      p++;
    }
    return p;
  }
}

/** Removes the fields named in `Connection` (lower-case `names`) from a flat name/value list. */
function stripNamed(headers: string[], names: readonly string[]): void {
  let w = 0;
  for (let r = 0; r < headers.length; r += 2) {
    if (names.includes(headers[r]!.toLowerCase())) continue;
    headers[w++] = headers[r]!;
    headers[w++] = headers[r + 1]!;
  }
  headers.length = w;
}
