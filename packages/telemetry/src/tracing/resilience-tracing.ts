/**
 * Resilience policy events as span events on the span that was active when
 * the policy acted (a retry, a breaker transition or refusal, a bulkhead or
 * rate-limit rejection, a hedge, a timeout, a fallback).
 *
 * Span events, not child spans: a retry already shows as one client span per
 * attempt under the instrumented HTTP client, and an event costs a push on
 * the span instead of a span of its own. Nothing is recorded when the active
 * span is not recording. The policies publish synchronously on
 * `node:diagnostics_channel` in the caller's async context, which is why the
 * active span is the caller's.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { trace, type Attributes } from '@opentelemetry/api';
import { channelName, type PolicyKind } from '@bulwark/resilience';

const KINDS: PolicyKind[] = ['timeout', 'retry', 'circuit-breaker', 'bulkhead', 'rate-limiter', 'hedge', 'fallback'];

/** Subscribes to every resilience channel; returns the function that unsubscribes. */
export function traceResilienceEvents(): () => void {
  const handlers = KINDS.map((kind) => {
    const name = channelName(kind);
    const handler = (message: unknown): void => {
      const span = trace.getActiveSpan();
      if (span === undefined || !span.isRecording()) return;
      const event = message as Record<string, unknown>;
      span.addEvent(`resilience.${kind}.${String(event.type)}`, eventAttributes(event));
    };
    subscribe(name, handler);
    return () => unsubscribe(name, handler);
  });
  return () => {
    for (const off of handlers) off();
  };
}

/** Flat span attributes of a policy event: scalars kept, errors reduced to their name and code. */
export function eventAttributes(event: Record<string, unknown>): Attributes {
  const attributes: Attributes = {};
  for (const key in event) {
    const value = event[key];
    if (key === 'type') continue;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') attributes[`bulwark.${key}`] = value;
    else if (value instanceof Error) {
      attributes['error.type'] = (value as { code?: unknown }).code !== undefined ? String((value as { code?: unknown }).code) : value.name;
      attributes['exception.message'] = value.message;
    }
  }
  return attributes;
}
