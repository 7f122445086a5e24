/**
 * `@bulwark/http`: the Fastify service kit. Problem+json errors with stable
 * types, request ids and W3C trace context in the request context, access
 * logs and a metrics hook, liveness and readiness, graceful shutdown,
 * OpenAPI from the route schemas, Idempotency-Key on `@bulwark/store`, and
 * rate limits on `@bulwark/resilience`. The resilient client is
 * `@bulwark/http/client`, JWT auth `@bulwark/http/auth`, the Redis
 * rate-limit store `@bulwark/http/redis`.
 *
 * @example
 * ```ts
 * import { createService, idempotency, rateLimit, httpMigrations, problem } from '@bulwark/http';
 * const app = await createService({ server: { logger: true }, kit: { openapi: { info: { title: 'payments', version: '1.0.0' } } } });
 * await app.register(rateLimit, { rule: { capacity: 100, refillRate: 50 } });
 * await app.register(idempotency, { store });
 * ```
 */
export type { FastifyAugmentation } from './fastify-types.js';
export { currentRequestContext, useRequestContext, requestContextInUse, runWithRequestContext, enterRequestContext, type RequestContext } from './request-context.js';
export { problemTypes, problemTypeUri, PROBLEM_BASE_URI, type ProblemType, type ProblemSlug } from './problem/problem-types.js';
export { ProblemError, problem, isProblemError, isProblemSource, type ProblemDetails, type ProblemInit, type ProblemSource } from './problem/problem-error.js';
export { renderProblem, kitProblem, type RenderedProblem, type InvalidParam } from './problem/render-problem.js';
export { sendProblem, PROBLEM_CONTENT_TYPE } from './problem/send-problem.js';
export { serviceKit, createService, type ServiceKitOptions, type MetricsEndpoint } from './kit/service-kit.js';
export { kitServerOptions } from './kit/server-options.js';
export { Readiness, type ReadinessCheck, type ReadinessOptions, type ReadinessReport, type CheckOutcome } from './kit/readiness.js';
export { type Shutdown, type Closer, type GracefulShutdownOptions } from './kit/graceful-shutdown.js';
export { REQUEST_ID_HEADER, generateRequestId, isWellFormedRequestId, isHeaderInjection } from './kit/request-id.js';
export { parseTraceparent, parseTracestate } from './kit/trace-context.js';
export { HTTP_REQUEST_CHANNEL, httpRequestChannel, type HttpRequestEvent } from './kit/request-channel.js';
export { httpMigrations, type HttpTables } from './idempotency/http-migrations.js';
export {
  idempotency,
  isValidIdempotencyKey,
  IDEMPOTENCY_KEY_HEADER,
  REPLAYED_HEADER,
  type IdempotencyOptions,
  type IdempotencyRouteOptions,
  type IdempotencyContext,
  type IdempotencyKeys,
} from './idempotency/idempotency-plugin.js';
export { canonicalJson, requestFingerprint } from './idempotency/fingerprint.js';
export { rateLimit, type RateLimitOptions, type RateLimitRouteOptions, type StoreFailureMode } from './rate-limit/rate-limit-plugin.js';
export { defaultIdentity } from './rate-limit/identity.js';
