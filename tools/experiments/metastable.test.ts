import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { metastableFigures, runMetastable, type MetastableRow } from './metastable.js';

describe('experiment metastable (overloaded dependency in its own process, short outage, open-model load)', () => {
  it('naive retries stay down after the outage; a retry budget and a breaker recover, with far less load on the dependency', async () => {
    // Capacity 8 workers × 80 ms = 100/s, load 75/s; 400 ms attempt timeout: a few stalls of a busy machine do not time calls out.
    const result = await runMetastable({ workers: 8, serviceMs: 80, timeoutMs: 400, rate: 75, baselineS: 2, outageS: 2, afterS: 6, configs: ['naive', 'budget-breaker'] });
    const by = Object.fromEntries(result.rows.map((r) => [r.config, r])) as Record<'naive' | 'budget-breaker', MetastableRow>;
    const naive = by.naive;
    const guarded = by['budget-breaker'];
    const after = (row: MetastableRow) => row.phases.find((p) => p.name === 'after')!;
    const outage = (row: MetastableRow) => row.phases.find((p) => p.name === 'outage')!;

    assert.notEqual(guarded.recoveryS, null, `budget + breaker never recovered: ${JSON.stringify(guarded.goodputTimeline)}`);
    assert.ok(naive.recoveryS === null || naive.recoveryS >= guarded.recoveryS! + 2, `naive recovered after ${naive.recoveryS} s, budget + breaker after ${guarded.recoveryS} s`);
    // Naive: every user request sends about maxAttempts calls; guarded: about one, less while the breaker is open.
    assert.ok(after(naive).amplification >= 1.5 * after(guarded).amplification, `amplification after: naive ${after(naive).amplification}, guarded ${after(guarded).amplification}`);
    assert.ok(outage(naive).amplification > outage(guarded).amplification, `amplification during: naive ${outage(naive).amplification}, guarded ${outage(guarded).amplification}`);
    // The sustaining effect: the dependency works on requests nobody waits for any more.
    assert.ok(after(naive).wastedShare > after(guarded).wastedShare, `wasted after: naive ${after(naive).wastedShare}, guarded ${after(guarded).wastedShare}`);
    assert.ok(naive.maxQueue > guarded.maxQueue);
    assert.ok(guarded.breakerOpens >= 1);

    const figures = metastableFigures(result);
    assert.equal(figures.budget_breaker_recovery_s, guarded.recoveryS);
    assert.equal(figures.naive_amplification_after, after(naive).amplification);
  });
});
