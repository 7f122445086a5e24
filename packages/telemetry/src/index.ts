/**
 * `@bulwark/telemetry`: OpenTelemetry tracing, pino logging and Prometheus
 * metrics for Bulwark services, fed by the other packages' events. The SLO
 * engine is on the `@bulwark/telemetry/slo` subpath; test helpers on
 * `@bulwark/telemetry/testing`.
 */
export * from './errors.js';

// tracing
export { setupTelemetry, type Telemetry, type TelemetryOptions, type ExporterChoice } from './tracing/setup.js';
export { createSampler, type SamplerOptions } from './tracing/sampler.js';
export { ErrorKeepingSpanProcessor, type ErrorKeepingOptions } from './tracing/error-keeping-processor.js';
export { MemorySpanStore, MemorySpanExporter, type StoredSpan, type SpanQuery, type TraceSummary, type MemorySpanStoreOptions } from './tracing/span-store.js';
export { messagingTracing } from './tracing/messaging-tracing.js';
export { traceResilienceEvents } from './tracing/resilience-tracing.js';

// logging
export { createLogger, type CreateLoggerOptions, type BulwarkLogger } from './logging/logger.js';
export { SECRET_KEYS, redactSecrets } from './logging/redact.js';
export { LogLevels, LOG_LEVELS, ROOT_MODULE, type LevelSnapshot } from './logging/log-levels.js';
export { activeTraceFields, traceFraction } from './logging/trace-fields.js';

// metrics
export { Metrics, DEFAULT_DURATION_BUCKETS, type MetricsOptions, type Scrape } from './metrics/metrics.js';
export { HttpServerMetrics, HttpClientMetrics, statusClass } from './metrics/http-metrics.js';
export { instrumentHttpClient, type DependencyMetricsOptions } from './metrics/dependency-metrics.js';
export { instrumentResilience, BREAKER_STATE_VALUES } from './metrics/resilience-metrics.js';
export { watchResource, watchBulkhead, type ResourceStats, type BulkheadLike } from './metrics/use-metrics.js';
export { instrumentOutboxRelay, instrumentConsumer, watchMessagingBacklog, type BacklogOptions, type BacklogWatch } from './metrics/messaging-metrics.js';
export { funnel, businessCounter, type Funnel } from './metrics/business.js';
export { instrumentFaults, type FaultEventSource } from './metrics/fault-metrics.js';

// sagas
export { instrumentSagas, traceSagas, sagaSpanContext, type SagaEventSource, type SagaTracingOptions } from './saga/saga-telemetry.js';

// Fastify plugins
export { fastifyTelemetry, type FastifyTelemetryOptions } from './http/fastify-telemetry.js';
export { metricsRoute, type MetricsRouteOptions } from './http/metrics-route.js';
export { logLevelsRoute, type LogLevelsRouteOptions } from './http/log-levels-route.js';
