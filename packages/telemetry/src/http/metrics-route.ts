/**
 * `metricsRoute`: `GET /metrics` (path configurable) serving a `Metrics`
 * registry, in OpenMetrics (with exemplars) when the scraper asks for it and
 * in the Prometheus text format otherwise.
 */
import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../metrics/metrics.js';

export interface MetricsRouteOptions {
  metrics: Metrics;
  /** Default `/metrics`. */
  path?: string;
}

/** The plugin; see the module comment. */
export function metricsRoute(app: FastifyInstance, options: MetricsRouteOptions, done: (error?: Error) => void): void {
  app.get(options.path ?? '/metrics', async (request, reply) => {
    const { contentType, body } = await options.metrics.scrape(request.headers.accept);
    return reply.header('content-type', contentType).header('cache-control', 'no-store').send(body);
  });
  done();
}
