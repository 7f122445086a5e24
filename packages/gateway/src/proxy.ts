/**
 * The data path: one `Exchange` per client request, one `Attempt` (an undici
 * dispatch handler) per try against an instance. Bodies stream both ways and
 * are never buffered: the request body is handed to undici as the
 * `IncomingMessage` stream, and each response chunk is written to the client
 * as it arrives, with backpressure (undici pauses reading the upstream socket
 * while the client's socket is full).
 *
 * Retries (the route's `retry` with its `RetryBudget`) and the breaker are
 * `@bulwark/resilience` policies around the attempts. An attempt settles when
 * the response head arrives: a non-5xx head is streamed to the client at once
 * and the attempt resolves; a 5xx head is held (the upstream socket paused)
 * and the attempt rejects, so the breaker counts it and the retry policy may
 * try another instance. If it does, the held response is discarded; if not,
 * it is streamed to the client as it is. Nothing is retried once a byte of a
 * response went to the client, and a request with a body is never retried
 * (its body was streamed, not kept).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { randomFillSync } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { isAuthError, type AuthUser } from '@bulwark/http/auth';
import { DEADLINE_HEADER, incomingBudgetMs, type RateLimitDecision } from '@bulwark/resilience';
import type { SplitRequest } from './balancing/traffic-split.js';
import type { Lease, UpstreamService } from './balancing/types.js';
import { sendProblem, type GatewayProblemSlug } from './problems.js';
import type { Runtime, RuntimeRoute, Table } from './runtime.js';
import type { TokenEntry, VerifiedTokenCache } from './token-cache.js';

/** Request headers never forwarded (hop-by-hop, RFC 9110 §7.6.1, and headers undici refuses). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'expect', 'http2-settings', DEADLINE_HEADER]);
const FORWARDED_HEADERS = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'forwarded']);
/** Response headers never forwarded. */
const RESPONSE_HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authenticate']);
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
const TRACEPARENT = /^[\da-f]{2}-[\da-f]{32}-[\da-f]{16}-[\da-f]{2}$/;
const VALID_HOST = /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.?|\[[0-9a-f:.]+\])(?::\d{1,5})?$/;
const BEARER = /^bearer /i;
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i;

/** The upstream had no available instance (all ejected or unhealthy, or none discovered). */
export class NoInstanceError extends Error {
  readonly code = 'BULWARK_GATEWAY_NO_INSTANCE';
  readonly retryable = false;
  constructor(readonly upstream: string) {
    super(`upstream "${upstream}" has no available instance`);
  }
}

/** The exchange's deadline passed before a response head arrived. */
export class GatewayDeadlineError extends Error {
  readonly code = 'BULWARK_GATEWAY_DEADLINE';
  readonly retryable = false;
}

/** A 5xx response head, held while the retry policy decides. */
export class UpstreamStatusError extends Error {
  readonly retryable: boolean;
  constructor(
    readonly status: number,
    readonly attempt: Attempt,
  ) {
    super(`upstream answered ${status}`);
    this.retryable = status === 502 || status === 503 || status === 504;
  }
}

/** The upstream's response is larger than the route allows. */
export class ResponseTooLargeError extends Error {
  readonly code = 'BULWARK_GATEWAY_RESPONSE_TOO_LARGE';
  readonly retryable = false;
}

/** The client went away; nothing to answer. */
export class ClientGoneError extends Error {
  readonly code = 'BULWARK_GATEWAY_CLIENT_GONE';
  readonly retryable = false;
}

export const CLIENT_GONE = new ClientGoneError('client closed the connection');

/** Breaker failure predicate: 5xx and transport failures count; no instance, client aborts and deadlines spent before trying do not. */
export function isUpstreamFailure(error: unknown): boolean {
  if (error instanceof UpstreamStatusError) return true;
  if (error instanceof NoInstanceError || error instanceof ClientGoneError || error instanceof GatewayDeadlineError || error instanceof ResponseTooLargeError) return false;
  return true;
}

