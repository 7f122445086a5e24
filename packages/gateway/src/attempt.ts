/**
 * One try of an exchange against one instance: the `ResponseHandler` of an
 * upstream call, streaming the response to the client.
 *
 * The attempt settles when the response head arrives: a non-5xx head is
 * written to the client at once and the attempt resolves; a 5xx head is held
 * (the upstream response paused) and the attempt rejects, so the breaker
 * counts it and the retry policy may try another instance. If it does, the
 * held response is discarded; if not, it is committed: streamed to the client
 * as it is. Body chunks go to the client as they arrive; a full client socket
 * pauses the upstream response until it drains.
 */
import type { Lease } from './balancing/types.js';
import { CLIENT_GONE, isClientSide, ResponseTooLargeError, UpstreamStatusError } from './errors.js';
import type { ResponseHandler, UpstreamCall } from './h1/pool.js';
import type { Exchange } from './proxy.js';

export class Attempt implements ResponseHandler {
  /** The upstream call carrying this attempt (set right after it is made). */
  call: UpstreamCall | undefined = undefined;
  private settled = false;
  private leaseDone = false;
  private streaming = false;
  private discarded = false;
  private completed = false;
  /** The client response was ended with the last chunk. */
  private ended = false;
  private heldHeaders: string[] | undefined = undefined;
  private heldLength = -1;
  private statusCode = 0;
  private bytes = 0;
  private heldError: Error | undefined = undefined;
  private onDrain: (() => void) | undefined = undefined;

  constructor(
    private readonly ex: Exchange,
    private readonly lease: Lease,
    private readonly resolve: (a: Attempt) => void,
    private readonly reject: (e: unknown) => void,
    /** `performance.now()` when the attempt started. */
    private readonly started: number,
  ) {}

  onResponseHead(statusCode: number, headers: string[], contentLength: number): boolean {
    const failed = statusCode >= 500;
    this.finishLease(failed ? 'server-error' : 'success');
    this.settled = true;
    if (failed && this.ex.route.policy !== undefined) {
      this.statusCode = statusCode;
      this.heldHeaders = headers;
      this.heldLength = contentLength;
      this.ex.held = this;
      this.reject(new UpstreamStatusError(statusCode, this));
      return false;
    }
    const ok = this.writeHead(statusCode, headers, contentLength);
    this.resolve(this);
    return ok;
  }

  /** Writes the response head; false (and the attempt aborted, a 502 sent) when the declared length is over the limit or a field is refused. */
  private writeHead(statusCode: number, headers: string[], contentLength: number): boolean {
    const ex = this.ex;
    ex.status = statusCode;
    const max = ex.route.maxResponseBytes;
    if (contentLength > max) {
      this.streaming = true;
      this.discarded = true; // the upstream's end of it is over; its error callback is ignored
      this.abortUpstream(new ResponseTooLargeError(`upstream response of ${contentLength} bytes exceeds the limit of ${max}`));
      ex.runtime.counters.upstreamErrors++;
      ex.problem('gateway-response-too-large', `response of ${contentLength} bytes exceeds the limit of ${max}`);
      return false;
    }
    const limit = ex.limitHeaders;
    if (limit !== undefined) for (let i = 0; i < limit.length; i++) headers.push(limit[i]!);
    this.streaming = true;
    if (ex.gone) return false;
    try {
      ex.res.writeHead(statusCode, headers);
    } catch {
      // a field Node refuses to send: a bad gateway
      this.discarded = true;
      this.abortUpstream();
      ex.problem('gateway-bad-gateway', 'upstream sent an invalid response header');
      return false;
    }
    return true;
  }

  /** Streams a held 5xx response to the client (the retry policy is done with it). */
  commit(): void {
    if (this.discarded) return;
    if (this.heldError !== undefined) {
      this.ex.problem('gateway-bad-gateway', 'upstream failed while its response was held', { 'retry-after': '1' });
      return;
    }
    if (!this.writeHead(this.statusCode, this.heldHeaders!, this.heldLength)) return;
    if (this.completed) {
      if (!this.ended) this.ex.res.end();
      return;
    }
    this.call?.resume();
  }

  /** Drops a held response (a retry replaces it). */
  discard(): void {
    if (this.discarded) return;
    this.discarded = true;
    if (!this.completed) this.abortUpstream();
  }

  abortUpstream(reason: Error = CLIENT_GONE): void {
    if (this.completed) return;
    this.call?.abort(reason);
  }

  onResponseData(chunk: Buffer, last: boolean): boolean {
    if (this.discarded) return true;
    const ex = this.ex;
    this.bytes += chunk.length;
    if (this.bytes > ex.route.maxResponseBytes) {
      this.abortUpstream(new ResponseTooLargeError('response body exceeds the limit'));
      ex.res.destroy();
      return false;
    }
    if (!this.streaming) return false; // held: not delivered while paused, but never forwarded
    if (last) {
      // the head and the whole body of a small response leave in one write
      this.ended = true;
      ex.res.end(chunk);
      return true;
    }
    const ok = ex.res.write(chunk);
    if (!ok) ex.res.once('drain', (this.onDrain ??= () => this.call?.resume()));
    return ok;
  }

  onResponseEnd(): void {
    this.completed = true;
    if (this.discarded || !this.streaming || this.ended) return;
    this.ended = true;
    this.ex.res.end();
  }

  onResponseError(err: Error): void {
    if (this.discarded) return;
    if (!this.settled) {
      this.settled = true;
      this.finishLease(isClientSide(err) ? 'success' : 'gateway-error');
      this.reject(err);
      return;
    }
    if (!this.streaming) {
      // failed while held: commit() will answer 502
      this.heldError = err;
      return;
    }
    if (this.ended) return;
    // mid-stream: the head went out, the client gets a cut response
    this.ex.runtime.counters.upstreamErrors++;
    this.ex.res.destroy();
  }

  private finishLease(outcome: 'success' | 'server-error' | 'gateway-error'): void {
    if (this.leaseDone) return;
    this.leaseDone = true;
    this.lease.done(outcome, performance.now() - this.started);
  }
}
