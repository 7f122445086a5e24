/**
 * `httpParticipant`: a saga participant reached over HTTP through the
 * resilient client of `@bulwark/http/client`.
 *
 * Each call is one request of the route mapped to the operation, with
 * - `Idempotency-Key: <ctx.idempotencyKey>` (the same on every retry, re-send
 *   and resumption, so a service using the kit's `idempotency` plugin applies
 *   it once and replays its answer), plus the saga id, type, step, phase and,
 *   on a compensation, `Bulwark-Invoke-Key` (the operation to undo);
 * - the step's `signal` (the attempt timeout cancels the request) and, through
 *   the client, the remaining budget as `bulwark-deadline-ms` and the trace context;
 * - no retry of the client's own by default: the step's retry policy is the
 *   one retry layer (`clientRetries: true` adds the client's).
 *
 * Answers: a 2xx body is the result (JSON; `undefined` when empty). Errors are
 * classified for the step's retry policy:
 * - 4xx → `ParticipantRefusedError` (final, `retryable: false`), except
 * - 408, 429, and the kit's `idempotency-in-progress` / `idempotency-claim-lost`
 *   409s (an earlier attempt of this very key is still running) →
 *   `ParticipantUnavailableError` (transient, `Retry-After` honoured);
 * - 5xx, network failures, client timeouts, a 2xx whose body cannot be read
 *   (it took effect; its answer is replayed on the next attempt), and the
 *   client's breaker or bulkhead refusing (the participant never saw the
 *   call) → `ParticipantUnavailableError`;
 * - when the step's own signal ended the call, its reason (the attempt's
 *   timeout error) is rethrown as is.
 * `classify` overrides the rule per answer.
 *
 * @example
 * ```ts
 * import { createClient } from '@bulwark/http/client';
 * const payments = httpParticipant(createClient({ baseUrl: 'http://payments:8080', name: 'payments', retry: 'none' }), {
 *   'payments.charge': 'POST /charges',
 *   'payments.refund': { method: 'POST', path: '/charges/{invokeKey}/refund' }, // {invokeKey}: the charge's idempotency key
 *   'payments.status': { method: 'GET', path: (req: { chargeId: string }) => `/charges/${encodeURIComponent(req.chargeId)}` },
 * });
 * // in a step: invoke: (order, ctx) => payments.call('payments.charge', { amount: order.amount }, ctx)
 * ```
 */