/** Retry predicate: 502/503/504 heads and transient transport failures. */
export function isRetryableUpstreamFailure(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { retryable?: unknown; code?: unknown };
  if (typeof e.retryable === 'boolean') return e.retryable;
  return typeof e.code === 'string' && TRANSIENT_CODES.has(e.code);
}

const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ENOTCONN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

// Trace ids for requests that arrive without a traceparent: random bytes drawn in blocks.
const randomBlock = Buffer.alloc(4096);
let randomOffset = randomBlock.length;
function randomHex(bytes: number): string {
  if (randomOffset + bytes > randomBlock.length) {
    randomFillSync(randomBlock);
    randomOffset = 0;
  }
  const hex = randomBlock.toString('hex', randomOffset, randomOffset + bytes);
  randomOffset += bytes;
  return hex;
}

/** Lowercase host name without port, or `undefined` when the Host header is malformed. Cached per distinct value. */
const hostCache = new Map<string, string>();
export function hostOf(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const cached = hostCache.get(raw);
  if (cached !== undefined) return cached;
  const lower = raw.toLowerCase();
  if (lower.length > 255 || !VALID_HOST.test(lower)) return undefined;
  let host = lower;
  if (host.startsWith('[')) host = host.slice(0, host.indexOf(']') + 1);
  else {
    const colon = host.indexOf(':');
    if (colon !== -1) host = host.slice(0, colon);
    if (host.endsWith('.')) host = host.slice(0, -1);
  }
  if (hostCache.size >= 1024) hostCache.clear();
  hostCache.set(raw, host);
  return host;
}

const kConn = Symbol('bulwark.gateway.conn');

/**
 * What the gateway derives from a client connection once and reuses for each
 * request on it (keep-alive): the peer address and scheme, the last
 * `Forwarded` element, the last verified token, the last rate-limit key. The
 * strings are the same objects request after request, so the maps they key
 * hash them once.
 */
class ConnInfo {
  readonly ip: string;
  readonly proto: 'http' | 'https';
  /** The `for=` node of a `Forwarded` element (IPv6 quoted and bracketed). */
  readonly forNode: string;
  fwdHost: string | undefined = undefined;
  fwdElement = '';
  authHeader: string | undefined = undefined;
  authEntry: TokenEntry | undefined = undefined;
  authCache: VerifiedTokenCache | undefined = undefined;
  authGeneration = 0;
  limPrefix: string | undefined = undefined;
  limIdentity: string | undefined = undefined;
  limKey = '';

