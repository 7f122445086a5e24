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
 *
 * A new trace's ids are drawn as 32-bit words and the ratio rule applied to
 * the words (the XOR of the trace id's four words, as the SDK's
 * `TraceIdRatioBasedSampler` computes from the hex); a deferred span makes
 * the hex of its ids only when something reads `spanContext()` (a log line, an
 * outgoing call's `traceparent`, its export), which for most requests nothing
 * does. The log sampler's per-trace number comes from the words too
 * (`traceFraction()`). Its context is a `SpanFrame`, not a copy of the parent
 * context's map.
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
import { RandomIdGenerator, type IdGenerator } from '@opentelemetry/sdk-trace-base';
import { traceFraction as fractionOf } from '../logging/trace-fields.js';

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

/**
 * Starts a SERVER span under `parent`; `attributes` becomes the span's (it is not copied). `startTime`
 * (`performance.now()`) is the caller's clock reading for the start, so a deferred span does not take another.
 */
export type StartServerSpan = (name: string, attributes: Attributes, parent: Context, startTime?: number) => Span;

export const kStartServerSpan = Symbol.for('bulwark.telemetry.startServerSpan');

export interface ServerSpanOptions {
  tracer: Tracer;
  ids: PrimedIdGenerator;
  ratio: number;
  keepErrors: boolean;
  /** Whether spans of this trace are being kept because one failed. */
  isKept: (traceId: string) => boolean;
  /** Whether any trace is being kept at all (when not, `isKept` needs no trace id). Default: always ask `isKept`. */
  anyKept?: () => boolean;
}

/**
 * The upper bound of `TraceIdRatioBasedSampler`: a trace id is sampled when the XOR of its four 32-bit
 * words is below it (the SDK's rule, so that an SDK span started with the same id agrees).
 */
export function ratioUpperBound(ratio: number): number {
  const r = typeof ratio !== 'number' || Number.isNaN(ratio) ? 0 : ratio >= 1 ? 1 : ratio <= 0 ? 0 : ratio;
  return r === 1 ? 0x1_0000_0000 : Math.floor(r * 0xffffffff);
}

/** A random 32-bit word (the SDK's id generator also draws its ids from `Math.random`). */
function word(): number {
  return (Math.random() * 0x1_0000_0000) >>> 0;
}

const HEX = Buffer.allocUnsafe(16);
/** Lower-case hex of two or four 32-bit words. */
function hex(a: number, b: number, c?: number, d?: number): string {
  HEX.writeUInt32BE(a, 0);
  HEX.writeUInt32BE(b, 4);
  if (c === undefined || d === undefined) return HEX.toString('hex', 0, 8);
  HEX.writeUInt32BE(c, 8);
  HEX.writeUInt32BE(d, 12);
  return HEX.toString('hex', 0, 16);
}

/** A span id of two random words; an all-zero span id is invalid. */
function spanIdOf(s0: number, s1: number): string {
  return hex(s0, (s0 | s1) === 0 ? 1 : s1);
}

export function serverSpanStarter(options: ServerSpanOptions): StartServerSpan {
  const { tracer, ids, keepErrors } = options;
  const upperBound = ratioUpperBound(options.ratio);
  return (name, attributes, parent, startTime) => {
    const parentContext = parent === ROOT_CONTEXT ? undefined : trace.getSpanContext(parent);
    if (parentContext !== undefined && isSpanContextValid(parentContext)) {
      const traceId = parentContext.traceId;
      if ((parentContext.traceFlags & TraceFlags.SAMPLED) !== 0) return ids.with(traceId, undefined, () => tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent));
      if (!keepErrors) return trace.wrapSpanContext({ traceId, spanId: spanIdOf(word(), word()), traceFlags: TraceFlags.NONE, ...(parentContext.traceState === undefined ? {} : { traceState: parentContext.traceState }) });
      const span = new DeferredSpan(options, traceId, 0, 0, 0, 0, word(), word(), name, attributes, parent, startTime ?? performance.now());
      if (parentContext.traceState !== undefined) span.traceState = parentContext.traceState;
      return span;
    }
    // A new trace: its id as four random words, sampled by the SDK's ratio rule on them; hex only when someone reads it.
    const t0 = word();
    const t1 = word();
    const t2 = word();
    let t3 = word();
    if ((t0 | t1 | t2 | t3) === 0) t3 = 1; // an all-zero trace id is invalid
    if ((t0 ^ t1 ^ t2 ^ t3) >>> 0 < upperBound) return ids.with(hex(t0, t1, t2, t3), undefined, () => tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent));
    if (!keepErrors) return trace.wrapSpanContext({ traceId: hex(t0, t1, t2, t3), spanId: spanIdOf(word(), word()), traceFlags: TraceFlags.NONE });
    return new DeferredSpan(options, undefined, t0, t1, t2, t3, word(), word(), name, attributes, parent, startTime ?? performance.now());
  };
}

