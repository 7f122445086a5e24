/**
 * `setupTelemetry`: OpenTelemetry tracing for a service in one call.
 *
 * - A `NodeTracerProvider` whose resource names the service and version.
 * - The parent-based ratio sampler that keeps every error span (`sampler.ts`).
 * - Export: OTLP over HTTP for production, the bounded in-memory span store
 *   for the embedded mode, both, none, or any `SpanExporter`; through a batch
 *   processor by default (`processor: 'simple'` exports each span as it ends,
 *   for tests).
 * - Globally (unless `register: false`): the AsyncLocalStorage context manager
 *   and the W3C trace-context + baggage propagators.
 * - Optional integrations, each using this handle's own tracer: undici client
 *   spans with `traceparent` injection, the process-wide messaging
 *   instrumentation, and resilience policy events as span events.
 *
 * Several handles may live in one process (two services in one test): only
 * one registers globally; the others pass `register: false` and their
 * Fastify plugin and integrations still use their own provider.
 *
 * @example
 * ```ts
 * const telemetry = setupTelemetry({ serviceName: 'orders', serviceVersion: '1.4.0', sampler: { ratio: 0.1 }, exporter: 'otlp' });
 * await app.register(fastifyTelemetry, { telemetry, metrics, logger });
 * process.on('SIGTERM', () => telemetry.shutdown());
 * ```
 */
