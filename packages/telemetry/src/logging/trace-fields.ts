/**
 * The trace fields of a log line, read from the active OpenTelemetry span,
 * and the per-trace sampling decision shared by the log sampler.
 */
import { TraceFlags, trace } from '@opentelemetry/api';

/** `{ trace_id, span_id }` of the active span, or `undefined` outside a span. */
export function activeTraceFields(): { trace_id: string; span_id: string } | undefined {
  const span = trace.getActiveSpan();
  if (span === undefined) return undefined;
  const ctx = span.spanContext();
  return { trace_id: ctx.traceId, span_id: ctx.spanId };
}

/**
 * A number in [0, 1) decided by the trace id alone (its last 8 hex digits), so
 * every process and every line of one trace agrees on it.
 */
export function traceFraction(traceId: string): number {
  const tail = Number.parseInt(traceId.slice(-8), 16);
  return Number.isNaN(tail) ? 0 : tail / 0x1_0000_0000;
}

/**
 * Whether a line below `warn` is kept: every line of a sampled trace; a
 * `ratio` of the other traces, decided by trace id; a `ratio` of the lines
 * outside any trace, decided by `random`.
 */
export function keepLine(ratio: number, random: () => number): boolean {
  const span = trace.getActiveSpan();
  if (span === undefined) return random() < ratio;
  const ctx = span.spanContext();
  return keepTraceLine(ratio, ctx.traceId, (ctx.traceFlags & TraceFlags.SAMPLED) !== 0);
}

/** Whether a line below `warn` of this trace is kept (the rule of `keepLine`, for a known trace). */
export function keepTraceLine(ratio: number, traceId: string, sampled: boolean): boolean {
  return sampled || traceFraction(traceId) < ratio;
}

/**
 * The sampling ratio of a `createLogger` logger (inherited by its children), when it samples: lets
 * the access log skip building a line that would be dropped.
 */
export const kLogSampling = Symbol.for('bulwark.telemetry.logSampling');

/**
 * Set (true) on a line whose sampling was already decided by its trace (the access line): the
 * logger's sampler writes it without deciding again. A symbol, so it is never serialised.
 */
export const kTraceDecided = Symbol.for('bulwark.telemetry.traceDecided');

/** Whether a log call's first argument is a line marked `kTraceDecided`. */
export function traceDecided(first: unknown): boolean {
  return typeof first === 'object' && first !== null && (first as Record<symbol, unknown>)[kTraceDecided] === true;
}