/** The key under which `trace.setSpan` puts a span in a context (`createContextKey` is `Symbol.for`). */
const SPAN_KEY = Symbol.for('OpenTelemetry Context Key SPAN');

/**
 * `parent` with `span` as its active span, as `trace.setSpan(parent, span)` but without copying the
 * parent's values into a new map (and three closures) per request: reads fall through to the parent,
 * and a `setValue` / `deleteValue` on it builds the ordinary context it stands for.
 */
class SpanFrame implements Context {
  constructor(
    private readonly parent: Context,
    private readonly span: Span,
  ) {}

  getValue(key: symbol): unknown {
    return key === SPAN_KEY ? this.span : this.parent.getValue(key);
  }

  setValue(key: symbol, value: unknown): Context {
    return this.parent.setValue(SPAN_KEY, this.span).setValue(key, value);
  }

  deleteValue(key: symbol): Context {
    return this.parent.setValue(SPAN_KEY, this.span).deleteValue(key);
  }
}

const frameWorks = ((): boolean => {
  const probe = trace.wrapSpanContext({ traceId: '1'.repeat(32), spanId: '1'.repeat(16), traceFlags: 0 });
  return trace.getSpan(new SpanFrame(ROOT_CONTEXT, probe)) === probe && trace.getSpan(new SpanFrame(ROOT_CONTEXT, probe).setValue(Symbol('x'), 1)) === probe;
})();

/** `trace.setSpan(parent, span)`, cheaper (`SpanFrame`) where the API's key is the one expected. */
export function withSpan(parent: Context, span: Span): Context {
  return frameWorks ? new SpanFrame(parent, span) : trace.setSpan(parent, span);
}

type Recorded = { kind: 'event'; name: string; attributes: Attributes | undefined; time: TimeInput } | { kind: 'exception'; exception: Exception; time: TimeInput };

const UNSET: SpanStatus = Object.freeze({ code: SpanStatusCode.UNSET });

/** An unsampled server span that becomes a real one only if it has to be exported. */
export class DeferredSpan implements Span {
  private status: SpanStatus = UNSET;
  private recorded: Recorded[] | undefined;
  private links: Link[] | undefined;
  private ended = false;
  private context: SpanContext | undefined;
  /** The parent's trace state, carried on. */
  traceState: SpanContext['traceState'];

  /** The trace id is `traceId` (a parent's) or the words `t0`-`t3`; the span id the words `s0`, `s1`. Hex is made on first read. */
  constructor(
    private readonly options: ServerSpanOptions,
    private readonly traceId: string | undefined,
    private readonly t0: number,
    private readonly t1: number,
    private readonly t2: number,
    private readonly t3: number,
    private readonly s0: number,
    private readonly s1: number,
    private name: string,
    private readonly attributes: Attributes,
    private readonly parent: Context,
    private readonly startTime: number,
  ) {}

  /** The log sampler's number for this trace (`traceFraction` of its id), without making the id's hex. */
  traceFraction(): number {
    return this.traceId === undefined ? this.t3 / 0x1_0000_0000 : fractionOf(this.traceId);
  }

  spanContext(): SpanContext {
    if (this.context !== undefined) return this.context;
    const traceId = this.traceId ?? hex(this.t0, this.t1, this.t2, this.t3);
    const context: SpanContext = { traceId, spanId: spanIdOf(this.s0, this.s1), traceFlags: TraceFlags.NONE };
    if (this.traceState !== undefined) context.traceState = this.traceState;
    return (this.context = context);
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
    if (this.status.code !== SpanStatusCode.ERROR && (this.options.anyKept?.() === false || !this.options.isKept(this.spanContext().traceId))) return;
    const end = endTime ?? performance.now();
    const { tracer, ids } = this.options;
    const { traceId, spanId } = this.spanContext();
    const span = ids.with(traceId, spanId, () =>
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
