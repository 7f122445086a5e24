/**
 * `@bulwark/telemetry/testing`: helpers for tests that assert on telemetry —
 * a log capture stream that parses pino's JSON lines, and a span tree built
 * from stored spans for exact parent/child assertions.
 */
import { Writable } from 'node:stream';
import { byStart, type StoredSpan } from '../tracing/span-store.js';

/** A pino destination that keeps every line, parsed. */
export interface LogCapture {
  readonly stream: Writable;
  /** Every line written so far, parsed as JSON. */
  lines(): Record<string, unknown>[];
  clear(): void;
}

/** A destination for `createLogger({ destination })` that keeps the lines in memory. */
export function captureLogs(): LogCapture {
  const lines: Record<string, unknown>[] = [];
  let partial = '';
  const stream = new Writable({
    decodeStrings: false,
    write(chunk: string | Buffer, _encoding, callback) {
      partial += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      callback();
    },
  });
  return { stream, lines: () => [...lines], clear: () => void (lines.length = 0) };
}

/** A span and its children, for comparing a trace's shape. */
export interface SpanNode {
  name: string;
  service: string;
  kind: StoredSpan['kind'];
  children: SpanNode[];
}

/**
 * The trees of `spans` (usually one trace): roots are spans whose parent is
 * not among them; children are ordered by start time.
 */
export function spanTree(spans: readonly StoredSpan[]): SpanNode[] {
  const sorted = [...spans].sort(byStart);
  const ids = new Set(sorted.map((s) => s.spanId));
  const build = (span: StoredSpan): SpanNode => ({
    name: span.name,
    service: span.service,
    kind: span.kind,
    children: sorted.filter((s) => s.parentSpanId === span.spanId).map(build),
  });
  return sorted.filter((s) => s.parentSpanId === undefined || !ids.has(s.parentSpanId)).map(build);
}
