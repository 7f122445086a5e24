/**
 * The service kit as one Fastify plugin: problem+json for every error,
 * request id and W3C trace context in the request context, access logs and
 * the `bulwark:http:request` metrics hook, liveness and readiness, graceful
 * shutdown, an optional `/metrics` route, and OpenAPI generated from the
 * route schemas (served at `/openapi.json`).
 *
 * Register it first, before the routes (the OpenAPI document collects routes
 * as they are added), on an instance built with `kitServerOptions()`.
 */
import swagger from '@fastify/swagger';
import fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify';
import fp from 'fastify-plugin';
import type { Clock } from '@bulwark/resilience';
import { installProblemHandlers } from '../problem/problem-handlers.js';
import { kitProblem } from '../problem/render-problem.js';
import { sendProblem } from '../problem/send-problem.js';
import { installGracefulShutdown, type GracefulShutdownOptions } from './graceful-shutdown.js';
import { Readiness } from './readiness.js';
import { installRequestTracking, type DrainState } from './request-tracking.js';
import { kitServerOptions } from './server-options.js';

/** What serves `/metrics`: a content type and a renderer (prom-client's registry fits: `{ contentType: register.contentType, render: () => register.metrics() }`). */
export interface MetricsEndpoint {
  contentType: string;
  render(): Promise<string> | string;
}

/**
 * Options of `serviceKit`.
 *
 * @example
 * ```ts
 * await app.register(serviceKit, {
 *   openapi: { info: { title: 'orders', version: '1.0.0' } },
 *   metrics: { contentType: register.contentType, render: () => register.metrics() },
 *   shutdown: { drainTimeoutMs: 15_000 },
 * });
 * ```
 */
export interface ServiceKitOptions {
  /** One access-log line per request at `info`. Default true. */
  accessLog?: boolean;
  /**
   * When the ambient request context (`currentRequestContext()`) is entered: `'on-demand'` (default) once
   * the process uses it (`createClient()`, `currentRequestContext()`, `useRequestContext()`), sparing the
   * AsyncLocalStorage hooks until then; `'always'` from the first request. `request.requestContext` is set either way.
   */
  requestContext?: 'on-demand' | 'always';
  /** Readiness checks' default timeout and clock. */
  readiness?: { defaultTimeoutMs?: number; clock?: Clock };
  /** Graceful shutdown; `false` installs none (readiness then never drains). */
  shutdown?: GracefulShutdownOptions | false;
  /** Serves `GET /metrics` when given. */
  metrics?: MetricsEndpoint;
  /** The OpenAPI document's `info` and servers; `false` turns OpenAPI off. */
  openapi?: { info?: { title: string; version: string; description?: string }; servers?: { url: string; description?: string }[] } | false;
}

const problemSchema = {
  type: 'object',
  description: 'RFC 9457 problem details; `type` is a stable URI under https://bulwark.dev/problems/.',
  required: ['type', 'title', 'status'] as string[],
  properties: {
    type: { type: 'string', format: 'uri' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    instance: { type: 'string' },
    requestId: { type: 'string' },
  },
  additionalProperties: true,
} as const;

const notReady = kitProblem('not-ready');
const hidden = { hide: true } as Record<string, unknown>;

async function serviceKitPlugin(app: FastifyInstance, options: ServiceKitOptions): Promise<void> {
  const state: DrainState = { draining: false };
  installProblemHandlers(app);
  installRequestTracking(app, state, { accessLog: options.accessLog ?? true, requestContext: options.requestContext ?? 'on-demand' });

  const readiness = new Readiness({
    ...options.readiness,
    isDraining: () => state.draining,
    onCheckError: (name, error) => app.log.warn({ err: error, check: name }, 'readiness check failed'),
  });
  app.decorate('readiness', readiness);
  if (options.shutdown !== false) app.decorate('shutdown', installGracefulShutdown(app, state, options.shutdown));

  if (options.openapi !== false) {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: options.openapi?.info ?? { title: 'service', version: '0.0.0' },
        ...(options.openapi?.servers === undefined ? {} : { servers: options.openapi.servers }),
        components: { schemas: { Problem: problemSchema } },
      },
    });
    app.get('/openapi.json', { schema: hidden, config: { rateLimit: false } }, () => app.swagger());
  }

  app.get('/health/live', { schema: hidden, config: { rateLimit: false } }, () => ({ status: 'live' }));
  app.get('/health/ready', { schema: hidden, config: { rateLimit: false } }, async (_request, reply) => {
    const report = await readiness.run();
    if (report.ready) return { status: 'ready', checks: report.checks };
    const problem = report.draining ? kitProblem('shutting-down') : { ...notReady, detail: `failed: ${Object.keys(report.checks).filter((n) => report.checks[n]?.status === 'down').join(', ')}` };
    return sendProblem(reply, { ...problem, checks: report.checks });
  });

  const metrics = options.metrics;
  if (metrics !== undefined) {
    if (typeof metrics.render !== 'function' || typeof metrics.contentType !== 'string') throw new TypeError('serviceKit: metrics must be { contentType: string, render(): string | Promise<string> }');
    app.get('/metrics', { schema: hidden, config: { rateLimit: false } }, async (_request, reply) => reply.type(metrics.contentType).send(await metrics.render()));
  }
}

/**
 * The service kit plugin (wrapped by fastify-plugin: it applies to the whole instance).
 *
 * @example
 * ```ts
 * const app = fastify(kitServerOptions({ logger: true }));
 * await app.register(serviceKit, { openapi: { info: { title: 'orders', version: '1.0.0' } } });
 * app.readiness.add('db', () => store.db.selectNoFrom((eb) => eb.lit(1).as('x')).execute());
 * app.shutdown.addCloser('db', () => store.close());
 * ```
 */
export const serviceKit: FastifyPluginAsync<ServiceKitOptions> = fp(serviceKitPlugin, { fastify: '5.x', name: '@bulwark/http/service-kit' });

/**
 * A Fastify instance with the kit's server options and the kit registered: the shortest way to a service.
 *
 * @example
 * ```ts
 * const app = await createService({ server: { logger: true }, kit: { openapi: { info: { title: 'orders', version: '1.0.0' } } } });
 * app.post('/orders', { schema }, createOrder);
 * await app.listen({ port: 3000, host: '0.0.0.0' });
 * ```
 */
export async function createService(options: { server?: FastifyServerOptions; kit?: ServiceKitOptions } = {}): Promise<FastifyInstance> {
  const app = fastify(kitServerOptions(options.server));
  await app.register(serviceKit, options.kit ?? {});
  return app;
}
