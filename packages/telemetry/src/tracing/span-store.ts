/**
 * The in-memory span store of the embedded mode: a bounded ring of finished
 * spans with a small query API, read by the ops console and by tests.
 *
 * Bounded by span count: when full, the oldest span is evicted (and dropped
 * from its trace's index), so memory stays flat however long the process
 * runs. Spans are kept as plain, JSON-ready records.
 *
 * @example
 * ```ts
 * const spans = new MemorySpanStore({ maxSpans: 20_000 });
 * const telemetry = setupTelemetry({ serviceName: 'shop', exporter: 'memory', memory: { store: spans } });
 * spans.query({ errorsOnly: true, limit: 50 });
 * ```
 */
import { SpanKind, SpanStatusCode, type Attributes } from '@opentelemetry/api';
import { ExportResultCode, hrTimeToMilliseconds, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { requirePositiveInt } from '../errors.js';

/** A finished span, as stored. Times are epoch milliseconds. */
export interface StoredSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  kind: 'internal' | 'server' | 'client' | 'producer' | 'consumer';
  service: string;
  startTimeMs: number;
  endTimeMs: number;
  durationMs: number;
  status: { code: 'unset' | 'ok' | 'error'; message?: string };
  attributes: Attributes;
  events: { name: string; timeMs: number; attributes: Attributes }[];
  links: { traceId: string; spanId: string; attributes: Attributes }[];
}

/** What `query` filters on; every field is optional and they combine with AND. */
export interface SpanQuery {
  traceId?: string;
  service?: string;
  /** Exact span name. */
  name?: string;
  errorsOnly?: boolean;
  /** Most recent first; default 100. */
  limit?: number;
}

/** A trace, summarised for a list view. */
export interface TraceSummary {
  traceId: string;
  rootName: string | undefined;
  services: string[];
  spanCount: number;
  errorCount: number;
  startTimeMs: number;
  durationMs: number;
}

export interface MemorySpanStoreOptions {
  /** Most spans kept. Default 10 000. */
  maxSpans?: number;
}

const KINDS: StoredSpan['kind'][] = [];
KINDS[SpanKind.INTERNAL] = 'internal';
KINDS[SpanKind.SERVER] = 'server';
KINDS[SpanKind.CLIENT] = 'client';
KINDS[SpanKind.PRODUCER] = 'producer';
KINDS[SpanKind.CONSUMER] = 'consumer';

export class MemorySpanStore {
  readonly maxSpans: number;
  private readonly ring: (StoredSpan | undefined)[];
  private next = 0;
  private count = 0;
  private readonly byTrace = new Map<string, StoredSpan[]>();
  private readonly listeners: ((span: StoredSpan) => void)[] = [];

  constructor(options: MemorySpanStoreOptions = {}) {
    this.maxSpans = requirePositiveInt('MemorySpanStore', 'maxSpans', options.maxSpans ?? 10_000);
    this.ring = new Array<StoredSpan | undefined>(this.maxSpans);
  }

  /** Number of spans held. */
  get size(): number {
    return this.count;
  }

  /** Adds finished SDK spans (the exporter calls this). */
  add(spans: readonly ReadableSpan[]): void {
    for (const span of spans) this.insert(toStored(span));
  }

  /** Every span of one trace, in start order (a parent before its children when they start together). */
  trace(traceId: string): StoredSpan[] {
    const spans = this.byTrace.get(traceId);
    return spans === undefined ? [] : [...spans].sort(byStart);
  }

  /** Spans matching `query`, most recent first. */
  query(query: SpanQuery = {}): StoredSpan[] {
    const limit = query.limit ?? 100;
    const out: StoredSpan[] = [];
    const source = query.traceId === undefined ? undefined : (this.byTrace.get(query.traceId) ?? []);
    if (source !== undefined) {
      for (let i = source.length - 1; i >= 0 && out.length < limit; i--) if (matches(source[i]!, query)) out.push(source[i]!);
      return out;
    }
    for (let i = 1; i <= this.count && out.length < limit; i++) {
      const span = this.ring[(this.next - i + this.maxSpans) % this.maxSpans];
      if (span !== undefined && matches(span, query)) out.push(span);
    }
    return out;
  }

  /** The `n` most recently finished spans, newest first. */
  recent(n = 100): StoredSpan[] {
    return this.query({ limit: n });
  }

  /** Summaries of the traces held, newest first (by their latest span). */
  traces(limit = 50): TraceSummary[] {
    const seen = new Set<string>();
    const out: TraceSummary[] = [];
    for (let i = 1; i <= this.count && out.length < limit; i++) {
      const span = this.ring[(this.next - i + this.maxSpans) % this.maxSpans];
      if (span === undefined || seen.has(span.traceId)) continue;
      seen.add(span.traceId);
      out.push(summarise(span.traceId, this.byTrace.get(span.traceId) ?? []));
    }
    return out;
  }

