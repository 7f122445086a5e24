/**
 * Which context headers an outgoing call carries. A header the caller (or a
 * tracer's propagator running before us) already set is kept; otherwise the
 * current request context (set by the service kit for the request being
 * served) supplies `traceparent`, `tracestate` and `x-request-id`, so a trace
 * stays connected across services even without OpenTelemetry.
 */
import { currentRequestContext, useRequestContext } from '../request-context.js';

// A process that loads the client reads the ambient request context: have the service kit enter it
// from the first request on (it is entered on demand, see request-context.ts).
useRequestContext();

/**
 * Set (a count, on `globalThis`) by a tracer that injects trace context into
 * every undici request itself — `@bulwark/telemetry`'s `setupTelemetry` with
 * its HTTP client instrumentation. The client then leaves `traceparent` and
 * `tracestate` to it: undici would otherwise send both values, and a callee
 * that cannot parse two `traceparent`s starts a new trace.
 */
export const TRACER_PROPAGATES_UNDICI = Symbol.for('bulwark.trace-propagation.undici');

function tracerPropagates(): boolean {
  const count = (globalThis as Record<symbol, unknown>)[TRACER_PROPAGATES_UNDICI];
  return typeof count === 'number' && count > 0;
}

/** Adds the ambient request's `traceparent`, `tracestate` and `x-request-id` to `headers` where absent. */
export function addContextHeaders(headers: Record<string, string>): void {
  const context = currentRequestContext();
  if (context === undefined) return;
  if (headers.traceparent === undefined && context.traceparent !== undefined && !tracerPropagates()) {
    headers.traceparent = context.traceparent;
    // tracestate belongs to its traceparent: never pair ours with someone else's.
    if (headers.tracestate === undefined && context.tracestate !== undefined) headers.tracestate = context.tracestate;
  }
  if (headers['x-request-id'] === undefined && context.requestId !== '') headers['x-request-id'] = context.requestId;
}
