import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { openStore } from '@bulwark/store';
import { testDatabase } from '@bulwark/store/testing';
import { createSagaOrchestrator, defineSaga, sagaMigrations, type SagaDefinition } from '@bulwark/saga';
import { Metrics } from '../metrics/metrics.js';
import { setupTelemetry } from '../tracing/setup.js';
import { instrumentSagas, sagaSpanContext, traceSagas } from './saga-telemetry.js';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function orchestratorWith(def: SagaDefinition) {
  const d = await testDatabase('sqlite', 'sagatel');
  const store = await openStore<unknown>({ module: d.module, url: d.url, migrations: { saga: sagaMigrations } });
  const orchestrator = await createSagaOrchestrator({ store, sagas: [def], pollIntervalMs: 50 });
  cleanups.push(d.cleanup, () => store.close(), () => orchestrator.close({ drainMs: 0 }));
  return orchestrator;
}

const refuse = () => Promise.reject(Object.assign(new Error('card declined'), { retryable: false }));

describe('saga telemetry', () => {
  it('counts sagas by outcome and times their steps, from real orchestrator events', async () => {
    let failCharge = false;
    let transientOnce = true;
    const def = defineSaga('Order', { input: (raw) => raw as { n: number } })
      .step('reserve', {
        invoke: async () => {
          if (transientOnce) {
            transientOnce = false;
            throw Object.assign(new Error('busy'), { status: 503 });
          }
        },
        compensate: async () => undefined,
        retry: { maxAttempts: 3, backoff: { baseMs: 1, capMs: 2 } },
      })
      .step('charge', { invoke: () => (failCharge ? refuse() : Promise.resolve()), pivot: true })
      .build();
    const orchestrator = await orchestratorWith(def);
    const metrics = new Metrics();
    const stop = instrumentSagas(metrics, orchestrator);
    await orchestrator.result((await orchestrator.start(def, { n: 1 })).id, { timeoutMs: 10_000 });
    failCharge = true;
    await orchestrator.result((await orchestrator.start(def, { n: 2 })).id, { timeoutMs: 10_000 });
    stop();
    const { body } = await metrics.scrape('text/plain');
    assert.match(body, /bulwark_saga_started_total\{type="Order"\} 2/);
    assert.match(body, /bulwark_saga_finished_total\{type="Order",outcome="completed"\} 1/);
    assert.match(body, /bulwark_saga_finished_total\{type="Order",outcome="compensated"\} 1/);
    assert.match(body, /bulwark_saga_duration_seconds_count\{type="Order",outcome="compensated"\} 1/);
    assert.match(body, /bulwark_saga_step_duration_seconds_count\{type="Order",step="charge",phase="invoke",outcome="failed"\} 1/);
    assert.match(body, /bulwark_saga_step_duration_seconds_count\{type="Order",step="reserve",phase="compensate",outcome="succeeded"\} 1/);
    // The first reserve took two attempts; the second one.
    assert.match(body, /bulwark_saga_step_attempts_total\{type="Order",step="reserve",phase="invoke"\} 3/);
    assert.match(body, /bulwark_saga_active 0/);
  });

  it('puts every step of a saga in one trace derived from its id, and links the start to it', async () => {
    const t = setupTelemetry({ serviceName: 'saga-test', exporter: 'memory', processor: 'simple', register: false, messaging: false, httpClient: false, resilience: false });
    cleanups.push(() => t.shutdown());
    const def = defineSaga('Trip', { input: (raw) => raw as { n: number } })
      .step('hotel', { invoke: async () => undefined, compensate: async () => undefined })
      .step('flight', { invoke: refuse, pivot: true })
      .build();
    const orchestrator = await orchestratorWith(def);
    const stop = traceSagas(t.tracer, orchestrator);
    const { id } = await orchestrator.start(def, { n: 1 });
    await orchestrator.result(id, { timeoutMs: 10_000 });
    stop();
    await t.forceFlush();
    const root = sagaSpanContext(id);
    const spans = t.spans?.recent() ?? [];
    const inSaga = spans.filter((s) => s.traceId === root.traceId);
    assert.deepEqual(inSaga.map((s) => s.name).sort(), ['saga Trip', 'saga Trip flight', 'saga Trip hotel', 'saga Trip hotel compensate']);
    for (const s of inSaga) assert.equal(s.parentSpanId, root.spanId);
    assert.equal(inSaga.find((s) => s.name === 'saga Trip flight')?.status.code, 'error', 'the refused step is an error span');
    const start = spans.find((s) => s.name === 'saga Trip start');
    assert.ok(start !== undefined && start.traceId !== root.traceId);
    assert.deepEqual(start.links.map((l) => l.traceId), [root.traceId]);
  });

  it('samples whole sagas by a ratio every process agrees on', () => {
    const ids = Array.from({ length: 2_000 }, (_, i) => `saga-${i}`);
    const kept = ids.filter((id) => sagaSpanContext(id, 0.25).traceFlags === 1).length;
    assert.ok(kept > 400 && kept < 600, `about a quarter kept, got ${kept}`);
    assert.equal(sagaSpanContext('x', 0.25).traceFlags, sagaSpanContext('x', 0.25).traceFlags);
  });
});
