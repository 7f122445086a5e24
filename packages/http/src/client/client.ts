/**
 * A resilient HTTP client for one dependency, on an undici `Pool`.
 *
 * Every call runs through a `@bulwark/resilience` pipeline — by default
 * retry (transient failures only, exponential backoff with full jitter, a
 * shared retry budget, `Retry-After` honoured) → circuit breaker → per-attempt
 * timeout — under the call's deadline (its own `timeoutMs`, the client's
 * `deadlineMs`, or the ambient one inherited from an enclosing policy or
 * request, whichever ends first). Each attempt:
 *
 * - sends the remaining budget as `bulwark-deadline-ms`, so the callee gives
 *   up before we do;
 * - carries `traceparent`/`tracestate`/`x-request-id` from the request being
 *   served, unless the caller (or a tracer) already set them;
 * - on POST, PUT, PATCH and DELETE carries an `Idempotency-Key`, one per
 *   logical call and the same on every retry; such calls are retried only
 *   when a key travels with them (`idempotencyKey: false` opts out of both);
 * - reads at most `maxResponseBytes` of the body, aborting the response past it.
 *
 * Non-2xx answers throw `HttpStatusError` with the status and, for
 * `application/problem+json`, the parsed problem. Inner hops of a call chain
 * should use `retry: 'none'` (or `retry: false` per call): one retry layer per
 * chain, so retries do not multiply down the call graph.
 *
 * @example
 * ```ts
 * const inventory = createClient({ baseUrl: 'http://inventory:8080', name: 'inventory', timeoutMs: 300 });
 * const stock = await inventory.get<Stock>(`/stock/${sku}`);
 * await inventory.post('/reservations', { sku, qty }, { timeoutMs: 1_000 });
 * ```
 */
import { randomUUID } from 'node:crypto';
import { Pool, type Dispatcher } from 'undici';
import {
  circuitBreaker,
  DEADLINE_HEADER,
  isDependencyFailure,
  outgoingDeadlineHeader,
  pipeline,
  retry,
  RetryBudget,
  systemClock,
  timeout,
  type CallContext,
  type CircuitBreakerOptions,
  type CircuitBreakerPolicy,
  type Clock,
  type ExecuteOptions,
  type Policy,
  type RetryOptions,
  type RetryPolicy,
} from '@bulwark/resilience';
import { ClientOptionError, HttpNetworkError, HttpStatusError, InvalidResponseError, isHttpClientError, ResponseTooLargeError, type ProblemDetails } from './errors.js';
import { BodyTooLargeError, discard, readCapped } from './read-body.js';
import { addContextHeaders } from './trace-headers.js';

export type HttpMethod = 'GET' | 'HEAD' | 'OPTIONS' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** How long a client's breaker stays open unless `breaker.openDuration` says otherwise. */
export const CLIENT_OPEN_DURATION = { baseMs: 2_000, multiplier: 2, maxMs: 30_000 } as const;

export interface PoolOptions {
  /** Connections to the dependency. Default 32. */
  connections?: number;
  /** Requests pipelined per connection. Default 1. */
  pipelining?: number;
  /** Idle keep-alive before a socket is closed. Default 4 s (under most servers' 5 s). */
  keepAliveTimeoutMs?: number;
  /** Time to establish a connection. Default 5 s. */
  connectTimeoutMs?: number;
}

export interface ClientOptions {
  /** Origin and optional base path, e.g. `http://inventory:8080/v1`. */
  baseUrl: string;
  /** The dependency's name: in errors, policy names and events. */
  name: string;
  /**
   * `'default'`: 3 attempts, backoff 50 ms..2 s with full jitter, a shared retry
   * budget. `'none'`: no retry layer here (inner hops). Or retry options.
   */
  retry?: 'default' | 'none' | RetryOptions;
  /** Budget for retries to this dependency. Default: 20% of recent requests, at least 5 per second. */
  retryBudget?: RetryBudget;
  /** Per-attempt timeout. Default 10 s. */
  timeoutMs?: number;
  /** Default total budget of one call, retries included. Default: none beyond the ambient deadline. */
  deadlineMs?: number;
  /**
   * Circuit-breaker options, or `false` for none. Default: the breaker's defaults,
   * except that it opens for 2 s, doubling with each consecutive re-open up to
   * 30 s (`CLIENT_OPEN_DURATION`): a stall of a few seconds costs seconds, not
   * the breaker's flat 30 s, while a dependency that stays down is probed ever
   * less often.
   */
  breaker?: CircuitBreakerOptions | false;
  /** Replaces the whole pipeline built from `retry`, `breaker` and `timeoutMs`. */
  policies?: Policy;
  pool?: PoolOptions;
  /** Largest response body read. Default 8 MiB. */
  maxResponseBytes?: number;
  /** Headers sent on every call (the call's own win). */
  headers?: Record<string, string>;
  /**
   * undici interceptors every attempt goes through, composed onto the pool
   * (`pool.compose(interceptors)`: the last one sees a call first) — fault
   * injection (`@bulwark/faults/undici`), recording, DNS overrides. An error an
   * interceptor raises is classified like one from the network.
   */
  interceptors?: readonly Dispatcher.DispatcherComposeInterceptor[];
  clock?: Clock;
}

