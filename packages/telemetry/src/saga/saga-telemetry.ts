/**
 * Saga telemetry from the orchestrator's events (`@bulwark/saga` does not
 * import OpenTelemetry or prom-client).
 *
 * Metrics (`instrumentSagas`): sagas started, finished by outcome
 * (completed, compensated, stuck) with their duration, step durations by
 * step, phase and outcome, step attempts, lease takeovers, overdue and
 * refused sagas, and the sagas driven right now.
 *
 * Traces (`traceSagas`): one trace per saga, whatever process drives it and
 * however often it is resumed. The trace id is derived from the saga id, so
 * every orchestrator that drives a step of it writes into the same trace
 * without storing anything: each finished step is a span (from its start to
 * its end, attempts and outcome as attributes), and the saga's end is a
 * `saga <type>` span covering its whole life. Their parent is the saga's
 * (derived) root context, which no process owns: viewers show it as a
 * remote parent. The request that started the saga gets a short
 * `saga <type> start` span linked to the saga's trace, and the saga's end
 * span links back to nothing — the link from the request is the way in.
 */
import { createHash } from 'node:crypto';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace, type Context, type SpanContext, type Tracer } from '@opentelemetry/api';
import type { SagaEvents } from '@bulwark/saga';
import type { Metrics } from '../metrics/metrics.js';

/** What telemetry needs from an orchestrator: its typed events. */
export interface SagaEventSource {
  on<E extends keyof SagaEvents>(event: E, listener: (event: SagaEvents[E]) => void): () => void;
  /** Sagas driven right now (the orchestrator's `active`). */
  readonly active?: number;
}

/** Saga and step durations in seconds: 10 ms to 1 h. */
const SAGA_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
const STEP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Counts and times sagas from `source`'s events; returns the function that stops. */
export function instrumentSagas(metrics: Metrics, source: SagaEventSource): () => void {
  const started = metrics.counter('bulwark_saga_started_total', 'Sagas started (queued included), by type.', ['type']);
  const finished = metrics.counter('bulwark_saga_finished_total', 'Sagas that reached completed, compensated or stuck, by type and outcome.', ['type', 'outcome']);
  const duration = metrics.histogram('bulwark_saga_duration_seconds', 'Time from start to completed, compensated or stuck, by type and outcome.', ['type', 'outcome'], { buckets: SAGA_BUCKETS });
  const steps = metrics.histogram('bulwark_saga_step_duration_seconds', 'Time of one step invoke or compensation, retries included, by type, step, phase and outcome.', ['type', 'step', 'phase', 'outcome'], { buckets: STEP_BUCKETS });
  const attempts = metrics.counter('bulwark_saga_step_attempts_total', 'Attempts made by finished steps (retries included), by type, step and phase.', ['type', 'step', 'phase']);
  const takeovers = metrics.counter('bulwark_saga_lease_takeovers_total', 'Sagas this process claimed after their lease expired or was released, by type.', ['type']);
  const lost = metrics.counter('bulwark_saga_leases_lost_total', 'Sagas this process stopped driving because another owner or an operator took them, by type.', ['type']);
  const overdue = metrics.counter('bulwark_saga_overdue_total', 'Sagas reported past their deadline, by type.', ['type']);
  const refused = metrics.counter('bulwark_saga_refused_total', 'Sagas refused by entry backpressure, by type.', ['type']);
  const offs = [
    source.on('started', (e) => started.inc({ type: e.type })),
    source.on('completed', (e) => finish(e.type, 'completed', e.durationMs)),
    source.on('compensated', (e) => finish(e.type, 'compensated', e.durationMs)),
    source.on('stuck', (e) => finished.inc({ type: e.type, outcome: 'stuck' })),
    source.on('step-succeeded', (e) => step(e.type, e.step, e.phase, 'succeeded', e.durationMs, e.attempts)),
    source.on('step-failed', (e) => step(e.type, e.step, e.phase, 'failed', e.durationMs, e.attempts)),
    source.on('lease-taken', (e) => takeovers.inc({ type: e.type })),
    source.on('lease-lost', (e) => lost.inc({ type: e.type })),
    source.on('overdue', (e) => overdue.inc({ type: e.type })),
    source.on('refused', (e) => refused.inc({ type: e.type })),
  ];
  if (source.active !== undefined) {
    metrics.gauge('bulwark_saga_active', 'Sagas this process drives right now.', [], function collect() {
      this.set(source.active ?? 0);
    });
  }

  function finish(type: string, outcome: string, durationMs: number): void {
    finished.inc({ type, outcome });
    duration.observe({ type, outcome }, Math.max(0, durationMs) / 1000);
  }
  function step(type: string, name: string, phase: string, outcome: string, durationMs: number, count: number): void {
    steps.observe({ type, step: name, phase, outcome }, Math.max(0, durationMs) / 1000);
    attempts.inc({ type, step: name, phase }, Math.max(1, count));
  }
  return () => {
    for (const off of offs) off();
  };
}

