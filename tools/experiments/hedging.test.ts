import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hedgingFigures, runHedging, type HedgingRow } from './hedging.js';

describe('experiment hedging (heavy-tailed dependency in its own process, open-model load)', () => {
  it('hedging at the observed p95 cuts p99 and p99.9 for a few per cent more calls, within the hedge budget', async () => {
    // A tail of 2 % between 300 and 2 000 ms: far above what a busy machine adds to the fast answers.
    const result = await runHedging({ rate: 200, warmupS: 1, measureS: 4, slowShare: 0.02, slowMinMs: 300, slowMaxMs: 2_000, seed: 1 });
    const by = Object.fromEntries(result.rows.map((r) => [r.config, r])) as Record<'plain' | 'hedged', HedgingRow>;
    const { plain, hedged } = by;

    assert.equal(plain.requests, hedged.requests);
    assert.equal(plain.failed, 0);
    assert.equal(hedged.failed, 0);
    // Without hedging, the slow answers are the p99 and p99.9.
    assert.ok(plain.latency.p99 >= 300, `plain p99 ${plain.latency.p99} ms`);
    assert.ok(hedged.latency.p99 < plain.latency.p99, `p99: hedged ${hedged.latency.p99} ms, plain ${plain.latency.p99} ms`);
    assert.ok(hedged.latency.p999 < plain.latency.p999, `p99.9: hedged ${hedged.latency.p999} ms, plain ${plain.latency.p999} ms`);
    // Every call of the plain configuration is one dependency call; hedges add a few per cent, at most what the budget grants.
    assert.equal(plain.load, 1);
    assert.ok(hedged.hedges > 0);
    assert.ok(hedged.load > 1 && hedged.load <= hedged.bound!, `hedged load ${hedged.load}, bound ${hedged.bound}`);
    assert.ok(hedged.dependencyCalls >= hedged.requests);

    const figures = hedgingFigures(result);
    assert.equal(figures.hedged_p99_ms, hedged.latency.p99);
    assert.equal(figures.hedged_load, hedged.load);
  });
});
