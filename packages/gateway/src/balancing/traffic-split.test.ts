import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VirtualClock, seededRandom } from '@bulwark/resilience/testing';
import { createTrafficSplit, createUpstream } from './index.js';

const clock = new VirtualClock();
const stable = createUpstream({ name: 'users', instances: ['http://stable:1'], clock });
const canary = createUpstream({ name: 'users-canary', instances: ['http://canary:1'], clock });
const noHeaders = { header: () => undefined };

/** |observed − n·p| within z standard deviations of the binomial. */
function assertBinomial(observed: number, n: number, p: number, z = 5): void {
  const sigma = Math.sqrt(n * p * (1 - p));
  assert.ok(Math.abs(observed - n * p) <= z * sigma, `observed ${observed}, expected ${n * p} ± ${(z * sigma).toFixed(1)} (${z} sigma)`);
}

describe('canary traffic split', () => {
  for (const weight of [1, 10, 25, 50, 90]) {
    it(`weight ${weight}: the canary share over 10,000 requests is within 5 sigma of the binomial`, () => {
      const split = createTrafficSplit({ stable, canary, weight, random: seededRandom(weight) });
      let random = 0;
      let sticky = 0;
      for (let i = 0; i < 10_000; i++) {
        if (split.choose(noHeaders) === 'canary') random++;
        if (split.choose({ header: () => undefined, stickyKey: `user-${i}` }) === 'canary') sticky++;
      }
      assertBinomial(random, 10_000, weight / 100);
      assertBinomial(sticky, 10_000, weight / 100);
    });
  }

  it('keeps a user on one side, and a rising weight only moves users stable → canary', () => {
    const split = createTrafficSplit({ stable, canary, weight: 10 });
    const users = Array.from({ length: 5000 }, (_, i) => `u${i}`);
    const side = new Map(users.map((u) => [u, split.choose({ header: () => undefined, stickyKey: u })]));
    for (let round = 0; round < 3; round++) for (const u of users) assert.equal(split.choose({ header: () => undefined, stickyKey: u }), side.get(u));
    split.setWeight(30);
    assert.equal(split.weight, 30);
    for (const u of users) if (side.get(u) === 'canary') assert.equal(split.choose({ header: () => undefined, stickyKey: u }), 'canary', u);
    split.setWeight(0);
    assert.ok(users.every((u) => split.choose({ header: () => undefined, stickyKey: u }) === 'stable'));
    split.setWeight(100);
    assert.ok(users.every((u) => split.choose({ header: () => undefined, stickyKey: u }) === 'canary'));
  });

  it('splits users independently for different salts', () => {
    const a = createTrafficSplit({ stable, canary, weight: 50, salt: 'exp-a' });
    const b = createTrafficSplit({ stable, canary, weight: 50, salt: 'exp-b' });
    let both = 0;
    for (let i = 0; i < 10_000; i++) {
      const req = { header: () => undefined, stickyKey: `user-${i}` };
      if (a.choose(req) === 'canary' && b.choose(req) === 'canary') both++;
    }
    assertBinomial(both, 10_000, 0.25);
  });

  it('routes by header first: the canary value forces canary, any other value forces stable', () => {
    const split = createTrafficSplit({ stable, canary, weight: 0, header: { name: 'X-Canary', value: 'true' } });
    const req = (value: string | undefined, stickyKey?: string) => ({ header: (name: string) => (name === 'x-canary' ? value : undefined), stickyKey });
    assert.equal(split.choose(req('true')), 'canary');
    assert.equal(split.choose(req('TRUE')), 'canary');
    assert.equal(split.choose(req(undefined)), 'stable');
    split.setWeight(100);
    assert.equal(split.choose(req('false', 'u1')), 'stable');
    assert.equal(split.upstreamFor(req('true')), canary);
    assert.equal(split.upstreamFor(req('no')), stable);
  });

  it('rejects a weight outside 0..100', () => {
    assert.throws(() => createTrafficSplit({ stable, canary, weight: 101 }), /weight/);
    assert.throws(() => createTrafficSplit({ stable, canary, weight: Number.NaN }), /weight/);
  });
});
