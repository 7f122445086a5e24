/**
 * The data path: one `Exchange` per client request — route, auth, rate
 * limit, then the attempts (`attempt.ts`) against instances picked by the
 * upstream layer, each an `UpstreamPool` request (`h1/pool.ts`). Bodies stream
 * both ways and are never buffered: the request body is the `IncomingMessage`
 * stream itself, and each response chunk is written to the client as it
 * arrives, with backpressure.
 *
 * Retries (the route's `retry` with its `RetryBudget`) and the breaker are
 * `@bulwark/resilience` policies around the attempts. Nothing is retried once
 * a byte of a response went to the client, and a request with a body is never
 * retried (its body was streamed, not kept).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isAuthError, type AuthUser } from '@bulwark/http/auth';
import { DEADLINE_HEADER, incomingBudgetMs, type RateLimitDecision } from '@bulwark/resilience';
import { Attempt } from './attempt.js';
import type { SplitRequest } from './balancing/traffic-split.js';
import type { UpstreamService } from './balancing/types.js';
import { CLIENT_GONE, ClientGoneError, GatewayDeadlineError, NoInstanceError, ResponseTooLargeError, UpstreamStatusError } from './errors.js';
import { connOf, cookieValue, finishHead, forwardHead, hostOf, type ConnInfo } from './forwarding.js';
import { sendProblem, type GatewayProblemSlug } from './problems.js';
import type { Runtime, RuntimeRoute, Table } from './runtime.js';

export { CLIENT_GONE, ClientGoneError, GatewayDeadlineError, NoInstanceError, ResponseTooLargeError, UpstreamStatusError, isRetryableUpstreamFailure, isUpstreamFailure } from './errors.js';
export { hostOf } from './forwarding.js';

const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
const BEARER = /^bearer /i;
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i;
/** Upstream failures answered 504 rather than 502. */
const TIMEOUT_CODES = new Set(['BULWARK_UPSTREAM_HEADERS_TIMEOUT', 'BULWARK_DEADLINE_EXCEEDED', 'BULWARK_TIMEOUT']);

/** One client request through the gateway; also the request the canary split reads. */
export class Exchange implements SplitRequest {
  user: AuthUser | undefined = undefined;
  service!: UpstreamService;
  path = '';
  /** The forwarded head but its per-attempt end (`finishHead`). */
  head = '';
  chunked = false;
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
    const req = this.req;
    const headers = req.headers;
    this.service = this.chooseService();
    const incoming = headers[DEADLINE_HEADER];
    const budget = incoming === undefined ? route.timeoutMs : incomingBudgetMs(incoming, { marginMs: 5, maxMs: route.timeoutMs });
    this.deadline = this.start + budget;
    this.path = (route.rewrite === undefined ? this.rawPath : route.rewrite(this.rawPath)) + this.query;
    const length = headers['content-length'];
    this.hasBody = length !== undefined ? length !== '0' : headers['transfer-encoding'] !== undefined;
    // a body of unknown length (chunked from the client) goes chunked upstream too
    this.chunked = this.hasBody && length === undefined;
    this.head = forwardHead(req, this.path, this.conn, this.host, this.runtime.trustForwarded, route.preserveHost, this.chunked);
    const policy = route.policy;
    // A non-5xx head was streamed when it arrived (the attempt resolved then): only failures need handling.
    const onFail = (error: unknown): void => this.failed(error);
    if (policy === undefined) {
      this.attempt().then(undefined, onFail);
      return;
    }
    const key = headers['idempotency-key'];
    const idempotent = !this.hasBody && IDEMPOTENT_METHODS.has(req.method!);
    // The deadline is enforced per attempt (the call's head timeout, and attempt() refusing a spent
    // budget), not by `execute`'s deadline option: that one enters an AsyncLocalStorage scope, which
    // turns on promise hooks for the whole process (a few µs per request). An idempotent request
    // without an Idempotency-Key passes no options at all: they would be the defaults, and without
    // options `execute` takes its fast path (no per-call scope bookkeeping, one promise less).
    const options = idempotent ? (typeof key === 'string' ? { idempotencyKey: key } : undefined) : { idempotent: false, ...(typeof key === 'string' && !this.hasBody ? { idempotencyKey: key } : {}) };
    policy.execute(() => this.attempt(), options).then(undefined, onFail);
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

  /** One attempt: pick an instance, send, settle at the response head. */
  private attempt(): Promise<Attempt> {
    if (this.held !== undefined) {
      this.held.discard();
      this.held = undefined;
    }
    if (this.gone) return Promise.reject(CLIENT_GONE);
    const now = performance.now();
    const remaining = this.deadline - now;
    if (remaining < 1) return Promise.reject(new GatewayDeadlineError('deadline spent before an attempt'));
    // a retry goes to an instance not tried yet (the set is only made when there is a retry)
    if (this.instance !== undefined) (this.exclude ??= new Set()).add(this.instance);
    const lease = this.service.pick(this.exclude === undefined && this.route.tenant === undefined ? undefined : { exclude: this.exclude, tenant: this.tenant() });
    if (lease === undefined) return Promise.reject(new NoInstanceError(this.service.name));
    this.attempts++;
    this.instance = lease.instance.id;
    const pool = this.runtime.poolFor(lease.instance.url);
    const head = finishHead(this.head, this.route.preserveHost ? '' : pool.hostLine, remaining);
    return new Promise<Attempt>((resolve, reject) => {
      const attempt = new Attempt(this, lease, resolve, reject, now);
      this.current = attempt;
      attempt.call = pool.request(
        {
          head,
          isHead: this.req.method === 'HEAD',
          body: this.hasBody ? this.req : null,
          chunked: this.chunked,
          headersTimeoutMs: Math.ceil(remaining),
          bodyTimeoutMs: this.route.idleTimeoutMs,
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
    if (error instanceof GatewayDeadlineError || (typeof code === 'string' && TIMEOUT_CODES.has(code))) {
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

const kRuntime = Symbol('bulwark.gateway.runtime');
const kTable = Symbol('bulwark.gateway.table');
const kExchange = Symbol('bulwark.gateway.exchange');

/** A response with what its `close` listener needs (one shared listener: no closure per request). */
interface TrackedResponse extends ServerResponse {
  [kRuntime]: Runtime;
  [kTable]: Table;
  [kExchange]: Exchange | undefined;
}

function onResponseClose(this: TrackedResponse): void {
  const ex = this[kExchange];
  const table = this[kTable];
  table.inflight--;
  if (!this.writableFinished && ex !== undefined) ex.clientGone();
  this[kRuntime].finished(table, ex, this, this.req);
}

/** Validates the request line and Host, matches a route and runs the exchange. */
export function handleRequest(runtime: Runtime, req: IncomingMessage, response: ServerResponse): void {
  const table = runtime.table;
  table.inflight++;
  runtime.counters.requests++;
  const res = response as TrackedResponse;
  res[kRuntime] = runtime;
  res[kTable] = table;
  res[kExchange] = undefined;
  res.on('close', onResponseClose);
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
  res[kExchange] = ex;
  ex.run();
}