export interface SagaTracingOptions {
  /** Share of sagas traced (decided per saga from its id, so every process agrees). Default 1. */
  ratio?: number;
}

/** Spans for saga steps and outcomes (see the module comment); returns the function that stops. */
export function traceSagas(tracer: Tracer, source: SagaEventSource, options: SagaTracingOptions = {}): () => void {
  const ratio = options.ratio ?? 1;
  const parents = new Map<string, Context>();
  /** The saga's derived root context (cached for the sagas in flight). */
  const parentOf = (sagaId: string): Context => {
    let parent = parents.get(sagaId);
    if (parent === undefined) {
      if (parents.size > 10_000) parents.clear();
      parent = trace.setSpanContext(ROOT_CONTEXT, sagaSpanContext(sagaId, ratio));
      parents.set(sagaId, parent);
    }
    return parent;
  };
  const attributes = (e: { sagaId: string; type: string; version: number }) => ({ 'bulwark.saga.id': e.sagaId, 'bulwark.saga.type': e.type, 'bulwark.saga.version': e.version });
  const span = (name: string, sagaId: string, durationMs: number, attrs: Record<string, string | number | boolean>, error?: string): void => {
    const now = Date.now();
    const s = tracer.startSpan(name, { kind: SpanKind.INTERNAL, startTime: now - Math.max(0, durationMs), attributes: attrs }, parentOf(sagaId));
    if (error !== undefined) s.setStatus({ code: SpanStatusCode.ERROR, message: error });
    s.end(now);
  };
  const end = (sagaId: string): void => void parents.delete(sagaId);
  const offs = [
    source.on('started', (e) => {
      // In the starter's context (the request): a span there, linked to the saga's trace.
      const s = tracer.startSpan(`saga ${e.type} start`, { kind: SpanKind.INTERNAL, attributes: { ...attributes(e), 'bulwark.saga.queued': e.queued }, links: [{ context: sagaSpanContext(e.sagaId, ratio) }] });
      s.end();
    }),
    source.on('step-succeeded', (e) => span(`saga ${e.type} ${e.step}${e.phase === 'compensate' ? ' compensate' : ''}`, e.sagaId, e.durationMs, { ...attributes(e), 'bulwark.saga.step': e.step, 'bulwark.saga.phase': e.phase, 'bulwark.saga.attempts': e.attempts })),
    source.on('step-failed', (e) => span(`saga ${e.type} ${e.step}${e.phase === 'compensate' ? ' compensate' : ''}`, e.sagaId, e.durationMs, { ...attributes(e), 'bulwark.saga.step': e.step, 'bulwark.saga.phase': e.phase, 'bulwark.saga.attempts': e.attempts }, e.error)),
    source.on('completed', (e) => {
      span(`saga ${e.type}`, e.sagaId, e.durationMs, { ...attributes(e), 'bulwark.saga.outcome': 'completed' });
      end(e.sagaId);
    }),
    source.on('compensated', (e) => {
      span(`saga ${e.type}`, e.sagaId, e.durationMs, { ...attributes(e), 'bulwark.saga.outcome': 'compensated' }, 'compensated');
      end(e.sagaId);
    }),
    source.on('stuck', (e) => {
      const s = tracer.startSpan(`saga ${e.type} stuck`, { kind: SpanKind.INTERNAL, attributes: { ...attributes(e), 'bulwark.saga.step': e.step, 'bulwark.saga.phase': e.phase } }, parentOf(e.sagaId));
      s.setStatus({ code: SpanStatusCode.ERROR, message: e.error });
      s.end();
      end(e.sagaId);
    }),
  ];
  return () => {
    for (const off of offs) off();
  };
}

/** The derived root span context of a saga: trace and span id from a hash of its id; sampled by `ratio` of the trace id. */
export function sagaSpanContext(sagaId: string, ratio = 1): SpanContext {
  const hex = createHash('sha256').update(`bulwark.saga:${sagaId}`).digest('hex');
  const traceId = hex.slice(0, 32);
  const spanId = hex.slice(32, 48);
  // Like the trace-id ratio sampler: the low 8 bytes as a fraction of 2^64 (53 bits are plenty).
  const sampled = ratio >= 1 || parseInt(traceId.slice(16, 29), 16) / 2 ** 52 < ratio;
  return { traceId, spanId, traceFlags: sampled ? TraceFlags.SAMPLED : TraceFlags.NONE, isRemote: true };
}