import { context, propagation, trace, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { UndiciInstrumentation, type UndiciRequest } from '@opentelemetry/instrumentation-undici';

/** The `globalThis` slot `@bulwark/http`'s client reads (see its `trace-headers.ts`): a count of tracers injecting into undici. */
const TRACER_PROPAGATES_UNDICI = Symbol.for('bulwark.trace-propagation.undici');
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, SimpleSpanProcessor, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { setMessagingInstrumentation, type MessagingInstrumentation } from '@bulwark/messaging';
import { InvalidTelemetryOptionError, requireName } from '../errors.js';
import { ErrorKeepingSpanProcessor } from './error-keeping-processor.js';
import { messagingTracing } from './messaging-tracing.js';
import { traceResilienceEvents } from './resilience-tracing.js';
import { createSampler, type SamplerOptions } from './sampler.js';
import { PrimedIdGenerator, kStartServerSpan, serverSpanStarter } from './server-span.js';
import { MemorySpanStore } from './span-store.js';

/** Where spans go. `'otlp'` and `'memory'` may be combined in an array, with custom exporters. */
export type ExporterChoice = 'otlp' | 'memory' | 'none' | SpanExporter | ('otlp' | 'memory' | SpanExporter)[];

export interface TelemetryOptions {
  serviceName: string;
  serviceVersion?: string;
  /** `deployment.environment.name` on the resource. */
  environment?: string;
  /** Extra resource attributes. */
  resource?: Record<string, string | number | boolean>;
  /** Ratio for root traces (default 1) and whether error spans are always kept (default true). */
  sampler?: SamplerOptions;
  /** Default `'memory'`. */
  exporter?: ExporterChoice;
  /** OTLP/HTTP endpoint and headers. Default url: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `http://localhost:4318/v1/traces`. */
  otlp?: { url?: string; headers?: Record<string, string>; timeoutMillis?: number };
  /** The span store for `'memory'`: pass one to share it between handles, or its size. */
  memory?: { store?: MemorySpanStore; maxSpans?: number };
  /** `'batch'` (default) or `'simple'` (export on end; tests and debugging). */
  processor?: 'batch' | 'simple';
  /** Batch processor tuning. */
  batch?: { maxQueueSize?: number; maxExportBatchSize?: number; scheduledDelayMillis?: number };
  /** Set the provider, context manager and propagator globally. Default true. */
  register?: boolean;
  /** Client spans and `traceparent` on undici requests (and `fetch`). Default true. */
  httpClient?: boolean | { ignore?: (request: UndiciRequest) => boolean };
  /** Install the process-wide messaging instrumentation with this handle's tracer. Default true. */
  messaging?: boolean;
  /** Resilience policy events as span events on the active span. Default true. */
  resilience?: boolean;
}

/** What `setupTelemetry` returns. */
export interface Telemetry {
  readonly serviceName: string;
  readonly serviceVersion: string | undefined;
  readonly provider: NodeTracerProvider;
  /** This service's tracer. */
  readonly tracer: Tracer;
  /** The in-memory span store when the memory exporter is on. */
  readonly spans: MemorySpanStore | undefined;
  /** Exports every finished span now. */
  forceFlush(): Promise<void>;
  /** Flushes, then removes every hook this handle installed. Idempotent. */
  shutdown(): Promise<void>;
}

let globalOwner: object | undefined;

/** Sets up tracing for one service; see the module comment. Throws `InvalidTelemetryOptionError` on bad options. */
export function setupTelemetry(options: TelemetryOptions): Telemetry {
  const serviceName = requireName('setupTelemetry', 'serviceName', options.serviceName);
  const sampler = createSampler(options.sampler);
  const store = memoryStore(options);
  const exporters = resolveExporters(options, store);
  const processorKind = options.processor ?? 'batch';
  if (processorKind !== 'batch' && processorKind !== 'simple') throw new InvalidTelemetryOptionError('setupTelemetry', 'processor', processorKind, '"batch" or "simple"');
  const keepErrors = options.sampler?.keepErrors !== false;
  const keepers: ErrorKeepingSpanProcessor[] = [];
  const processors: SpanProcessor[] = exporters.map((exporter) => {
    const inner = processorKind === 'simple' ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter, options.batch);
    if (!keepErrors) return inner;
    const keeper = new ErrorKeepingSpanProcessor(inner);
    keepers.push(keeper);
    return keeper;
  });

  const attributes: Record<string, string | number | boolean> = { ...options.resource, [ATTR_SERVICE_NAME]: serviceName };
  if (options.serviceVersion !== undefined) attributes[ATTR_SERVICE_VERSION] = options.serviceVersion;
  if (options.environment !== undefined) attributes['deployment.environment.name'] = options.environment;
  const ids = new PrimedIdGenerator();
  const provider = new NodeTracerProvider({ resource: resourceFromAttributes(attributes), sampler, spanProcessors: processors, idGenerator: ids });
  const tracer = provider.getTracer('@bulwark/telemetry', '0.1.0');
  const startServerSpan = serverSpanStarter({
    tracer,
    ids,
    ratio: options.sampler?.ratio ?? 1,
    keepErrors,
    isKept: keepers.length === 1 ? (traceId) => keepers[0]!.isKept(traceId) : (traceId) => keepers.some((k) => k.isKept(traceId)),
    anyKept: keepers.length === 1 ? () => keepers[0]!.keeping() : () => keepers.some((k) => k.keeping()),
  });

  const cleanups: (() => void)[] = [];
  const handle = {};
  // Context and propagation are process-wide: set them if nobody has (a second handle reuses them).
  const manager = new AsyncLocalStorageContextManager().enable();
  if (!context.setGlobalContextManager(manager)) manager.disable();
  propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
  if (options.register !== false) {
    if (globalOwner !== undefined) throw new InvalidTelemetryOptionError('setupTelemetry', 'register', true, 'false: another handle is registered globally; shut it down first');
    trace.setGlobalTracerProvider(provider);
    globalOwner = handle;
    cleanups.push(() => {
      trace.disable();
      propagation.disable();
      context.disable();
      globalOwner = undefined;
    });
  }

  if (options.httpClient !== false) {
    const ignore = typeof options.httpClient === 'object' ? options.httpClient.ignore : undefined;
    // Constructed enabled (it reads `enabled` from its config on every request); its tracer is this handle's.
    const undici = new UndiciInstrumentation(ignore === undefined ? {} : { ignoreRequestHook: ignore });
    undici.setTracerProvider(provider);
    // Tell `@bulwark/http`'s client that trace context on undici requests is injected here, so it
    // does not add the incoming request's `traceparent` too (two values break the trace).
    const slot = globalThis as Record<symbol, unknown>;
    slot[TRACER_PROPAGATES_UNDICI] = ((slot[TRACER_PROPAGATES_UNDICI] as number | undefined) ?? 0) + 1;
    cleanups.push(() => {
      undici.disable();
      slot[TRACER_PROPAGATES_UNDICI] = Math.max(0, ((slot[TRACER_PROPAGATES_UNDICI] as number | undefined) ?? 1) - 1);
    });
  }
  if (options.messaging !== false) {
    const instrumentation: MessagingInstrumentation = messagingTracing(tracer);
    const previous = setMessagingInstrumentation(instrumentation);
    cleanups.push(() => {
      setMessagingInstrumentation(previous);
    });
  }
  if (options.resilience !== false) cleanups.push(traceResilienceEvents());

  let closed: Promise<void> | undefined;
  // The Fastify plugin's cheap way to start server spans (`server-span.ts`); not part of the public shape.
  Object.defineProperty(handle, kStartServerSpan, { value: startServerSpan });
  return Object.assign(handle, {
    serviceName,
    serviceVersion: options.serviceVersion,
    provider,
    tracer,
    spans: store,
    forceFlush: () => provider.forceFlush(),
    shutdown: () =>
      (closed ??= (async () => {
        try {
          await provider.forceFlush();
        } finally {
          for (const cleanup of cleanups.reverse()) cleanup();
          await provider.shutdown();
        }
      })()),
  });
}

function memoryStore(options: TelemetryOptions): MemorySpanStore | undefined {
  const choice = options.exporter ?? 'memory';
  const wantsMemory = choice === 'memory' || (Array.isArray(choice) && choice.includes('memory'));
  if (!wantsMemory) return undefined;
  return options.memory?.store ?? new MemorySpanStore(options.memory?.maxSpans === undefined ? {} : { maxSpans: options.memory.maxSpans });
}

function resolveExporters(options: TelemetryOptions, store: MemorySpanStore | undefined): SpanExporter[] {
  const choice = options.exporter ?? 'memory';
  if (choice === 'none') return [];
  const list = Array.isArray(choice) ? choice : [choice];
  return list.map((item) => {
    if (item === 'memory') return store!.exporter();
    if (item === 'otlp') return new OTLPTraceExporter({ ...options.otlp });
    if (typeof item === 'object' && item !== null && typeof (item).export === 'function') return item;
    throw new InvalidTelemetryOptionError('setupTelemetry', 'exporter', item, '"otlp", "memory", "none", a SpanExporter or an array of them');
  });
}
