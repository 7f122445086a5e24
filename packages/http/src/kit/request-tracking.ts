/**
 * Per-request bookkeeping, on two hooks (a third on routes that take a body):
 *
 * - `onRequest`: refuses new requests while the instance drains (503
 *   `shutting-down`); refuses header-injection attempts in `x-request-id`,
 *   `traceparent` or `tracestate` (400 `invalid-header`); echoes the request
 *   id; validates the W3C trace context; and sets `request.requestContext`,
 *   entering it as the ambient context (`request-context.ts`), which the
 *   client reads to propagate them, once the process uses it.
 * - `preValidation`, only on routes whose method may carry a body: a body is
 *   read on the socket's events, outside the context entered in `onRequest`,
 *   so it is entered again before the handler. A GET never leaves it: its
 *   routes get no hook (each hook Fastify runs costs).
 * - `onResponse`: publishes the finished request on `bulwark:http:request`
 *   and writes one access-log line through the request's pino logger; while
 *   draining, closes the connection the response leaves idle.
 *
 * The request id itself is chosen by Fastify's `genReqId` (`kitServerOptions`),
 * so the logger's `reqId` and the kit's id are the same.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions } from 'fastify';
import { problem } from '../problem/problem-error.js';
import { kitProblem } from '../problem/render-problem.js';
import { sendProblem } from '../problem/send-problem.js';
import { enterRequestContext, requestContextInUse, useRequestContext, type RequestContext } from '../request-context.js';
import { httpRequestChannel } from './request-channel.js';
import { isHeaderInjection, REQUEST_ID_HEADER } from './request-id.js';
import { parseTraceparent, parseTracestate } from './trace-context.js';

/** Shared with graceful shutdown: true from the moment draining starts. */
export interface DrainState {
  draining: boolean;
}

export interface RequestTrackingOptions {
  /** Write an access-log line per request at `info`. Default true. */
  accessLog?: boolean;
  /** Enter the ambient request context for every request (`'always'`), or once the process uses it (`'on-demand'`, the default). */
  requestContext?: 'on-demand' | 'always';
}

/** Methods whose requests never carry a body Fastify reads (it parses none for them). */
const BODYLESS = new Set(['GET', 'HEAD', 'TRACE']);

const shuttingDown = kitProblem('shutting-down', 'This instance is shutting down; retry on another one.');

/** Installs the request-tracking hooks on `fastify` (the root instance: the kit is wrapped by fastify-plugin). */
export function installRequestTracking(fastify: FastifyInstance, state: DrainState, options: RequestTrackingOptions = {}): void {
  const accessLog = options.accessLog ?? true;
  const mode = options.requestContext ?? 'on-demand';
  if (mode !== 'on-demand' && mode !== 'always') throw new TypeError(`serviceKit: option "requestContext" must be "on-demand" or "always", got ${String(mode)}`);
  if (mode === 'always') useRequestContext();
  fastify.decorateRequest('requestContext', null as unknown as RequestContext);

  fastify.addHook('onRequest', function trackRequest(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) {
    if (state.draining) {
      reply.header('connection', 'close');
      sendProblem(reply, shuttingDown);
      return;
    }
    const id = request.id;
    reply.header(REQUEST_ID_HEADER, id);
    const headers = request.headers;
    const incomingId = headers[REQUEST_ID_HEADER];
    if (incomingId !== undefined && incomingId !== id && isHeaderInjection(incomingId as string)) {
      done(problem('invalid-header', 'x-request-id holds characters a header may not carry', { extensions: { header: REQUEST_ID_HEADER } }));
      return;
    }
    const traceparentHeader = headers.traceparent;
    let context: RequestContext;
    if (traceparentHeader === undefined) {
      context = { requestId: id };
    } else {
      const rejected = injected(traceparentHeader, 'traceparent') ?? injected(headers.tracestate, 'tracestate');
      if (rejected !== undefined) {
        done(rejected);
        return;
      }
      const traceparent = parseTraceparent(traceparentHeader as string);
      const tracestateHeader = headers.tracestate;
      const tracestate = traceparent === undefined || typeof tracestateHeader !== 'string' ? undefined : parseTracestate(tracestateHeader);
      context = traceparent === undefined ? { requestId: id } : tracestate === undefined ? { requestId: id, traceparent } : { requestId: id, traceparent, tracestate };
    }
    request.requestContext = context;
    if (requestContextInUse()) enterRequestContext(context);
    done();
  });

  // A body is read on the socket's events, outside the context entered above: enter it again before the handler.
  // Only routes that may take a body get the hook: on the others it would never have anything to do.
  fastify.addHook('onRoute', (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (methods.every((method) => BODYLESS.has(method.toUpperCase()))) return;
    const existing = route.preValidation;
    route.preValidation = [reenterContext, ...(existing === undefined ? [] : Array.isArray(existing) ? existing : [existing])] as never;
  });

  fastify.addHook('onResponse', function finishRequest(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) {
    // While draining, a keep-alive connection is closed as soon as its response is out (server.close() only closes those idle when it is called).
    if (state.draining) fastify.server.closeIdleConnections();
    const publish = httpRequestChannel.hasSubscribers;
    const log = accessLog && (request.log as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled?.('info') === true;
    if (publish || log) {
      const route = request.routeOptions.url ?? '*';
      const durationMs = reply.elapsedTime;
      if (publish) httpRequestChannel.publish({ method: request.method, route, status: reply.statusCode, durationMs, requestId: request.id });
      if (log) request.log.info({ method: request.method, route, url: request.url, status: reply.statusCode, durationMs }, 'request completed');
    }
    done();
  });
}

function reenterContext(request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
  const context = request.requestContext;
  // Without a body nothing ran outside the context entered in onRequest: nothing to restore.
  if (context !== null && request.body !== undefined && requestContextInUse()) enterRequestContext(context);
  done();
}

function injected(value: string | string[] | undefined, header: string) {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && !isHeaderInjection(value)) return undefined;
  return problem('invalid-header', `${header} holds characters a header may not carry`, { extensions: { header } });
}