  constructor(socket: Socket) {
    this.ip = socket.remoteAddress ?? 'unknown';
    this.proto = (socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http';
    this.forNode = this.ip.includes(':') ? `"[${this.ip}]"` : this.ip;
  }

  /** `for=<ip>;host="<host>";proto=<proto>`, rebuilt only when the host changes. */
  forwarded(host: string): string {
    if (this.fwdHost !== host) {
      this.fwdHost = host;
      this.fwdElement = `for=${this.forNode};host="${host}";proto=${this.proto}`;
    }
    return this.fwdElement;
  }

  /** The rate-limit store key `prefix + identity`, the same string object while both stay the same. */
  limitKey(prefix: string, identity: string): string {
    if (this.limPrefix !== prefix || this.limIdentity !== identity) {
      this.limPrefix = prefix;
      this.limIdentity = identity;
      this.limKey = prefix + identity;
    }
    return this.limKey;
  }
}

function connOf(req: IncomingMessage): ConnInfo {
  const socket = req.socket as Socket & { [kConn]?: ConnInfo };
  return (socket[kConn] ??= new ConnInfo(socket));
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** One client request through the gateway; also the request the canary split reads. */
export class Exchange implements SplitRequest {
  user: AuthUser | undefined = undefined;
  service!: UpstreamService;
  path = '';
  headers: string[] = [];
  deadlineIndex = -1;
  deadline = 0;
  attempts = 0;
  exclude: Set<string> | undefined = undefined;
  /** A 5xx response held while the retry policy decides. */
  held: Attempt | undefined = undefined;
  current: Attempt | undefined = undefined;
  status = 0;
  instance: string | undefined = undefined;
  gone = false;
  hasBody = false;
  limitHeaders: string[] | undefined = undefined;
  readonly conn: ConnInfo;
  readonly start: number;

  constructor(
    readonly runtime: Runtime,
    readonly table: Table,
    readonly route: RuntimeRoute,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly host: string,
    readonly rawPath: string,
    readonly query: string,
  ) {
    this.conn = connOf(req);
    this.start = performance.now();
  }

  /** Auth, then rate limit, then forward. */
  run(): void {
    const auth = this.route.auth;
    if (auth === undefined) {
      this.limit();
      return;
    }
    const header = this.req.headers.authorization;
    const cache = this.table.tokens!;
    const conn = this.conn;
    // The same Authorization header again on this connection: no parsing, hashing or map lookup.
    if (header !== undefined && conn.authHeader === header && conn.authCache === cache && cache.live(conn.authEntry!, conn.authGeneration)) {
      cache.hits++;
      this.authorized(conn.authEntry!.user);
      return;
    }
    if (header === undefined || header.length < 8 || !BEARER.test(header)) {
      this.runtime.counters.rejectedAuth++;
      this.problem('gateway-unauthenticated', 'a bearer token is required', { 'www-authenticate': 'Bearer' });
      return;
    }
    const token = header.slice(7).trim();
    const entry = cache.lookup(token);
    if (entry !== undefined) {
      conn.authHeader = header;
      conn.authEntry = entry;
      conn.authCache = cache;
      conn.authGeneration = cache.generation;
      this.authorized(entry.user);
      return;
    }
    cache.verify(token).then(
      (user) => this.authorized(user),
      (error: unknown) => {
        this.runtime.counters.rejectedAuth++;
        if (isAuthError(error) && error.status === 503) this.problem('gateway-auth-unavailable', undefined, { 'retry-after': '1' });
        else {
          const reason = isAuthError(error) ? error.reason : undefined;
          this.problem('gateway-invalid-token', undefined, { 'www-authenticate': 'Bearer error="invalid_token"' }, reason === undefined ? undefined : { reason });
        }
      },
    );
  }

  private authorized(user: AuthUser): void {
    this.user = user;
    const auth = this.route.auth!;
    if (auth.scopes.length > 0) {
      for (const scope of auth.scopes) {
        if (!user.scopes.includes(scope)) {
          this.runtime.counters.rejectedAuth++;
          this.problem('gateway-forbidden', `missing scope ${scope}`, { 'www-authenticate': `Bearer error="insufficient_scope", scope="${auth.scopes.join(' ')}"` });
          return;
        }
      }
    }
    if (auth.roles.length > 0 && !auth.roles.some((r) => user.roles.includes(r))) {
      this.runtime.counters.rejectedAuth++;
      this.problem('gateway-forbidden', 'missing role');
      return;
    }
    this.limit();
  }

  private limit(): void {
    const limiter = this.route.limiter;
    if (limiter === undefined) {
      this.forward();
      return;
    }
    let identity: string;
    if (limiter.key === 'sub') identity = this.user?.sub ?? this.conn.ip;
    else if (limiter.key === 'ip') identity = this.conn.ip;
    else {
      const v = this.req.headers[limiter.header!];
      identity = typeof v === 'string' ? v : this.conn.ip;
    }
    let decision: RateLimitDecision | Promise<RateLimitDecision>;
    try {
      decision = limiter.store.take(this.conn.limitKey(limiter.prefix, identity), limiter.rule, 1, this.route.timeoutMs);
    } catch (error) {
      this.limitFailed(error);
      return;
    }
    if (decision instanceof Promise) decision.then((d) => this.limited(d), (error: unknown) => this.limitFailed(error));
    else this.limited(decision);
  }

  private limitFailed(_error: unknown): void {
    this.runtime.counters.rateLimitStoreErrors++;
    if (this.route.limiter?.onStoreError === 'closed') this.problem('gateway-rate-limit-unavailable', undefined, { 'retry-after': '1' });
    else this.forward();
  }

  private limited(d: RateLimitDecision): void {
    const limiter = this.route.limiter!;
    if (!d.allowed) {
      this.runtime.counters.rejectedRateLimit++;
      const retryAfter = String(Number.isFinite(d.retryAfterMs) ? Math.max(1, Math.ceil(d.retryAfterMs / 1000)) : 3600);
      this.problem('gateway-rate-limited', undefined, {
        'retry-after': retryAfter,
        'ratelimit-limit': String(d.limit),
        'ratelimit-remaining': '0',
        'ratelimit-reset': String(Math.ceil(d.resetMs / 1000)),
      });
      return;
    }
    if (limiter.headers) this.limitHeaders = ['ratelimit-limit', String(d.limit), 'ratelimit-remaining', String(d.remaining), 'ratelimit-reset', String(Math.ceil(d.resetMs / 1000))];
    if (d.delayMs > 0) setTimeout(() => this.forward(), d.delayMs);
    else this.forward();
  }

  /** Picks the upstream (canary split), builds the forwarded head, and runs the attempts. */
  private forward(): void {
    if (this.gone) return;
    const route = this.route;
    this.service = this.chooseService();
    const budget = incomingBudgetMs(this.req.headers[DEADLINE_HEADER], { marginMs: 5, maxMs: route.timeoutMs });
    this.deadline = this.start + budget;
    this.path = (route.rewrite === undefined ? this.rawPath : route.rewrite(this.rawPath)) + this.query;
    this.buildHeaders();
    const req = this.req;
    this.hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
    const policy = route.policy;
    // A non-5xx head was streamed when it arrived (the attempt resolved then): only failures need handling.
    const onFail = (error: unknown): void => this.failed(error);
    if (policy === undefined) {
      this.attempt().then(undefined, onFail);
      return;
    }
    const key = req.headers['idempotency-key'];
    policy
      // The deadline is enforced per attempt (undici's headersTimeout, and attempt() refusing a spent
      // budget), not by `execute`'s deadline option: that one enters an AsyncLocalStorage scope, which
      // turns on promise hooks for the whole process (a few µs per request).
      .execute(() => this.attempt(), {
        idempotent: !this.hasBody && IDEMPOTENT_METHODS.has(req.method!),
        ...(typeof key === 'string' && !this.hasBody ? { idempotencyKey: key } : {}),
      })
      .then(undefined, onFail);
  }

  private chooseService(): UpstreamService {
    const canary = this.route.canary;
    return canary === undefined ? this.route.upstream : canary.split.upstreamFor(this);
  }

  /** `SplitRequest`: a request header (a repeated one as Node joined it). */
  header(name: string): string | undefined {
    const v = this.req.headers[name];
    return typeof v === 'string' ? v : undefined;
  }

  /** `SplitRequest`: the route's sticky key (`sub`, a header or a cookie), when the request has one. */
  get stickyKey(): string | undefined {
    const canary = this.route.canary;
    if (canary === undefined) return undefined;
    let key: string | undefined;
    if (canary.stickyKind === 'sub') key = this.user?.sub;
    else if (canary.stickyKind === 'header') key = this.header(canary.stickyName);
    else if (canary.stickyKind === 'cookie') key = cookieValue(this.req.headers.cookie, canary.stickyName);
    return key === '' ? undefined : key;
  }

  private buildHeaders(): void {
    const req = this.req;
    const incoming = req.headers;
    const out: string[] = [];
    let extraHop: string[] | undefined;
    const connection = incoming.connection;
    if (connection !== undefined && connection.length > 10) {
      extraHop = connection
        .toLowerCase()
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '' && s !== 'keep-alive' && s !== 'close');
    }
    const trust = this.runtime.trustForwarded;
    let sawTrace = false;
    for (const name in incoming) {
      if (HOP_BY_HOP.has(name)) continue;
      if (!trust && FORWARDED_HEADERS.has(name)) continue;
      if (extraHop !== undefined && extraHop.includes(name)) continue;
      if (name === 'host' && !this.route.preserveHost) continue;
      const value = incoming[name];
      if (value === undefined) continue;
      if (name === 'traceparent') {
        if (typeof value !== 'string' || !TRACEPARENT.test(value) || value.startsWith('ff')) continue;
        sawTrace = true;
      }
      if (typeof value === 'string') out.push(name, value);
      else for (const v of value) out.push(name, v);
    }
    const conn = this.conn;
    const ip = conn.ip;
    const proto = conn.proto;
    if (trust) {
      const xffRaw = incoming['x-forwarded-for'];
      const xff = Array.isArray(xffRaw) ? xffRaw.join(', ') : xffRaw;
      const fwd = incoming.forwarded;
      // replace the copies pushed above with appended values
      for (let i = out.length - 2; i >= 0; i -= 2) if (out[i] === 'x-forwarded-for' || out[i] === 'forwarded') out.splice(i, 2);
      out.push('x-forwarded-for', xff === undefined ? ip : `${xff}, ${ip}`);
      const element = conn.forwarded(this.host);
      out.push('forwarded', fwd === undefined ? element : `${fwd}, ${element}`);
      if (incoming['x-forwarded-proto'] === undefined) out.push('x-forwarded-proto', proto);
      if (incoming['x-forwarded-host'] === undefined && incoming.host !== undefined) out.push('x-forwarded-host', incoming.host);
    } else {
      out.push('x-forwarded-for', ip, 'x-forwarded-proto', proto);
      if (incoming.host !== undefined) out.push('x-forwarded-host', incoming.host);
      out.push('forwarded', conn.forwarded(this.host));
    }
    if (!sawTrace) out.push('traceparent', `00-${randomHex(16)}-${randomHex(8)}-01`);
    out.push(DEADLINE_HEADER, '');
    this.deadlineIndex = out.length - 1;
    this.headers = out;
  }

  /** One attempt: pick an instance, dispatch, settle at the response head. */
  private attempt(): Promise<Attempt> {
    if (this.held !== undefined) {
      this.held.discard();
      this.held = undefined;
    }
    if (this.gone) return Promise.reject(CLIENT_GONE);
    const remaining = this.deadline - performance.now();
    if (remaining < 1) return Promise.reject(new GatewayDeadlineError('deadline spent before an attempt'));
    const lease = this.service.pick(this.exclude === undefined && this.route.tenant === undefined ? undefined : { exclude: this.exclude, tenant: this.tenant() });
    if (lease === undefined) return Promise.reject(new NoInstanceError(this.service.name));
    this.attempts++;
    if (this.route.policy !== undefined) (this.exclude ??= new Set()).add(lease.instance.id);
    this.instance = lease.instance.id;
    const pool = this.runtime.poolFor(lease.instance.url);
    this.headers[this.deadlineIndex] = String(Math.floor(remaining));
    return new Promise<Attempt>((resolve, reject) => {
      const attempt = new Attempt(this, lease, resolve, reject);
      this.current = attempt;
      pool.dispatch(
        {
          path: this.path,
          method: this.req.method as Dispatcher.HttpMethod,
          headers: this.headers,
          body: this.hasBody ? this.req : null,
          headersTimeout: Math.ceil(remaining),
          bodyTimeout: this.route.idleTimeoutMs,
        },
        attempt,
      );
    });
  }

  private tenant(): string | undefined {
    const t = this.route.tenant;
    if (t === undefined) return undefined;
    if (t === 'sub') return this.user?.sub;
    const v = this.req.headers[t];
    return typeof v === 'string' ? v : undefined;
  }

  private failed(error: unknown): void {
    if (error instanceof UpstreamStatusError) {
      if (this.held === error.attempt) this.held = undefined;
      error.attempt.commit();
      return;
    }
    if (this.gone || error instanceof ClientGoneError) return;
    const code = (error as { code?: unknown } | undefined)?.code;
    if (code === 'BULWARK_CIRCUIT_OPEN') {
      const ms = (error as { retryAfterMs?: number }).retryAfterMs;
      this.runtime.counters.breakerRejections++;
      this.problem('gateway-upstream-unavailable', `circuit breaker of route ${this.route.name} is open`, { 'retry-after': String(ms === undefined ? 1 : Math.max(1, Math.ceil(ms / 1000))) });
      return;
    }
    if (error instanceof NoInstanceError) {
      this.problem('gateway-upstream-unavailable', `no available instance of ${error.upstream}`, { 'retry-after': '1' });
      return;
    }
    this.runtime.counters.upstreamErrors++;
    if (error instanceof GatewayDeadlineError || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'BULWARK_DEADLINE_EXCEEDED' || code === 'BULWARK_TIMEOUT') {
      this.problem('gateway-timeout', `no response within the deadline`, { 'retry-after': '1' });
      return;
    }
    if (error instanceof ResponseTooLargeError) {
      this.problem('gateway-response-too-large', error.message);
      return;
    }
    this.problem('gateway-bad-gateway', typeof code === 'string' ? `upstream failed (${code})` : 'upstream failed', { 'retry-after': '1' });
  }

  problem(slug: GatewayProblemSlug, detail?: string, headers?: Record<string, string>, extra?: Record<string, unknown>): void {
    if (this.gone) return;
    sendProblem(this.res, slug, detail, headers, extra);
  }

  /** The client closed the connection before the response finished. */
  clientGone(): void {
    this.gone = true;
    this.current?.abortUpstream();
    this.held?.discard();
  }
}

/** One try against one instance: an undici dispatch handler streaming the response to the client. */
export class Attempt implements Dispatcher.DispatchHandler {
  private abortFn: ((err?: Error) => void) | undefined = undefined;
  private resumeFn: (() => void) | undefined = undefined;
  private settled = false;
  private leaseDone = false;
  private streaming = false;
  private discarded = false;
  private completed = false;
  private rawHeaders: Buffer[] | undefined = undefined;
  private statusCode = 0;
  private bytes = 0;
  private readonly started: number;
  private heldError: Error | undefined = undefined;

