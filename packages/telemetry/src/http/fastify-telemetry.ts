/**
 * `fastifyTelemetry`: one Fastify plugin for the server side of all three
 * pillars, in one `onRequest` / `onResponse` pair (cheaper than three plugins
 * each with its own hooks):
 *
 * - **Tracing**: extracts the W3C `traceparent` from the request, starts a
 *   SERVER span `<METHOD> <route>` (route template, never the raw URL;
 *   deferred while the trace is unsampled, `tracing/server-span.ts`), makes
 *   it the active context for the hooks and the handler, records errors, and
 *   ends it with `http.response.status_code` (status ERROR for 5xx).
 * - **RED metrics**: request counter and duration histogram per method,
 *   route and status class, with the trace id as exemplar for sampled
 *   traces.
 * - **Access log**: one `info` line per request on `request.log`, with
 *   `trace_id`/`span_id`, method, route, url, status and duration; when the
 *   logger samples (`createLogger({ sampling })`) and would drop it, the
 *   line is not even built. Give Fastify `logController: new LogController({
 *   disableRequestLogging: true })` so it does not write its own two lines.
 *
 * Own hooks rather than `@fastify/otel`: `npm run bench:telemetry` measures
 * both; this one creates one span per request where `@fastify/otel` adds a
 * handler span (and hook spans) to each, and it shares the timing with the
 * metrics and the access log.
 *
 * Register it before the routes (it wraps their handlers as they are added).
 *
 * @example
 * ```ts
 * const app = Fastify({ loggerInstance: logger, logController: new LogController({ disableRequestLogging: true }) });
 * await app.register(fastifyTelemetry, { telemetry, metrics });
 * app.get('/orders/:id', handler);
 * ```
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, context, propagation, type Context, type Span, type Tracer } from '@opentelemetry/api';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { kLogSampling, kTraceDecided, traceFraction } from '../logging/trace-fields.js';
import { HttpServerMetrics, statusClassIndex, type RedSeries } from '../metrics/http-metrics.js';
import { DeferredSpan, kStartServerSpan, withSpan, type StartServerSpan } from '../tracing/server-span.js';
import type { Metrics } from '../metrics/metrics.js';

export interface FastifyTelemetryOptions {
  /** A `setupTelemetry` handle (or any object with a `tracer`): server spans. */
  telemetry?: { tracer: Tracer };
  /** RED metrics into this registry. */
  metrics?: Metrics;
  /** One access line per request on `request.log`. Default true. */
  accessLog?: boolean;
  /** Requests to leave alone entirely (health checks, `/metrics`): by route template. */
  ignoreRoutes?: readonly string[];
}

interface Instrumented {
  /** `performance.now()` when the request arrived: the span's start and the duration's. */
  start: number;
  span: Span | undefined;
  context: Context | undefined;
  info: RouteInfo;
}

const kState = Symbol('bulwark.telemetry.request');
type WithState = FastifyRequest & { [kState]?: Instrumented };

interface RouteInfo {
  route: string;
  ignored: boolean;
  /** Span names by method. */
  names: Record<string, string>;
  /** RED series by method, then status class (`statusClassIndex`): recorded into without a lookup. */
  red: Record<string, (RedSeries | undefined)[]>;
}

const kRouteInfo = Symbol('bulwark.telemetry.route');
function routeInfo(request: FastifyRequest, ignored: ReadonlySet<string>, others: Map<string, RouteInfo>): RouteInfo {
  // The route's config, through Fastify's public API (the getter costs tens of nanoseconds).
  const options = request.routeOptions;
  const info = (options.config as unknown as Record<symbol, RouteInfo | undefined> | undefined)?.[kRouteInfo];
  if (info !== undefined) return info;
  // Not found (404s, routes added before the plugin): the route pattern as Fastify reports it.
  const route = options.url ?? 'unmatched';
  let other = others.get(route);
  if (other === undefined) {
    other = newRouteInfo(route, ignored);
    // Bounded: route patterns, not URLs, but a misbehaving router should not grow this without limit.
    if (others.size < 1_000) others.set(route, other);
  }
  return other;
}

function newRouteInfo(route: string, ignored: ReadonlySet<string>): RouteInfo {
  return { route, ignored: ignored.has(route), names: {}, red: {} };
}