  /** Calls `listener` for each span added; returns the function that unsubscribes. */
  onSpan(listener: (span: StoredSpan) => void): () => void {
    this.listeners.push(listener);
    return () => void this.listeners.splice(this.listeners.indexOf(listener), 1);
  }

  /** Forgets every span. */
  clear(): void {
    this.ring.fill(undefined);
    this.byTrace.clear();
    this.next = 0;
    this.count = 0;
  }

  /** An OpenTelemetry exporter writing into this store. */
  exporter(): SpanExporter {
    return new MemorySpanExporter(this);
  }

  private insert(span: StoredSpan): void {
    const evicted = this.ring[this.next];
    if (evicted !== undefined) {
      const siblings = this.byTrace.get(evicted.traceId);
      if (siblings !== undefined) {
        const i = siblings.indexOf(evicted);
        if (i >= 0) siblings.splice(i, 1);
        if (siblings.length === 0) this.byTrace.delete(evicted.traceId);
      }
    } else this.count++;
    this.ring[this.next] = span;
    this.next = (this.next + 1) % this.maxSpans;
    const list = this.byTrace.get(span.traceId);
    if (list === undefined) this.byTrace.set(span.traceId, [span]);
    else list.push(span);
    for (const listener of this.listeners) {
      try {
        listener(span);
      } catch {
        // a console listener's bug must not lose spans
      }
    }
  }
}

/** The exporter behind `MemorySpanStore.exporter()`; never fails. */
export class MemorySpanExporter implements SpanExporter {
  constructor(readonly store: MemorySpanStore) {}
  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.store.add(spans);
    resultCallback({ code: ExportResultCode.SUCCESS });
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

/** Start order; on a tie, a parent first. */
export function byStart(a: StoredSpan, b: StoredSpan): number {
  if (a.startTimeMs !== b.startTimeMs) return a.startTimeMs - b.startTimeMs;
  if (b.parentSpanId === a.spanId) return -1;
  if (a.parentSpanId === b.spanId) return 1;
  return 0;
}

function matches(span: StoredSpan, q: SpanQuery): boolean {
  return (
    (q.service === undefined || span.service === q.service) &&
    (q.name === undefined || span.name === q.name) &&
    (q.errorsOnly !== true || span.status.code === 'error') &&
    (q.traceId === undefined || span.traceId === q.traceId)
  );
}

function summarise(traceId: string, spans: readonly StoredSpan[]): TraceSummary {
  let start = Infinity;
  let end = -Infinity;
  let errors = 0;
  let root: StoredSpan | undefined;
  const ids = new Set(spans.map((s) => s.spanId));
  const services = new Set<string>();
  for (const s of spans) {
    start = Math.min(start, s.startTimeMs);
    end = Math.max(end, s.endTimeMs);
    if (s.status.code === 'error') errors++;
    services.add(s.service);
    if ((s.parentSpanId === undefined || !ids.has(s.parentSpanId)) && (root === undefined || s.startTimeMs < root.startTimeMs)) root = s;
  }
  return { traceId, rootName: root?.name, services: [...services], spanCount: spans.length, errorCount: errors, startTimeMs: start, durationMs: end - start };
}

function toStored(span: ReadableSpan): StoredSpan {
  const ctx = span.spanContext();
  const startTimeMs = hrTimeToMilliseconds(span.startTime);
  const endTimeMs = hrTimeToMilliseconds(span.endTime);
  const status: StoredSpan['status'] = { code: span.status.code === SpanStatusCode.ERROR ? 'error' : span.status.code === SpanStatusCode.OK ? 'ok' : 'unset' };
  if (span.status.message !== undefined && span.status.message !== '') status.message = span.status.message;
  return {
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    parentSpanId: span.parentSpanContext?.spanId,
    name: span.name,
    kind: KINDS[span.kind] ?? 'internal',
    service: String(span.resource.attributes['service.name'] ?? 'unknown'),
    startTimeMs,
    endTimeMs,
    durationMs: hrTimeToMilliseconds(span.duration),
    status,
    attributes: { ...span.attributes },
    events: span.events.map((e) => ({ name: e.name, timeMs: hrTimeToMilliseconds(e.time), attributes: { ...e.attributes } })),
    links: span.links.map((l) => ({ traceId: l.context.traceId, spanId: l.context.spanId, attributes: { ...l.attributes } })),
  };
}