import { problemTypeUri } from '@bulwark/http';
import { ClientOptionError, HttpStatusError, isHttpClientError, type HttpClient } from '@bulwark/http/client';
import { ParticipantConfigError, ParticipantRefusedError, ParticipantUnavailableError } from './errors.js';
import { callMetadata, metadataHeaders, type CallMetadata, type Participant, type ParticipantContext } from './participant.js';

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
const METHODS: readonly Method[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

/** How one operation maps to a request. */
export interface HttpOperation<Req = never> {
  /** Default `POST`. */
  method?: Method;
  /**
   * The path below the client's base URL. A string may hold placeholders:
   * `{sagaId}`, `{step}`, `{idempotencyKey}`, `{invokeKey}` (the call's
   * metadata) or `{field}` (a top-level field of the request), each URI-encoded.
   */
  path: string | ((request: Req, meta: CallMetadata) => string);
  /** The JSON body. Default: the request (none on GET and DELETE). */
  body?: (request: Req, meta: CallMetadata) => unknown;
}

export interface HttpParticipantOptions {
  /** Name in errors. Default: the client's name. */
  name?: string;
  /** Let the client retry as well as the step. Default false: one retry layer per call chain. */
  clientRetries?: boolean;
  /** Headers sent with every call. */
  headers?: Record<string, string>;
  /** Classifies an HTTP error answer: `true` transient, `false` final, `undefined` the default rule. */
  classify?: (error: HttpStatusError) => boolean | undefined;
}

/** 4xx answers that mean "an attempt of this key is still in flight": retry, do not give up. */
const IN_FLIGHT_TYPES = new Set([problemTypeUri('idempotency-in-progress'), problemTypeUri('idempotency-claim-lost')]);

interface CompiledOperation {
  method: Method;
  path: (request: unknown, meta: CallMetadata) => string;
  body: ((request: unknown, meta: CallMetadata) => unknown) | undefined;
}

/**
 * A participant over HTTP (see the module comment). `routes` maps each
 * operation to a request: `'POST /charges'`, `'/charges'` (POST) or an `HttpOperation`.
 */
export function httpParticipant(client: HttpClient, routes: Readonly<Record<string, string | HttpOperation<never>>>, options: HttpParticipantOptions = {}): Participant {
  const name = options.name ?? client?.name;
  if (typeof client !== 'object' || client === null || typeof client.request !== 'function') throw new ParticipantConfigError(String(name), 'client', 'must be an HttpClient from @bulwark/http/client');
  if (typeof routes !== 'object' || routes === null) throw new ParticipantConfigError(name, 'routes', 'must map operations to routes');
  const compiled = new Map<string, CompiledOperation>();
  for (const [operation, route] of Object.entries(routes)) compiled.set(operation, compile(name, operation, route));
  const extraHeaders = { ...options.headers };
  const clientRetries = options.clientRetries === true;

  return {
    name,
    async call<Res = unknown>(operation: string, request: unknown, ctx: ParticipantContext): Promise<Res> {
      const op = compiled.get(operation);
      if (op === undefined) throw new ParticipantConfigError(name, operation, `is not an operation of this participant (it has ${[...compiled.keys()].join(', ')})`);
      const meta = callMetadata(ctx);
      const path = op.path(request, meta);
      const json = op.body !== undefined ? op.body(request, meta) : op.method === 'GET' || op.method === 'DELETE' ? undefined : request;
      try {
        const response = await client.request({
          method: op.method,
          path,
          headers: { ...extraHeaders, ...metadataHeaders(meta) },
          ...(json === undefined ? {} : { json }),
          idempotencyKey: meta.idempotencyKey,
          signal: ctx.signal,
          ...(clientRetries ? {} : { retry: false }),
        });
        return response.json<Res>();
      } catch (error) {
        // The step gave up (attempt timeout, saga deadline, lost lease): its reason says why, and is classified already.
        if (ctx.signal.aborted) throw ctx.signal.reason;
        throw classify(name, operation, error, options.classify);
      }
    },
  };
}

function classify(name: string, operation: string, error: unknown, override: HttpParticipantOptions['classify']): unknown {
  if (error instanceof HttpStatusError) {
    const status = error.status;
    const problem = error.problem;
    const decided = override?.(error);
    const transient = decided ?? (status >= 500 || status === 408 || status === 429 || (typeof problem?.type === 'string' && IN_FLIGHT_TYPES.has(problem.type)));
    const reason = typeof problem?.detail === 'string' ? problem.detail : typeof problem?.title === 'string' ? problem.title : `HTTP ${status}`;
    if (transient) return new ParticipantUnavailableError(name, operation, reason, { status, ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }), cause: error });
    const participantCode = typeof problem?.code === 'string' ? problem.code : undefined;
    return new ParticipantRefusedError(name, operation, reason, { status, ...(participantCode === undefined ? {} : { participantCode }), ...(problem === undefined ? {} : { problem }), cause: error });
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'BULWARK_TIMEOUT' || code === 'BULWARK_DEADLINE_EXCEEDED') {
    // The client's own timeout: the request may or may not have been applied; the same key makes asking again safe.
    return new ParticipantUnavailableError(name, operation, 'timed out', { cause: error });
  }
  if (isHttpClientError(error)) {
    // An unusable option is our own mistake: final. A network failure, or a 2xx whose body is too large or not JSON (the
    // operation took effect, its answer did not arrive), may succeed when asked again with the same key.
    if (error instanceof ClientOptionError) return error;
    return new ParticipantUnavailableError(name, operation, error.message, { cause: error });
  }
  if (code === 'BULWARK_CIRCUIT_OPEN' || code === 'BULWARK_BULKHEAD_REJECTED') {
    // The participant never saw the call: a later attempt of the step may pass (after the breaker's Retry-After).
    const retryAfterMs = (error as { retryAfterMs?: unknown }).retryAfterMs;
    return new ParticipantUnavailableError(name, operation, String(code), { ...(typeof retryAfterMs === 'number' ? { retryAfterMs } : {}), cause: error });
  }
  return error;
}

function compile(name: string, operation: string, route: string | HttpOperation<never>): CompiledOperation {
  let method: Method = 'POST';
  let path: string | ((request: never, meta: CallMetadata) => string);
  let body: HttpOperation<never>['body'];
  if (typeof route === 'string') {
    const m = /^(?:([A-Z]+)\s+)?(\/\S*)$/.exec(route.trim());
    if (m === null) throw new ParticipantConfigError(name, `routes.${operation}`, `must be "METHOD /path" or "/path", got ${JSON.stringify(route)}`);
    if (m[1] !== undefined) method = m[1] as Method;
    path = m[2] as string;
  } else if (typeof route === 'object' && route !== null) {
    method = route.method ?? 'POST';
    path = route.path;
    body = route.body;
    if (body !== undefined && typeof body !== 'function') throw new ParticipantConfigError(name, `routes.${operation}.body`, 'must be a function of the request');
  } else {
    throw new ParticipantConfigError(name, `routes.${operation}`, 'must be a route string or { method, path, body }');
  }
  if (!METHODS.includes(method)) throw new ParticipantConfigError(name, `routes.${operation}.method`, `must be one of ${METHODS.join(', ')}`);
  let pathOf: (request: unknown, meta: CallMetadata) => string;
  if (typeof path === 'function') pathOf = path as (request: unknown, meta: CallMetadata) => string;
  else if (typeof path === 'string' && path.startsWith('/')) pathOf = template(name, operation, path);
  else throw new ParticipantConfigError(name, `routes.${operation}.path`, 'must be a path starting with "/" or a function');
  return { method, path: pathOf, body: body as CompiledOperation['body'] };
}

/** A path with `{placeholders}` filled from the call metadata or the request's top-level fields. */
function template(name: string, operation: string, path: string): (request: unknown, meta: CallMetadata) => string {
  if (!path.includes('{')) return () => path;
  return (request, meta) =>
    path.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_match, field: string) => {
      const fromMeta = (meta as unknown as Record<string, unknown>)[field];
      const value = fromMeta ?? (typeof request === 'object' && request !== null ? (request as Record<string, unknown>)[field] : undefined);
      if (typeof value !== 'string' && typeof value !== 'number') throw new ParticipantConfigError(name, `routes.${operation}.path`, `has {${field}}, which neither the call nor the request provides`);
      return encodeURIComponent(String(value));
    });
}