export interface RequestOptions {
  method?: HttpMethod;
  /** Path below `baseUrl`, starting with `/`. */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  headers?: Record<string, string>;
  /** Sent as JSON (sets `content-type`). */
  json?: unknown;
  /** Raw body. */
  body?: string | Uint8Array;
  /** The key for an unsafe method; default a new UUID per call. `false`: send none (and never retry). */
  idempotencyKey?: string | false;
  /** `false`: no retry for this call. */
  retry?: boolean;
  /** Total budget for this call, retries included. */
  timeoutMs?: number;
  signal?: AbortSignal;
  maxResponseBytes?: number;
}

/** A 2xx response, fully read. */
export interface ClientResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text(): string;
  /** The body parsed as JSON (`undefined` when empty); `InvalidResponseError` when it is not JSON. */
  json<T = unknown>(): T;
}

export type CallOptions = Omit<RequestOptions, 'method' | 'path' | 'json'>;

const SAFE_METHODS = new Set<HttpMethod>(['GET', 'HEAD', 'OPTIONS']);
const METHODS = new Set<HttpMethod>(['GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH', 'DELETE']);
const MAX_ERROR_BODY = 65_536;
const BODYLESS_STATUS = new Set([204, 205, 304]);

export class HttpClient {
  readonly name: string;
  readonly baseUrl: string;
  /** The pipeline every call runs through. */
  readonly pipeline: Policy;
  /** The retry policy (events: `client.retryPolicy?.on('retry', ...)`), when this client retries. */
  readonly retryPolicy: RetryPolicy | undefined;
  readonly breaker: CircuitBreakerPolicy | undefined;
  private readonly noRetry: Policy | undefined;
  private readonly pool: Pool;
  /** The pool, or the pool with the interceptors composed onto it. */
  private readonly dispatcher: Dispatcher;
  private readonly basePath: string;
  private readonly maxResponseBytes: number;
  private readonly defaultHeaders: Record<string, string>;
  private readonly deadlineMs: number | undefined;

