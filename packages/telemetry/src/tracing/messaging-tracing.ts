/**
 * Traces across messages, through the process-wide hook of
 * `@bulwark/messaging` (`setMessagingInstrumentation`).
 *
 * - `inject`: at `outbox.add`, the active context's `traceparent` (and
 *   `tracestate`, baggage) go into the envelope's headers, so the row carries
 *   the producer's context through the relay and the broker.
 * - `handle`: each consumer handler runs inside a CONSUMER span
 *   `<topic> process` whose **parent** is the producer's context and which
 *   also **links** to it.
 *
 * Parent or link: OpenTelemetry's messaging conventions allow either for a
 * message processed on its own. Bulwark's consumers apply one message per
 * handler call (even in a batch, the hook wraps each message), and the hop
 * continues the business transaction that produced it (one request, one saga),
 * so the consumer span is the producer's child: the whole request, message
 * hops included, reads as one trace. The link is added too, so tools that
 * follow links (or a future batch span) find the producer the same way.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, propagation, trace, type Tracer } from '@opentelemetry/api';
import type { HandleInfo, MessagingInstrumentation } from '@bulwark/messaging';

/** The messaging instrumentation for `tracer`; `setupTelemetry` installs it. */
export function messagingTracing(tracer: Tracer): MessagingInstrumentation {
  return {
    inject(headers: Record<string, string>): void {
      try {
        propagation.inject(context.active(), headers);
      } catch {
        // a propagator bug must not fail the business transaction
      }
    },
    handle<T>(info: HandleInfo, run: () => Promise<T>): Promise<T> {
      const parent = propagation.extract(ROOT_CONTEXT, info.envelope.headers);
      const producer = trace.getSpanContext(parent);
      const span = tracer.startSpan(
        `${info.topic} process`,
        {
          kind: SpanKind.CONSUMER,
          attributes: {
            'messaging.system': 'bulwark',
            'messaging.operation.type': 'process',
            'messaging.destination.name': info.topic,
            'messaging.consumer.group.name': info.group,
            'messaging.message.id': info.envelope.id,
            'messaging.message.type': info.envelope.type,
            'messaging.message.delivery_count': info.deliveryCount,
            'messaging.batch.message_count': info.batchSize,
          },
          links: producer === undefined ? [] : [{ context: producer }],
        },
        parent,
      );
      return context.with(trace.setSpan(parent, span), async () => {
        try {
          const result = await run();
          span.end();
          return result;
        } catch (error) {
          span.recordException(error instanceof Error ? error : String(error));
          span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
          span.end();
          throw error;
        }
      });
    },
  };
}
