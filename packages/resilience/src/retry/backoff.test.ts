import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidOptionError } from '../errors.js';
import { seededRandom } from '../testing/index.js';
import { Backoff, type BackoffOptions, type Jitter } from './backoff.js';

/** A value `Math.random` could return: [0, 1). */
const unit = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }).map((r) => r + 0);

/** Base and cap in whole milliseconds, cap >= base. */
const scale = fc
  .record({ baseMs: fc.integer({ min: 0, max: 10_000 }), extraMs: fc.integer({ min: 0, max: 100_000 }) })
  .map(({ baseMs, extraMs }) => ({ baseMs, capMs: baseMs + extraMs }));

/** Retry index: past 1023 doublings `base * 2^n` overflows to Infinity. */
const retryIndex = fc.integer({ min: 0, max: 1_100 });

const jitters: readonly Jitter[] = ['none', 'full', 'equal', 'decorrelated'];

/** `min(cap, base * 2^n)` in real arithmetic (in floats, 0 * 2^1024 would be NaN). */
const ceilingOf = (baseMs: number, capMs: number, n: number): number => Math.min(capMs, baseMs === 0 ? 0 : baseMs * 2 ** n);

describe('Backoff', () => {
  it('has the documented defaults', () => {
    const b = new Backoff();
    assert.equal(b.kind, 'exponential');
    assert.equal(b.baseMs, 100);
    assert.equal(b.capMs, 10_000);
    assert.equal(b.multiplier, 2);
    assert.equal(b.jitter, 'full');
    assert.deepEqual([0, 1, 2, 3, 6, 7, 20].map((n) => b.ceiling(n)), [100, 200, 400, 800, 6_400, 10_000, 10_000]);
  });

  it('full jitter: 0 <= delay <= min(cap, base * 2^n)', () => {
    fc.assert(
      fc.property(scale, retryIndex, unit, ({ baseMs, capMs }, n, r) => {
        const d = new Backoff({ baseMs, capMs, jitter: 'full' }).delay(n, 0, () => r);
        return d >= 0 && d <= ceilingOf(baseMs, capMs, n);
      }),
    );
  });

  it('full jitter spans the whole range: r = 0 gives 0, r near 1 gives nearly the ceiling', () => {
    const b = new Backoff({ baseMs: 100, capMs: 10_000, jitter: 'full' });
    assert.equal(b.delay(3, 0, () => 0), 0);
    assert.equal(b.delay(3, 0, () => 0.5), 400);
    assert.ok(b.delay(3, 0, () => 0.999_999) > 799);
  });

  it('equal jitter: t/2 <= delay <= t, t = min(cap, base * 2^n)', () => {
    fc.assert(
      fc.property(scale, retryIndex, unit, ({ baseMs, capMs }, n, r) => {
        const t = ceilingOf(baseMs, capMs, n);
        const d = new Backoff({ baseMs, capMs, jitter: 'equal' }).delay(n, 0, () => r);
        return d >= t / 2 && d <= t;
      }),
    );
  });

  it('decorrelated jitter: base <= delay <= min(cap, max(base, previous * 3))', () => {
    fc.assert(
      fc.property(scale, retryIndex, fc.integer({ min: 1, max: 1_000_000 }), unit, ({ baseMs, capMs }, n, previous, r) => {
        const d = new Backoff({ baseMs, capMs, jitter: 'decorrelated' }).delay(n, previous, () => r);
        return d >= baseMs && d <= Math.min(capMs, Math.max(baseMs, previous * 3));
      }),
    );
  });

  it('decorrelated jitter starts from base: the first delay is in [base, min(cap, 3 * base)]', () => {
    fc.assert(
      fc.property(scale, unit, ({ baseMs, capMs }, r) => {
        const d = new Backoff({ baseMs, capMs, jitter: 'decorrelated' }).delay(0, 0, () => r);
        return d >= baseMs && d <= Math.min(capMs, baseMs * 3);
      }),
    );
  });

  it('decorrelated jitter: a whole sequence, each delay fed back, stays within [base, cap]', () => {
    fc.assert(
      fc.property(scale, fc.array(unit, { minLength: 1, maxLength: 30 }), ({ baseMs, capMs }, draws) => {
        const b = new Backoff({ baseMs, capMs, jitter: 'decorrelated' });
        let previous = 0;
        for (const [n, r] of draws.entries()) {
          const d = b.delay(n, previous, () => r);
          const high = Math.min(capMs, Math.max(baseMs, (previous > 0 ? previous : baseMs) * 3));
          if (!(d >= baseMs && d <= high)) return false;
          previous = d;
        }
        return true;
      }),
    );
  });

  it('no jitter: exactly the ceiling, without drawing a random number', () => {
    fc.assert(
      fc.property(scale, retryIndex, fc.integer({ min: 0, max: 1_000_000 }), ({ baseMs, capMs }, n, previous) => {
        const b = new Backoff({ baseMs, capMs, jitter: 'none' });
        const d = b.delay(n, previous, () => assert.fail('random() must not be called'));
        return d === ceilingOf(baseMs, capMs, n) && d === b.ceiling(n);
      }),
    );
  });

  it('grows by the multiplier', () => {
    const b = new Backoff({ baseMs: 10, capMs: 100_000, multiplier: 3, jitter: 'none' });
    assert.deepEqual([0, 1, 2, 3].map((n) => b.delay(n, 0, Math.random)), [10, 30, 90, 270]);
    const flat = new Backoff({ baseMs: 10, multiplier: 1, jitter: 'none' });
    assert.deepEqual([0, 1, 50].map((n) => flat.delay(n, 0, Math.random)), [10, 10, 10]);
  });

  it('constant kind: the ceiling is the base for every retry, whatever the multiplier', () => {
    fc.assert(
      fc.property(scale, retryIndex, unit, fc.integer({ min: 1, max: 10 }), ({ baseMs, capMs }, n, r, multiplier) => {
        const none = new Backoff({ kind: 'constant', baseMs, capMs, multiplier, jitter: 'none' });
        const full = new Backoff({ kind: 'constant', baseMs, capMs, multiplier, jitter: 'full' });
        const equal = new Backoff({ kind: 'constant', baseMs, capMs, multiplier, jitter: 'equal' });
        const dFull = full.delay(n, 0, () => r);
        const dEqual = equal.delay(n, 0, () => r);
        return (
          none.ceiling(n) === baseMs &&
          none.delay(n, 0, () => r) === baseMs &&
          dFull >= 0 &&
          dFull <= baseMs &&
          dEqual >= baseMs / 2 &&
          dEqual <= baseMs
        );
      }),
    );
  });

  it('every delay is a usable timer duration: finite, >= 0, <= cap, for any multiplier and any retry', () => {
    const options = fc.record({
      kind: fc.constantFrom<'exponential' | 'constant'>('exponential', 'constant'),
      jitter: fc.constantFrom(...jitters),
      multiplier: fc.double({ min: 1, max: 1_000, noNaN: true }),
    });
    fc.assert(
      fc.property(scale, options, retryIndex, fc.integer({ min: 0, max: 1_000_000 }), unit, ({ baseMs, capMs }, opts, n, previous, r) => {
        const d = new Backoff({ baseMs, capMs, ...opts }).delay(n, previous, () => r);
        return Number.isFinite(d) && d >= 0 && d <= capMs;
      }),
    );
  });

  it('a zero base stays zero even after the growth overflows', () => {
    const b = new Backoff({ baseMs: 0, capMs: 1_000, multiplier: 1_000, jitter: 'none' });
    assert.equal(b.ceiling(200), 0);
    assert.equal(b.delay(200, 0, Math.random), 0);
    assert.equal(new Backoff({ baseMs: 0, capMs: 1_000, jitter: 'none' }).delay(1_100, 0, Math.random), 0);
  });

  it('is reproducible with a seeded random source', () => {
    const b = new Backoff({ baseMs: 50, capMs: 5_000 });
    const run = (): number[] => {
      const random = seededRandom(7);
      return [0, 1, 2, 3, 4].map((n) => b.delay(n, 0, random));
    };
    assert.deepEqual(run(), run());
  });

  describe('options', () => {
    const invalid: [string, BackoffOptions][] = [
      ['backoff.capMs', { baseMs: 100, capMs: 99 }],
      ['backoff.capMs', { capMs: 50 }],
      ['backoff.capMs', { capMs: Infinity }],
      ['backoff.capMs', { capMs: -1 }],
      ['backoff.baseMs', { baseMs: -1 }],
      ['backoff.baseMs', { baseMs: Number.NaN }],
      ['backoff.multiplier', { multiplier: 0.99 }],
      ['backoff.multiplier', { multiplier: 0 }],
      ['backoff.multiplier', { multiplier: -2 }],
      ['backoff.multiplier', { multiplier: Number.NaN }],
      ['backoff.multiplier', { multiplier: 1_001 }],
      ['backoff.jitter', { jitter: 'random' as Jitter }],
      ['backoff.jitter', { jitter: 'FULL' as Jitter }],
      ['backoff.kind', { kind: 'linear' as 'constant' }],
    ];
    for (const [option, options] of invalid) {
      it(`refuses ${JSON.stringify(options)} with InvalidOptionError naming ${option}`, () => {
        assert.throws(
          () => new Backoff(options, 'payments-retry'),
          (e: unknown) => e instanceof InvalidOptionError && e.option === option && e.message.startsWith(`payments-retry: option "${option}"`),
        );
      });
    }

    it('accepts cap equal to base, a zero base and the bounds of the multiplier', () => {
      assert.doesNotThrow(() => new Backoff({ baseMs: 100, capMs: 100 }));
      assert.doesNotThrow(() => new Backoff({ baseMs: 0 }));
      assert.doesNotThrow(() => new Backoff({ multiplier: 1 }));
      assert.doesNotThrow(() => new Backoff({ multiplier: 1_000 }));
    });

    it('names the cap-below-base problem in the message', () => {
      assert.throws(() => new Backoff({ baseMs: 200, capMs: 100 }), /option "backoff\.capMs" must be at least backoff\.baseMs \(200\), got 100/);
    });
  });
});
