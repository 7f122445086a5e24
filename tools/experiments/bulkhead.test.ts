import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bulkheadFigures, runBulkhead, type BulkheadRow } from './bulkhead.js';

describe('experiment bulkhead (the monolith shop\'s product page while recommendations hang)', () => {
  it('bulkheads bound the hung calls and the pages that wait for the timeout; they do not keep the page p99 under it', async () => {
    const timeoutMs = 1_000;
    const slots = 5;
    const result = await runBulkhead({ rate: 40, warmupS: 1, normalS: 1, hangS: 4, timeoutMs, slots, seed: 1 });
    const by = Object.fromEntries(result.rows.map((r) => [r.config, r])) as Record<'bulkheads' | 'no-bulkheads', BulkheadRow>;
    const hang = (row: BulkheadRow) => row.phases.find((p) => p.name === 'hang')!;
    const withB = hang(by.bulkheads);
    const without = hang(by['no-bulkheads']);

    // With bulkheads, never more recommendations calls in flight than slots; without, far more.
    assert.ok(withB.dependencies.recommendations.maxInFlight <= slots, `with bulkheads: ${withB.dependencies.recommendations.maxInFlight} in flight`);
    assert.ok(without.dependencies.recommendations.maxInFlight >= 2 * slots, `without bulkheads: ${without.dependencies.recommendations.maxInFlight} in flight`);
    assert.ok(withB.dependencies.recommendations.calls < without.dependencies.recommendations.calls);
    // Fewer pages wait for the recommendations timeout with bulkheads: only those that got a slot.
    assert.ok(without.slowShare > 0.1, `without bulkheads ${without.slowShare} of pages waited for the timeout`);
    assert.ok(withB.slowShare < 0.75 * without.slowShare, `pages that waited for the timeout: ${withB.slowShare} with bulkheads, ${without.slowShare} without`);
    // Without bulkheads the page p99 rises to the timeout (the expectation) — and with them it does too:
    // slots / timeout = 5 pages a second still wait the full timeout, well over 1 % of 40 pages a second.
    assert.ok(without.p99 >= 0.95 * timeoutMs, `page p99 without bulkheads ${without.p99} ms`);
    assert.ok(withB.p99 >= 0.95 * timeoutMs, `page p99 with bulkheads ${withB.p99} ms`);
    // Recommendations fell back (last good answer or none) rather than failing the page.
    const fallbacks = (p: typeof withB) => (p.sources['last-good'] ?? 0) + (p.sources.none ?? 0);
    assert.ok(fallbacks(withB) > 0 && fallbacks(without) > 0);

    const figures = bulkheadFigures(result);
    assert.equal(figures.bulkheads_hang_recs_max_in_flight, withB.dependencies.recommendations.maxInFlight);
  });
});