  constructor(options: ClientOptions) {
    const name = options.name;
    if (typeof name !== 'string' || !/^[A-Za-z0-9_.:-]{1,64}$/.test(name)) throw new ClientOptionError(String(name), 'name', '1 to 64 letters, digits or _.:-');
    this.name = name;
    let url: URL;
    try {
      url = new URL(options.baseUrl);
    } catch {
      throw new ClientOptionError(name, 'baseUrl', 'an absolute http(s) URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ClientOptionError(name, 'baseUrl', 'an absolute http(s) URL');
    if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') throw new ClientOptionError(name, 'baseUrl', 'a URL without query, fragment or credentials');
    this.baseUrl = options.baseUrl;
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.maxResponseBytes = positiveInteger(name, 'maxResponseBytes', options.maxResponseBytes ?? 8 * 1_048_576);
    this.deadlineMs = options.deadlineMs === undefined ? undefined : positiveInteger(name, 'deadlineMs', options.deadlineMs);
    this.defaultHeaders = lowerCaseKeys(options.headers ?? {});
    const clock = options.clock ?? systemClock;

    if (options.policies !== undefined) {
      this.pipeline = options.policies;
    } else {
      const timeoutMs = positiveInteger(name, 'timeoutMs', options.timeoutMs ?? 10_000);
      const breakerPolicy =
        options.breaker === false
          ? undefined
          : circuitBreaker({ name: `${name}.breaker`, clock, isFailure: countsAgainstDependency, openDuration: CLIENT_OPEN_DURATION, ...options.breaker });
      const attemptTimeout = timeout(timeoutMs, { name: `${name}.timeout`, clock });
      const mode = options.retry ?? 'default';
      let retryPolicy: RetryPolicy | undefined;
      if (mode !== 'none') {
        const budget = options.retryBudget ?? new RetryBudget({ ratio: 0.2, minRetriesPerSecond: 5, clock });
        const retryOptions: RetryOptions = mode === 'default' ? {} : mode;
        retryPolicy = retry({ name: `${name}.retry`, maxAttempts: 3, backoff: { baseMs: 50, capMs: 2_000 }, budget, clock, ...retryOptions });
      }
      this.retryPolicy = retryPolicy;
      this.breaker = breakerPolicy;
      this.pipeline = pipeline({ retry: retryPolicy, breaker: breakerPolicy, timeout: attemptTimeout });
      this.noRetry = retryPolicy === undefined ? this.pipeline : pipeline({ breaker: breakerPolicy, timeout: attemptTimeout });
    }

    const pool = options.pool ?? {};
    this.pool = new Pool(url.origin, {
      connections: positiveInteger(name, 'pool.connections', pool.connections ?? 32),
      pipelining: positiveInteger(name, 'pool.pipelining', pool.pipelining ?? 1),
      keepAliveTimeout: positiveInteger(name, 'pool.keepAliveTimeoutMs', pool.keepAliveTimeoutMs ?? 4_000),
      connectTimeout: positiveInteger(name, 'pool.connectTimeoutMs', pool.connectTimeoutMs ?? 5_000),
      // Attempt time is bounded by the pipeline's timeout, which aborts the request; these are backstops.
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    const interceptors: unknown = options.interceptors ?? [];
    if (!Array.isArray(interceptors) || interceptors.some((i) => typeof i !== 'function')) throw new ClientOptionError(name, 'interceptors', 'an array of undici interceptors (functions)');
    this.dispatcher = interceptors.length === 0 ? this.pool : this.pool.compose(Array.from(options.interceptors ?? []));
  }

  /** One logical call: retried per the pipeline, `HttpStatusError` for non-2xx. */
  request(options: RequestOptions): Promise<ClientResponse> {
    const method = options.method ?? 'GET';
    if (!METHODS.has(method)) return Promise.reject(new ClientOptionError(this.name, 'method', [...METHODS].join(', ')));
    const path = options.path;
    if (typeof path !== 'string' || !path.startsWith('/') || path.startsWith('//') || /[\s#]/.test(path)) {
      return Promise.reject(new ClientOptionError(this.name, 'path', 'a path starting with a single "/", without spaces or fragment'));
    }
    const target = this.basePath + path + queryString(options.query, path.includes('?'));
    const headers = { ...this.defaultHeaders, ...lowerCaseKeys(options.headers ?? {}) };
    let body: string | Uint8Array | undefined = options.body;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] ??= 'application/json';
    }
    headers.accept ??= 'application/json, application/problem+json;q=0.9, */*;q=0.1';

    const unsafe = !SAFE_METHODS.has(method);
    let key: string | undefined;
    if (unsafe && options.idempotencyKey !== false) {
      key = options.idempotencyKey ?? headers['idempotency-key'] ?? randomUUID();
      headers['idempotency-key'] = key;
    }
    addContextHeaders(headers);

    const noRetry = options.retry === false;
    const policy = noRetry && this.noRetry !== undefined ? this.noRetry : this.pipeline;
    const execute: ExecuteOptions = { idempotent: !unsafe };
    // Without a layer of our own to drop, refusing the key is what stops a retry: unsafe without a key is never retried.
    if (noRetry && this.noRetry === undefined) execute.idempotent = false;
    else if (key !== undefined) execute.idempotencyKey = key;
    const timeoutMs = options.timeoutMs ?? this.deadlineMs;
    if (timeoutMs !== undefined) execute.timeoutMs = timeoutMs;
    if (options.signal !== undefined) execute.signal = options.signal;
    const maxBytes = options.maxResponseBytes ?? this.maxResponseBytes;
    return policy.execute((ctx) => this.attempt(ctx, method, target, headers, body, maxBytes), execute);
  }

  /** GET, parsed JSON. */
  get<T = unknown>(path: string, options: CallOptions = {}): Promise<T> {
    return this.request({ ...options, method: 'GET', path }).then((r) => r.json<T>());
  }

  /** POST `json`, parsed JSON (an Idempotency-Key is added). */
  post<T = unknown>(path: string, json?: unknown, options: CallOptions = {}): Promise<T> {
    return this.request({ ...options, method: 'POST', path, json }).then((r) => r.json<T>());
  }

  /** PUT `json`, parsed JSON. */
  put<T = unknown>(path: string, json?: unknown, options: CallOptions = {}): Promise<T> {
    return this.request({ ...options, method: 'PUT', path, json }).then((r) => r.json<T>());
  }

  /** PATCH `json`, parsed JSON. */
  patch<T = unknown>(path: string, json?: unknown, options: CallOptions = {}): Promise<T> {
    return this.request({ ...options, method: 'PATCH', path, json }).then((r) => r.json<T>());
  }

  /** DELETE, parsed JSON (`undefined` for an empty body). */
  delete<T = unknown>(path: string, options: CallOptions = {}): Promise<T> {
    return this.request({ ...options, method: 'DELETE', path }).then((r) => r.json<T>());
  }

  /** Closes the pool after in-flight requests finish. */
  close(): Promise<void> {
    return this.pool.close();
  }

  private async attempt(ctx: CallContext, method: HttpMethod, path: string, baseHeaders: Record<string, string>, body: string | Uint8Array | undefined, maxBytes: number): Promise<ClientResponse> {
    const headers = { ...baseHeaders };
    const deadline = outgoingDeadlineHeader(ctx.remaining());
    if (deadline !== undefined) headers[DEADLINE_HEADER] = deadline;
    let response: Dispatcher.ResponseData;
    try {
      response = await this.dispatcher.request({ method, path, headers, body, signal: ctx.signal });
    } catch (error) {
      throw this.networkError(error, ctx, method, path);
    }
    const { statusCode: status } = response;
    const responseHeaders = response.headers as Record<string, string | string[] | undefined>;
    const ok = status >= 200 && status < 300;
    let raw: Buffer;
    try {
      if (method === 'HEAD' || BODYLESS_STATUS.has(status)) {
        discard(response.body);
        raw = Buffer.alloc(0);
      } else {
        raw = await readCapped(response.body, ok ? maxBytes : Math.min(maxBytes, MAX_ERROR_BODY), responseHeaders['content-length']);
      }
    } catch (error) {
      if (error instanceof BodyTooLargeError) {
        if (ok) throw new ResponseTooLargeError(this.name, method, path, status, maxBytes);
        raw = Buffer.alloc(0); // an oversized error body still reports its status
      } else throw this.networkError(error, ctx, method, path);
    }
    if (!ok) throw new HttpStatusError(this.name, method, path, status, responseHeaders, parseProblem(responseHeaders['content-type'], raw));
    const name = this.name;
    return {
      status,
      headers: responseHeaders,
      body: raw,
      text: () => raw.toString('utf8'),
      json: <T>() => {
        if (raw.length === 0) return undefined as T;
        try {
          return JSON.parse(raw.toString('utf8')) as T;
        } catch (error) {
          throw new InvalidResponseError(name, method, path, status, error);
        }
      },
    };
  }

  private networkError(error: unknown, ctx: CallContext, method: string, path: string): unknown {
    // Aborted by a policy (timeout, deadline, hedge) or the caller: their reason says why.
    if (ctx.signal.aborted) return ctx.signal.reason;
    if (isHttpClientError(error)) return error;
    const code = typeof (error as { code?: unknown } | null)?.code === 'string' ? (error as { code: string }).code : 'UNKNOWN';
    if (code === 'UND_ERR_INVALID_ARG' || code === 'ERR_INVALID_ARG_TYPE' || code === 'ERR_INVALID_CHAR' || code === 'ERR_INVALID_HTTP_TOKEN') {
      return new ClientOptionError(this.name, 'headers', 'valid header names and values (no control characters)');
    }
    return new HttpNetworkError(this.name, method, path, code, error, TRANSIENT_CODES.has(code));
  }
}

const TRANSIENT_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ENOTCONN',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED',
]);

/** A client error counts against the breaker when the dependency is unwell; anything else by the resilience default. */
function countsAgainstDependency(error: unknown): boolean {
  return isHttpClientError(error) ? error.dependencyFailure : isDependencyFailure(error);
}

/**
 * Creates a client for one dependency (see `HttpClient`).
 *
 * @example
 * ```ts
 * const payments = createClient({ baseUrl: 'http://payments:8080', name: 'payments', timeoutMs: 500, deadlineMs: 2_000 });
 * ```
 */
export function createClient(options: ClientOptions): HttpClient {
  return new HttpClient(options);
}

function parseProblem(contentType: string | string[] | undefined, raw: Buffer): ProblemDetails | undefined {
  const type = Array.isArray(contentType) ? contentType[0] : contentType;
  if (type === undefined || !/^application\/problem\+json\b/i.test(type) || raw.length === 0) return undefined;
  try {
    const value: unknown = JSON.parse(raw.toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as ProblemDetails) : undefined;
  } catch {
    return undefined;
  }
}

function queryString(query: RequestOptions['query'], hasQuery: boolean): string {
  if (query === undefined) return '';
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.append(k, String(v));
  const s = params.toString();
  return s === '' ? '' : (hasQuery ? '&' : '?') + s;
}

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = v;
  return out;
}

function positiveInteger(client: string, option: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new ClientOptionError(client, option, 'a positive integer');
  return value;
}
