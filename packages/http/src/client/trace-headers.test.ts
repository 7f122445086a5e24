import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { runWithRequestContext } from '../request-context.js';
import { addContextHeaders, TRACER_PROPAGATES_UNDICI } from './trace-headers.js';

const incoming = { requestId: 'req-1', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'k=v' };

describe('context headers on outgoing calls', () => {
  it('carries the incoming trace context and request id when no tracer injects into undici', () => {
    const headers: Record<string, string> = {};
    runWithRequestContext(incoming, () => addContextHeaders(headers));
    assert.deepEqual(headers, { traceparent: incoming.traceparent, tracestate: 'k=v', 'x-request-id': 'req-1' });
  });

  it('leaves traceparent and tracestate to a tracer that injects into undici (two values would break the trace)', () => {
    const slot = globalThis as Record<symbol, unknown>;
    const before = slot[TRACER_PROPAGATES_UNDICI];
    slot[TRACER_PROPAGATES_UNDICI] = 1;
    try {
      const headers: Record<string, string> = {};
      runWithRequestContext(incoming, () => addContextHeaders(headers));
      assert.deepEqual(headers, { 'x-request-id': 'req-1' });
    } finally {
      slot[TRACER_PROPAGATES_UNDICI] = before;
    }
  });

  it('keeps what the caller set', () => {
    const headers: Record<string, string> = { traceparent: 'mine', 'x-request-id': 'mine' };
    runWithRequestContext(incoming, () => addContextHeaders(headers));
    assert.deepEqual(headers, { traceparent: 'mine', 'x-request-id': 'mine' });
  });
});