  constructor(
    private readonly ex: Exchange,
    private readonly lease: Lease,
    private readonly resolve: (a: Attempt) => void,
    private readonly reject: (e: unknown) => void,
  ) {
    this.started = performance.now();
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortFn = abort;
    if (this.ex.gone) abort(CLIENT_GONE);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    this.resumeFn = resume;
    const failed = statusCode >= 500;
    this.finishLease(failed ? 'server-error' : 'success');
    this.settled = true;
    if (failed && this.ex.route.policy !== undefined) {
      this.statusCode = statusCode;
      this.rawHeaders = rawHeaders;
      this.ex.held = this;
      this.reject(new UpstreamStatusError(statusCode, this));
      return false;
    }
    const ok = this.writeHead(statusCode, rawHeaders);
    this.resolve(this);
    return ok;
  }

  /** Writes the response head; false (and the attempt aborted, a 502 sent) when the declared length is over the limit. */
  private writeHead(statusCode: number, rawHeaders: Buffer[]): boolean {
    const ex = this.ex;
    const res = ex.res;
    ex.status = statusCode;
    const out: string[] = [];
    const max = ex.route.maxResponseBytes;
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!.toString('latin1');
      const lower = name.length < 18 ? name.toLowerCase() : name;
      if (RESPONSE_HOP_BY_HOP.has(lower)) continue;
      const value = rawHeaders[i + 1]!.toString('latin1');
      if (lower === 'content-length' && Number(value) > max) {
        this.streaming = true;
        this.discarded = true; // the upstream's end of it is over; its error callback is ignored
        this.abortUpstream(new ResponseTooLargeError(`upstream response of ${value} bytes exceeds the limit of ${max}`));
        ex.runtime.counters.upstreamErrors++;
        ex.problem('gateway-response-too-large', `response of ${value} bytes exceeds the limit of ${max}`);
        return false;
      }
      out.push(name, value);
    }
    if (ex.limitHeaders !== undefined) for (const h of ex.limitHeaders) out.push(h);
    this.streaming = true;
    if (ex.gone) return false;
    try {
      res.writeHead(statusCode, out);
    } catch {
      // an upstream header Node refuses to send (invalid characters): a bad gateway
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
    if (!this.writeHead(this.statusCode, this.rawHeaders!)) return;
    if (this.completed) {
      this.ex.res.end();
      return;
    }
    this.resumeFn?.();
  }

