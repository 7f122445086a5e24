/**
 * The memory span store (`setupTelemetry(...).spans`), read-only over HTTP at
 * `/traces`, behind the internal key (`x-shop-internal-key`): spans carry
 * paths, order and user ids.
 *
 * - `GET /traces?limit=&service=&error=true&name=`: trace summaries, newest
 *   first (`service`: a span of that service in the trace; `error`: a span in
 *   error; `name`: a span of exactly that name, e.g. `POST /api/orders/`).
 * - `GET /traces/:traceId`: the trace's spans as a tree (roots: spans whose
 *   parent is not in the store, such as a saga's derived root), plus the
 *   traces it links to and those that link to it, each as a tree too.
 * - `GET /traces/saga/:sagaId`: the same, for a saga's trace — its id is
 *   derived from the saga id (`traceSagas`), and an order's saga id is the
 *   order id. The request that placed the order is among its `linked` traces
 *   (its `saga CreateOrder start` span links to the saga's trace).
 *
 * Each read first flushes the batch span processor, so spans that just ended
 * are there.
 */
import { sagaSpanContext, type MemorySpanStore, type StoredSpan, type TraceSummary } from '@bulwark/telemetry';
import type { FastifyPluginAsync } from 'fastify';
import { internalOnly, shopProblem } from './platform.js';

export interface TraceRoutesOptions {
  store: MemorySpanStore;
  /** Exports the spans waiting in the batch processor (`telemetry.forceFlush`). */
  flush: () => Promise<void>;
  internalKey: string;
}

/** A span and the spans under it. */
export type SpanNode = StoredSpan & { children: SpanNode[] };

export interface TraceView {
  traceId: string;
  summary: TraceSummary;
  spans: SpanNode[];
}

export interface LinkedTraceView extends TraceView {
  /** `links-to`: a span of the requested trace links to this one; `linked-from`: a span of this one links to the requested trace. */
  relation: 'links-to' | 'linked-from';
}

const TRACE_ID = '^[0-9a-f]{32}$';

/** The spans of one trace as a forest, children in start order. */
export function spanTree(spans: readonly StoredSpan[]): SpanNode[] {
  const nodes = new Map<string, SpanNode>();
  for (const span of spans) nodes.set(span.spanId, { ...span, children: [] });
  const roots: SpanNode[] = [];
  for (const node of nodes.values()) {
    const parent = node.parentSpanId === undefined ? undefined : nodes.get(node.parentSpanId);
    (parent === undefined ? roots : parent.children).push(node);
  }
  return roots;
}

function summarise(traceId: string, spans: readonly StoredSpan[]): TraceSummary {
  const ids = new Set(spans.map((s) => s.spanId));
  let root: StoredSpan | undefined;
  let start = Infinity;
  let end = -Infinity;
  for (const s of spans) {
    start = Math.min(start, s.startTimeMs);
    end = Math.max(end, s.endTimeMs);
    if ((s.parentSpanId === undefined || !ids.has(s.parentSpanId)) && (root === undefined || s.startTimeMs < root.startTimeMs)) root = s;
  }
  return {
    traceId,
    rootName: root?.name,
    services: [...new Set(spans.map((s) => s.service))],
    spanCount: spans.length,
    errorCount: spans.filter((s) => s.status.code === 'error').length,
    startTimeMs: start,
    durationMs: end - start,
  };
}

function view(store: MemorySpanStore, traceId: string): TraceView | undefined {
  const spans = store.trace(traceId);
  return spans.length === 0 ? undefined : { traceId, summary: summarise(traceId, spans), spans: spanTree(spans) };
}

/** The trace, its linked traces (both directions, one hop), or undefined when the store holds none of its spans. */
export function traceView(store: MemorySpanStore, traceId: string): (TraceView & { linked: LinkedTraceView[] }) | undefined {
  const own = view(store, traceId);
  if (own === undefined) return undefined;
  const relations = new Map<string, LinkedTraceView['relation']>();
  for (const span of store.trace(traceId)) for (const link of span.links) if (link.traceId !== traceId) relations.set(link.traceId, 'links-to');
  for (const span of store.recent(store.size)) {
    if (span.traceId !== traceId && !relations.has(span.traceId) && span.links.some((l) => l.traceId === traceId)) relations.set(span.traceId, 'linked-from');
  }
  const linked: LinkedTraceView[] = [];
  for (const [id, relation] of relations) {
    const other = view(store, id);
    if (other !== undefined) linked.push({ ...other, relation });
  }
  return { ...own, linked };
}

/** The read-only trace routes; register with a prefix (`/traces`). */
export const traceRoutes: FastifyPluginAsync<TraceRoutesOptions> = async (app, { store, flush, internalKey }) => {
  app.addHook('preHandler', internalOnly(internalKey));
  app.addHook('preHandler', async () => {
    await flush();
  });

  app.get<{ Querystring: { limit?: number; service?: string; error?: boolean; name?: string } }>(
    '/',
    {
      schema: {
        hide: true,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: 500 },
            service: { type: 'string', minLength: 1, maxLength: 200 },
            error: { type: 'boolean' },
            name: { type: 'string', minLength: 1, maxLength: 500 },
          },
        },
      },
    },
    (request) => {
      const { limit = 20, service, error, name } = request.query;
      const named = name === undefined ? undefined : new Set(store.query({ name, limit: store.size }).map((s) => s.traceId));
      const traces = store
        .traces(store.size)
        .filter((t) => (service === undefined || t.services.includes(service)) && (error !== true || t.errorCount > 0) && (named === undefined || named.has(t.traceId)))
        .slice(0, limit);
      return { traces, held: { spans: store.size, maxSpans: store.maxSpans } };
    },
  );

  const found = (traceId: string, what: string) => {
    const trace = traceView(store, traceId);
    if (trace === undefined) throw shopProblem('unknown-trace', 404, 'Unknown trace', `no span of ${what} is held (the store keeps the last ${store.maxSpans} spans)`);
    return trace;
  };
  app.get<{ Params: { traceId: string } }>(
    '/:traceId',
    { schema: { hide: true, params: { type: 'object', required: ['traceId'], properties: { traceId: { type: 'string', pattern: TRACE_ID } } } } },
    (request) => found(request.params.traceId, `trace ${request.params.traceId}`),
  );
  app.get<{ Params: { sagaId: string } }>(
    '/saga/:sagaId',
    { schema: { hide: true, params: { type: 'object', required: ['sagaId'], properties: { sagaId: { type: 'string', minLength: 1, maxLength: 200 } } } } },
    (request) => found(sagaSpanContext(request.params.sagaId).traceId, `saga ${request.params.sagaId}`),
  );
  return Promise.resolve();
};
