import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { amplificationFigures, runConfig } from './amplification.js';

describe('experiment amplification (user → A → B → C over local HTTP, C down)', () => {
  it('retries at every layer: 3 × 3 × 3 = 27 calls reach C per user request', async () => {
    const row = await runConfig('every-layer', { requests: 6, warmup: 2, concurrency: 3 });
    assert.deepEqual(
      { callsA: row.callsA, callsB: row.callsB, callsC: row.callsC, perRequest: row.perRequest, failed: row.failed },
      { callsA: 18, callsB: 54, callsC: 162, perRequest: 27, failed: 6 },
    );
  });

  it('retries at the top layer only: 3 calls reach C per user request', async () => {
    const row = await runConfig('top-only', { requests: 10, warmup: 2, concurrency: 4 });
    assert.deepEqual(
      { callsA: row.callsA, callsB: row.callsB, callsC: row.callsC, perRequest: row.perRequest, failed: row.failed },
      { callsA: 30, callsB: 30, callsC: 30, perRequest: 3, failed: 10 },
    );
  });

  it('top layer with a 10 % retry budget after a warm-up: at most 1 + ratio + a small floor', async () => {
    const requests = 40;
    const warmup = 10;
    const row = await runConfig('top-budget', { requests, warmup, concurrency: 4, budgetRatio: 0.1, budgetMinRetriesPerSecond: 0.1 });
    assert.equal(row.failed, requests);
    assert.ok(row.callsC >= requests, 'every user request reaches C at least once');
    // Retries <= ratio * (requests the budget saw) + floor (0.1/s over a 10 s window = 1).
    const bound = 1 + (0.1 * (warmup + requests) + 1) / requests;
    assert.ok(row.perRequest <= bound, `${row.perRequest} calls per request, bound ${bound}`);
    assert.ok(row.perRequest <= 1.2);
    assert.equal(row.callsA, row.callsC); // no retries below the top layer
    const figures = amplificationFigures({ maxAttempts: 3, warmup, budgetRatio: 0.1, rows: [row] });
    assert.equal(figures.top_budget_c_per_request, row.perRequest);
  });
});
