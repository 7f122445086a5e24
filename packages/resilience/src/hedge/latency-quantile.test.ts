import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { InvalidOptionError } from '../errors.js';
import { seededRandom, VirtualClock } from '../testing/index.js';
import { LatencyQuantile } from './latency-quantile.js';

const QUANTILES = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999];

/** The exact sample quantile with the estimator's rank convention: the value of rank max(1, ⌈q·n⌉). */
function exactQuantile(sorted: Float64Array, q: number): number {
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;
}

function normal(random: () => number): number {
  // Box-Muller; 1 - random() is in (0, 1], so the log is finite.
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

const distributions: Record<string, (random: () => number) => number> = {
  'uniform 1..100 ms': (r) => 1 + 99 * r(),
  'exponential, mean 20 ms': (r) => -20 * Math.log(1 - r()),
  'log-normal, median 20 ms, sigma 1': (r) => 20 * Math.exp(normal(r)),
  'bimodal: 95 % near 2 ms, 5 % near 300 ms': (r) => (r() < 0.95 ? 2 + r() : 300 + 50 * r()),
  'Pareto, alpha 1.2, from 0.05 ms (heavy tail)': (r) => 0.05 / Math.pow(1 - r(), 1 / 1.2),
};

function sample(estimator: LatencyQuantile, draw: (random: () => number) => number, n: number, seed: number): Float64Array {
  const random = seededRandom(seed);
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = draw(random);
    values[i] = v;
    estimator.record(v);
  }
  return values.sort();
}

describe('LatencyQuantile', () => {
  for (const [name, draw] of Object.entries(distributions)) {
    it(`is within its relative accuracy (and well within 5 %) of the exact quantiles: ${name}`, () => {
      const clock = new VirtualClock();
      const estimator = new LatencyQuantile({ clock });
      const sorted = sample(estimator, draw, 50_000, 7);
      assert.equal(estimator.count, sorted.length);
      for (const q of QUANTILES) {
        const exact = exactQuantile(sorted, q);
        const estimate = estimator.quantile(q);
        assert.ok(estimate !== undefined);
        const error = Math.abs(estimate - exact) / exact;
        assert.ok(error <= estimator.relativeAccuracy + 1e-9, `q=${q}: estimate ${estimate}, exact ${exact}, relative error ${error}`);
        assert.ok(error < 0.05);
      }
    });
  }

  it('honours a finer relative accuracy', () => {
    const estimator = new LatencyQuantile({ clock: new VirtualClock(), relativeAccuracy: 0.005 });
    const sorted = sample(estimator, distributions['log-normal, median 20 ms, sigma 1']!, 20_000, 11);
    for (const q of QUANTILES) {
      const exact = exactQuantile(sorted, q);
      assert.ok(Math.abs(estimator.quantile(q)! - exact) / exact <= 0.005 + 1e-9, `q=${q}`);
    }
  });

  it('uses memory fixed at construction, whatever the number of samples', () => {
    const estimator = new LatencyQuantile({ clock: new VirtualClock() });
    const buckets = estimator.buckets;
    // 1 µs to 1 h at 2 %: ln(3.6e9) / ln(1.02 / 0.98) ≈ 550 buckets.
    assert.ok(buckets > 500 && buckets < 600, `buckets: ${buckets}`);
    sample(estimator, distributions['Pareto, alpha 1.2, from 0.05 ms (heavy tail)']!, 100_000, 3);
    assert.equal(estimator.buckets, buckets);
  });

  it('answers undefined when empty, and reads with q = 0 and q = 1 give the extremes', () => {
    const estimator = new LatencyQuantile({ clock: new VirtualClock() });
    assert.equal(estimator.quantile(0.5), undefined);
    for (const v of [10, 20, 30, 40, 1000]) estimator.record(v);
    assert.ok(Math.abs(estimator.quantile(0)! - 10) / 10 <= 0.02);
    assert.ok(Math.abs(estimator.quantile(1)! - 1000) / 1000 <= 0.02);
    assert.ok(Math.abs(estimator.quantile(0.5)! - 30) / 30 <= 0.02);
    // The memo is dropped when a sample arrives.
    for (let i = 0; i < 10; i++) estimator.record(1000);
    assert.ok(Math.abs(estimator.quantile(0.5)! - 1000) / 1000 <= 0.02);
  });

  it('counts values below lowestMs as 0, clamps values above highestMs, ignores NaN', () => {
    const estimator = new LatencyQuantile({ clock: new VirtualClock(), lowestMs: 0.01, highestMs: 1_000 });
    estimator.record(0);
    estimator.record(0.001);
    estimator.record(Number.NaN);
    assert.equal(estimator.count, 2);
    assert.equal(estimator.quantile(1), 0);
    estimator.record(5_000_000);
    assert.equal(estimator.count, 3);
    assert.ok(Math.abs(estimator.quantile(1)! - 1_000) / 1_000 <= 0.02);
  });

  it('follows recent latency: reads cover the current and the previous window, then forget', async () => {
    const clock = new VirtualClock();
    const estimator = new LatencyQuantile({ clock, windowMs: 1_000 });
    for (let i = 0; i < 100; i++) estimator.record(100);
    assert.equal(estimator.count, 100);
    await clock.advance(1_000); // next window: the old samples are the previous window, still read
    assert.equal(estimator.count, 100);
    for (let i = 0; i < 300; i++) estimator.record(10);
    assert.equal(estimator.count, 400);
    assert.ok(Math.abs(estimator.quantile(0.5)! - 10) / 10 <= 0.02);
    assert.ok(Math.abs(estimator.quantile(0.9)! - 100) / 100 <= 0.02);
    await clock.advance(1_000); // the 100 ms samples are two windows old: gone
    assert.equal(estimator.count, 300);
    assert.ok(Math.abs(estimator.quantile(0.99)! - 10) / 10 <= 0.02);
    await clock.advance(2_000); // a quiet spell of two windows forgets everything
    assert.equal(estimator.count, 0);
    assert.equal(estimator.quantile(0.5), undefined);
  });

  it('clear() forgets every sample', () => {
    const estimator = new LatencyQuantile({ clock: new VirtualClock() });
    estimator.record(5);
    estimator.clear();
    assert.equal(estimator.count, 0);
    assert.equal(estimator.quantile(0.5), undefined);
  });

  it('refuses invalid options with InvalidOptionError naming the option', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ windowMs: 0 }, 'windowMs'],
      [{ relativeAccuracy: 0 }, 'relativeAccuracy'],
      [{ relativeAccuracy: 1 }, 'relativeAccuracy'],
      [{ relativeAccuracy: 1e-9 }, 'relativeAccuracy'],
      [{ lowestMs: -1 }, 'lowestMs'],
      [{ highestMs: Number.NaN }, 'highestMs'],
      [{ lowestMs: 10, highestMs: 5 }, 'highestMs'],
    ];
    for (const [options, option] of cases) {
      assert.throws(
        () => new LatencyQuantile(options),
        (e: unknown) => e instanceof InvalidOptionError && e.option === option,
        JSON.stringify(options),
      );
    }
  });
});