  /** Drops a held response (a retry replaces it). */
  discard(): void {
    if (this.discarded) return;
    this.discarded = true;
    if (!this.completed) this.abortUpstream();
  }

  abortUpstream(reason: Error = CLIENT_GONE): void {
    if (this.completed) return;
    if (this.abortFn !== undefined) this.abortFn(reason);
  }

  onData(chunk: Buffer): boolean {
    if (this.discarded) return true;
    const ex = this.ex;
    this.bytes += chunk.length;
    if (this.bytes > ex.route.maxResponseBytes) {
      this.abortUpstream(new ResponseTooLargeError('response body exceeds the limit'));
      ex.res.destroy();
      return false;
    }
    if (!this.streaming) {
      // held 5xx: undici should not deliver data while paused, but tolerate it
      return false;
    }
    const ok = ex.res.write(chunk);
    if (!ok) ex.res.once('drain', this.onDrain);
    return ok;
  }

  private readonly onDrain = (): void => {
    this.resumeFn?.();
  };

  onComplete(): void {
    this.completed = true;
    if (this.discarded || !this.streaming) return;
    this.ex.res.end();
  }

  onError(err: Error): void {
    if (this.discarded) return;
    if (!this.settled) {
      this.settled = true;
      this.finishLease(err === CLIENT_GONE ? 'success' : 'gateway-error');
      this.reject(err);
      return;
    }
    if (!this.streaming) {
      // failed while held: commit() will answer 502
      this.heldError = err;
      return;
    }
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

/** Validates the request line and Host, matches a route and runs the exchange. */
export function handleRequest(runtime: Runtime, req: IncomingMessage, res: ServerResponse): void {
  const table = runtime.table;
  table.inflight++;
  runtime.counters.requests++;
  const holder: { ex: Exchange | undefined } = { ex: undefined };
  res.once('close', () => {
    const ex = holder.ex;
    table.inflight--;
    if (!res.writableFinished && ex !== undefined) ex.clientGone();
    runtime.finished(table, ex, res, req);
  });
  if (runtime.closing) {
    res.setHeader('connection', 'close');
    sendProblem(res, 'gateway-shutting-down', undefined, { 'retry-after': '1' });
    return;
  }
  const host = hostOf(req.headers.host);
  if (host === undefined) {
    runtime.counters.rejectedBadRequest++;
    sendProblem(res, 'gateway-bad-host', req.headers.host === undefined ? 'Host header missing' : 'malformed Host header');
    return;
  }
  const url = req.url!;
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  if (path.charCodeAt(0) !== 47 /* / */ || DOT_SEGMENT.test(path)) {
    runtime.counters.rejectedBadRequest++;
    sendProblem(res, 'gateway-bad-request', 'the request target must be an absolute path without dot segments');
    return;
  }
  const found = table.routes.match(host, req.method!, path, req.headers);
  if (found.route === undefined) {
    runtime.counters.rejectedNotFound++;
    if (found.reason === 'unknown-host') sendProblem(res, 'gateway-unknown-host', `no route serves host ${host}`);
    else sendProblem(res, 'gateway-route-not-found', `no route matches ${req.method!} ${path}`);
    return;
  }
  const ex = new Exchange(runtime, table, found.route, req, res, host, path, q === -1 ? '' : url.slice(q));
  holder.ex = ex;
  ex.run();
}