/** The plugin; see the module comment. */
export function fastifyTelemetry(app: FastifyInstance, options: FastifyTelemetryOptions, done: (error?: Error) => void): void {
  const tracer = options.telemetry?.tracer;
  // A `setupTelemetry` handle starts server spans the cheap way (deferred while unsampled); any other tracer the usual way.
  const startSpan: StartServerSpan | undefined =
    tracer === undefined
      ? undefined
      : ((options.telemetry as { [kStartServerSpan]?: StartServerSpan })[kStartServerSpan] ?? ((name, attributes, parent) => tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent)));
  const red = options.metrics === undefined ? undefined : new HttpServerMetrics(options.metrics);
  const accessLog = options.accessLog !== false;
  const ignored = new Set(options.ignoreRoutes ?? []);
  const others = new Map<string, RouteInfo>();

  app.addHook('onRoute', (route: RouteOptions) => {
    const url = route.url;
    // Captured here so that a request finds its route without `request.routeOptions` (a getter that builds an object).
    route.config = { ...route.config, [kRouteInfo]: newRouteInfo(url, ignored) } as typeof route.config;
    if (tracer === undefined || ignored.has(url)) return;
    // The body is read after onRequest, in the socket's async context: run each handler in the request's context.
    const handler = route.handler;
    route.handler = function (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
      const ctx = (request as WithState)[kState]?.context;
      // A request without a body reaches its handler still inside onRequest's context: no second entry needed.
      return ctx === undefined || context.active() === ctx ? handler.call(this, request, reply) : context.with(ctx, handler, this, request, reply);
    };
  });

  app.addHook('onRequest', (request: FastifyRequest, _reply: FastifyReply, next: () => void) => {
    const info = routeInfo(request, ignored, others);
    if (info.ignored) return next();
    const route = info.route;
    const state: Instrumented = { start: performance.now(), span: undefined, context: undefined, info };
    (request as WithState)[kState] = state;
    if (startSpan === undefined) return next();
    const headers = request.headers;
    const parent = headers.traceparent === undefined && headers.baggage === undefined ? ROOT_CONTEXT : propagation.extract(ROOT_CONTEXT, headers);
    const method = request.method;
    const url = request.url;
    const q = url.indexOf('?');
    const span = startSpan((info.names[method] ??= `${method} ${route}`), { 'http.request.method': method, 'http.route': route, 'url.path': q < 0 ? url : url.slice(0, q) }, parent, state.start);
    state.span = span;
    state.context = withSpan(parent, span);
    context.with(state.context, next);
  });

  app.addHook('onError', (request: FastifyRequest, _reply: FastifyReply, error: Error, next: () => void) => {
    const span = (request as WithState)[kState]?.span;
    if (span !== undefined) {
      span.recordException(error);
      span.setAttribute('error.type', (error as { code?: unknown }).code !== undefined ? String((error as { code?: unknown }).code) : error.name);
    }
    next();
  });

  app.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, next: () => void) => {
    const state = (request as WithState)[kState];
    if (state === undefined) return next();
    const elapsedMs = performance.now() - state.start;
    const status = reply.statusCode;
    const span = state.span;
    let sampled = false;
    /** The log sampler's number for the trace; read without making a deferred span's hex ids. */
    let fraction = 0;
    let traceId: string | undefined;
    if (span !== undefined) {
      span.setAttribute('http.response.status_code', status);
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      if (span instanceof DeferredSpan) fraction = span.traceFraction();
      else {
        const ctx = span.spanContext();
        traceId = ctx.traceId;
        sampled = (ctx.traceFlags & TraceFlags.SAMPLED) !== 0;
        fraction = traceFraction(traceId);
      }
      span.end();
    }
    const method = request.method;
    if (red !== undefined) {
      const info = state.info;
      const byClass = (info.red[method] ??= []);
      const cls = statusClassIndex(status);
      (byClass[cls] ??= red.series(method, info.route, status)).observe(elapsedMs / 1000, sampled ? traceId : undefined);
    }
    if (accessLog) {
      const log = request.log;
      // A sampling logger would drop this line (deterministic per trace, `keepTraceLine`): do not build it.
      const ratio = (log as { [kLogSampling]?: number })[kLogSampling];
      if (status >= 500 || ratio === undefined || span === undefined || sampled || fraction < ratio) {
        const line: Record<string | symbol, unknown> = { method, route: state.info.route, url: request.url, status, duration_ms: Math.round(elapsedMs * 1000) / 1000 };
        // Named on the line, so the logger's mixin need not look up the active span (nor miss it, outside the request's context).
        if (span !== undefined) {
          const ctx = span.spanContext();
          line.trace_id = ctx.traceId;
          line.span_id = ctx.spanId;
          // Kept by its trace, decided here: the logger's sampler need not decide again.
          line[kTraceDecided] = true;
        }
        if (status >= 500) log.error(line, 'request failed');
        else log.info(line, 'request completed');
      }
    }
    next();
  });
  done();
}

// Not encapsulated: the hooks apply to the routes of the instance that registers it.
(fastifyTelemetry as unknown as Record<symbol, unknown>)[Symbol.for('skip-override')] = true;
(fastifyTelemetry as unknown as Record<symbol, unknown>)[Symbol.for('fastify.display-name')] = '@bulwark/telemetry';
