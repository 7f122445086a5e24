/**
 * RED per outgoing dependency from undici's diagnostics channels
 * (`undici:request:create`, `:headers`, `:error`), so every undici request —
 * the resilient client, `fetch`, a bare `request` — is counted without
 * wrapping it. Duration is measured to the response headers (time to first
 * byte): the body may be streamed for as long as the caller likes.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { TraceFlags, trace } from '@opentelemetry/api';
import { HttpClientMetrics } from './http-metrics.js';
import type { Metrics } from './metrics.js';

export interface DependencyMetricsOptions {
  /** Names the dependency of a request. Default: its origin (`http://host:port`). */
  dependency?: (origin: string, path: string) => string;
}

interface InFlight {
  dependency: string;
  method: string;
  start: number;
  traceId: string | undefined;
}

/** Subscribes the dependency RED metrics; returns the function that unsubscribes. */
export function instrumentHttpClient(metrics: Metrics, options: DependencyMetricsOptions = {}): () => void {
  const red = new HttpClientMetrics(metrics);
  const name = options.dependency ?? ((origin: string) => origin);
  const inFlight = new WeakMap<object, InFlight>();

  const onCreate = (message: unknown): void => {
    try {
      const { request } = message as { request: { origin: string | URL; path: string; method: string } };
      const origin = String(request.origin);
      const span = trace.getActiveSpan()?.spanContext();
      const traceId = span !== undefined && (span.traceFlags & TraceFlags.SAMPLED) !== 0 ? span.traceId : undefined;
      inFlight.set(request, { dependency: name(origin, request.path), method: request.method, start: performance.now(), traceId });
    } catch {
      // metrics never fail a request
    }
  };
  const onHeaders = (message: unknown): void => {
    const { request, response } = message as { request: object; response: { statusCode: number } };
    const entry = inFlight.get(request);
    if (entry === undefined) return;
    inFlight.delete(request);
    red.observe(entry.dependency, entry.method, response.statusCode, (performance.now() - entry.start) / 1000, entry.traceId);
  };
  const onError = (message: unknown): void => {
    const { request } = message as { request: object };
    const entry = inFlight.get(request);
    if (entry === undefined) return;
    inFlight.delete(request);
    red.observe(entry.dependency, entry.method, 0, (performance.now() - entry.start) / 1000, entry.traceId);
  };
  subscribe('undici:request:create', onCreate);
  subscribe('undici:request:headers', onHeaders);
  subscribe('undici:request:error', onError);
  return () => {
    unsubscribe('undici:request:create', onCreate);
    unsubscribe('undici:request:headers', onHeaders);
    unsubscribe('undici:request:error', onError);
  };
}
