/**
 * The server span of a request, started the cheap way.
 *
 * With `keepErrors`, a trace outside the ratio is still recorded so that its
 * errors can be kept (`sampler.ts`) — but nearly all such server spans end
 * well and are thrown away. So the server span of an unsampled trace is
 * *deferred*: ids, name, start time and the attributes object, nothing else.
 * It records what it is told (attributes, events, exceptions, status) and, only
 * if it ends in error or its trace is being kept because a child failed
 * (`ErrorKeepingSpanProcessor.isKept`), becomes a real SDK span with the same
 * ids and times, which then takes the usual way to the exporters. Spans
 * started under it are ordinary recorded spans, exactly as before, so the
 * failing path of a trace is kept whole. Sampled traces get an SDK span
 * straight away; with `keepErrors: false`, unsampled traces get a
 * non-recording span.
 *
 * The decision mirrors `createSampler` (parent-based; the trace-id ratio for
 * roots) and the SDK span, when there is one, is started with the ids
 * decided here (`PrimedIdGenerator`), so its sampler answers the same.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  isSpanContextValid,
  trace,
  type Attributes,
  type AttributeValue,
  type Context,
  type Exception,
  type Link,
  type Span,
  type SpanContext,
  type SpanStatus,
  type TimeInput,
  type Tracer,
} from '@opentelemetry/api';
import { RandomIdGenerator, SamplingDecision, TraceIdRatioBasedSampler, type IdGenerator } from '@opentelemetry/sdk-trace-base';

/** Random ids, except that the next span can be given the ids decided before it was started. */
export class PrimedIdGenerator implements IdGenerator {
  readonly random = new RandomIdGenerator();
  private traceId: string | undefined;
  private spanId: string | undefined;

  generateTraceId(): string {
    return this.traceId ?? this.random.generateTraceId();
  }

  generateSpanId(): string {
    return this.spanId ?? this.random.generateSpanId();
  }

  /** Runs `start` with the ids of the span it starts fixed. */
  with<T>(traceId: string, spanId: string | undefined, start: () => T): T {
    this.traceId = traceId;
    this.spanId = spanId;
    try {
      return start();
    } finally {
      this.traceId = undefined;
      this.spanId = undefined;
    }
  }
}

/** Starts a SERVER span under `parent`; `attributes` becomes the span's (it is not copied). */
export type StartServerSpan = (name: string, attributes: Attributes, parent: Context) => Span;

export const kStartServerSpan = Symbol.for('bulwark.telemetry.startServerSpan');

export interface ServerSpanOptions {
  tracer: Tracer;
  ids: PrimedIdGenerator;
  ratio: number;
  keepErrors: boolean;
  /** Whether spans of this trace are being kept because one failed. */
  isKept: (traceId: string) => boolean;
}

export function serverSpanStarter(options: ServerSpanOptions): StartServerSpan {
  const { tracer, ids, keepErrors } = options;
  const ratio = new TraceIdRatioBasedSampler(options.ratio);
  return (name, attributes, parent) => {
    const parentContext = trace.getSpanContext(parent);
    let traceId: string;
    let sampled: boolean;
    let traceState: SpanContext['traceState'];
    if (parentContext !== undefined && isSpanContextValid(parentContext)) {
      traceId = parentContext.traceId;
      traceState = parentContext.traceState;
      sampled = (parentContext.traceFlags & TraceFlags.SAMPLED) !== 0;
    } else {
      traceId = ids.random.generateTraceId();
      sampled = ratio.shouldSample(ROOT_CONTEXT, traceId).decision === SamplingDecision.RECORD_AND_SAMPLED;
    }
    if (sampled) return ids.with(traceId, undefined, () => tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent));
    const spanContext: SpanContext = { traceId, spanId: ids.random.generateSpanId(), traceFlags: TraceFlags.NONE };
    if (traceState !== undefined) spanContext.traceState = traceState;
    if (!keepErrors) return trace.wrapSpanContext(spanContext);
    return new DeferredSpan(options, spanContext, name, attributes, parent);
  };
}

type Recorded = { kind: 'event'; name: string; attributes: Attributes | undefined; time: TimeInput } | { kind: 'exception'; exception: Exception; time: TimeInput };

const UNSET: SpanStatus = Object.freeze({ code: SpanStatusCode.UNSET });

/** An unsampled server span that becomes a real one only if it has to be exported. */
class DeferredSpan implements Span {
  private readonly startTime = performance.now();
  private status: SpanStatus = UNSET;
  private recorded: Recorded[] | undefined;
  private links: Link[] | undefined;
  private ended = false;

  constructor(
    private readonly options: ServerSpanOptions,
    private readonly context: SpanContext,
    private name: string,
    private readonly attributes: Attributes,
    private readonly parent: Context,
  ) {}

  spanContext(): SpanContext {
    return this.context;
  }

  setAttribute(key: string, value: AttributeValue): this {
    if (!this.ended) this.attributes[key] = value;
    return this;
  }

  setAttributes(attributes: Attributes): this {
    if (!this.ended) Object.assign(this.attributes, attributes);
    return this;
  }

  addEvent(name: string, attributesOrTime?: Attributes | TimeInput, time?: TimeInput): this {
    if (this.ended) return this;
    const isTime = typeof attributesOrTime === 'number' || attributesOrTime instanceof Date || Array.isArray(attributesOrTime);
    (this.recorded ??= []).push({ kind: 'event', name, attributes: isTime ? undefined : (attributesOrTime), time: (isTime ? (attributesOrTime) : time) ?? performance.now() });
    return this;
  }

  addLink(link: Link): this {
    if (!this.ended) (this.links ??= []).push(link);
    return this;
  }

  addLinks(links: Link[]): this {
    if (!this.ended) (this.links ??= []).push(...links);
    return this;
  }

  setStatus(status: SpanStatus): this {
    if (this.ended) return this;
    // As the SDK does: UNSET changes nothing, OK is final.
    if (status.code === SpanStatusCode.UNSET || this.status.code === SpanStatusCode.OK) return this;
    this.status = status;
    return this;
  }

  updateName(name: string): this {
    if (!this.ended) this.name = name;
    return this;
  }

  recordException(exception: Exception, time?: TimeInput): void {
    if (!this.ended) (this.recorded ??= []).push({ kind: 'exception', exception, time: time ?? performance.now() });
  }

  isRecording(): boolean {
    return !this.ended;
  }

  end(endTime?: TimeInput): void {
    if (this.ended) return;
    this.ended = true;
    if (this.status.code !== SpanStatusCode.ERROR && !this.options.isKept(this.context.traceId)) return;
    const end = endTime ?? performance.now();
    const { tracer, ids } = this.options;
    const span = ids.with(this.context.traceId, this.context.spanId, () =>
      tracer.startSpan(this.name, { kind: SpanKind.SERVER, attributes: this.attributes, startTime: this.startTime, ...(this.links === undefined ? {} : { links: this.links }) }, this.parent),
    );
    for (const item of this.recorded ?? []) {
      if (item.kind === 'event') span.addEvent(item.name, item.attributes, item.time);
      else span.recordException(item.exception, item.time);
    }
    if (this.status.code !== SpanStatusCode.UNSET) span.setStatus(this.status);
    span.end(end);
  }
}
