/**
 * The export half of "keep every error": forwards sampled spans to the
 * exporting processor as usual, and recorded-but-unsampled spans only when
 * they ended with an error status or belong to a trace in which an error
 * span was already kept (its ancestors end after it, so the failing path
 * arrives whole within this process). See `sampler.ts` for why.
 *
 * The exporting processors of the SDK drop spans without the sampled flag, so
 * a kept span is handed on as a view whose span context carries the flag; the
 * exported data says "sampled", and the attribute `bulwark.sampling.kept`
 * says why.
 */
import { SpanStatusCode, TraceFlags, type Context, type SpanContext } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';

export interface ErrorKeepingOptions {
  /** How long a trace stays "kept" after one of its spans failed. Default 60 000 ms. */
  keepTraceMs?: number;
  /** Most traces remembered as kept at once (oldest forgotten first). Default 10 000. */
  maxKeptTraces?: number;
  /** Milliseconds, for the expiry of kept traces. Default `performance.now`. */
  now?: () => number;
}

export class ErrorKeepingSpanProcessor implements SpanProcessor {
  private readonly kept = new Map<string, number>();
  private readonly keepTraceMs: number;
  private readonly maxKeptTraces: number;
  private readonly now: () => number;

  constructor(
    private readonly delegate: SpanProcessor,
    options: ErrorKeepingOptions = {},
  ) {
    this.keepTraceMs = options.keepTraceMs ?? 60_000;
    this.maxKeptTraces = options.maxKeptTraces ?? 10_000;
    this.now = options.now ?? (() => performance.now());
  }

  onStart(span: Span, parentContext: Context): void {
    this.delegate.onStart(span, parentContext);
  }

  onEnd(span: ReadableSpan): void {
    const context = span.spanContext();
    if ((context.traceFlags & TraceFlags.SAMPLED) !== 0) {
      this.delegate.onEnd(span);
      return;
    }
    const failed = span.status.code === SpanStatusCode.ERROR;
    if (!failed && this.kept.size === 0) return;
    const traceId = context.traceId;
    if (failed) this.remember(traceId);
    else {
      const until = this.kept.get(traceId);
      if (until === undefined) return;
      if (until < this.now()) {
        this.kept.delete(traceId);
        return;
      }
    }
    this.delegate.onEnd(keptView(span, context, failed ? 'error' : 'error-trace'));
  }

  /** Whether any trace is remembered as kept (when not, `isKept` is false for every trace). */
  keeping(): boolean {
    return this.kept.size > 0;
  }

  /** True while spans of `traceId` are being kept because one of them failed. */
  isKept(traceId: string): boolean {
    const until = this.kept.get(traceId);
    return until !== undefined && until >= this.now();
  }

  forceFlush(): Promise<void> {
    return this.delegate.forceFlush();
  }

  shutdown(): Promise<void> {
    this.kept.clear();
    return this.delegate.shutdown();
  }

  private remember(traceId: string): void {
    this.kept.delete(traceId);
    this.kept.set(traceId, this.now() + this.keepTraceMs);
    if (this.kept.size > this.maxKeptTraces) {
      const oldest = this.kept.keys().next();
      if (oldest.done !== true) this.kept.delete(oldest.value);
    }
  }
}

/** A view of `span` that reports itself sampled, with the reason it was kept. */
function keptView(span: ReadableSpan, context: SpanContext, reason: string): ReadableSpan {
  const sampled: SpanContext = { ...context, traceFlags: context.traceFlags | TraceFlags.SAMPLED };
  const attributes = { ...span.attributes, 'bulwark.sampling.kept': reason };
  return Object.create(span, {
    spanContext: { value: () => sampled },
    attributes: { value: attributes },
  }) as ReadableSpan;
}
