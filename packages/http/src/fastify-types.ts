/**
 * What the kit's plugins add to Fastify's types: request and instance
 * decorations, and the per-route `config` they read.
 */
import type { Readiness } from './kit/readiness.js';
import type { Shutdown } from './kit/graceful-shutdown.js';
import type { RequestContext } from './request-context.js';
import type { IdempotencyContext, IdempotencyKeys, IdempotencyRouteOptions } from './idempotency/idempotency-plugin.js';
import type { RateLimitRouteOptions } from './rate-limit/rate-limit-plugin.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Readiness checks behind `/health/ready` (service kit). */
    readiness: Readiness;
    /** Graceful shutdown controls (service kit). */
    shutdown: Shutdown;
    /** Maintenance of Idempotency-Key records (idempotency plugin). */
    idempotencyKeys: IdempotencyKeys;
  }
  interface FastifyRequest {
    /** The request id and validated trace context (service kit); also the ambient `currentRequestContext()`. */
    requestContext: RequestContext;
    /** The Idempotency-Key unit of work, on routes with `config.idempotency` (idempotency plugin). */
    idempotency: IdempotencyContext;
  }
  interface FastifyContextConfig {
    /** Idempotency-Key handling for this route (idempotency plugin). */
    idempotency?: IdempotencyRouteOptions | boolean;
    /** This route's rate limit, or `false` for none (rate-limit plugin). */
    rateLimit?: RateLimitRouteOptions | false;
  }
}

/** Marker re-exported by the package entry so the declarations above reach every importer. */
export type FastifyAugmentation = true;
