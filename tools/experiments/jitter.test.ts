import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jitterFigures, runJitter, simulate, type JitterRow } from './jitter.js';

describe('experiment jitter (Brooker OCC simulation, virtual time)', () => {
  it('is deterministic for a seed, and every client completes its write exactly once', async () => {
    const a = await simulate('full', 7, { clients: 20 });
    const b = await simulate('full', 7, { clients: 20 });
    assert.deepEqual(a, b);
    // One write succeeds per client (simulate throws otherwise): the rest are conflicts.
    assert.equal(a.calls - a.conflicts, 20);
  });

  it('no jitter makes by far the most calls and takes by far the longest; equal jitter takes longer than full', async () => {
    const result = await runJitter({ clients: 50, runs: 3, seed: 1 });
    const by = Object.fromEntries(result.rows.map((r) => [r.jitter, r])) as Record<JitterRow['jitter'], JitterRow>;
    for (const kind of ['equal', 'full', 'decorrelated'] as const) {
      assert.ok(by.none.calls >= 1.4 * by[kind].calls, `none ${by.none.calls} calls vs ${kind} ${by[kind].calls}`);
      assert.ok(by.none.completionMs >= 5 * by[kind].completionMs, `none ${by.none.completionMs} ms vs ${kind} ${by[kind].completionMs} ms`);
    }
    // Brooker: equal jitter does about the work of full jitter but takes longer.
    assert.ok(by.equal.completionMs > by.full.completionMs, `equal ${by.equal.completionMs} ms vs full ${by.full.completionMs} ms`);
    // The figures line names every strategy.
    const figures = jitterFigures(result);
    for (const kind of ['none', 'equal', 'full', 'decorrelated']) assert.equal(typeof figures[`${kind}_calls`], 'number');
  });
});
