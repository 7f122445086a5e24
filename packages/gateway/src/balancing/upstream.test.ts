import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VirtualClock, seededRandom } from '@bulwark/resilience/testing';
import type { DiscoverySource } from '../discovery/types.js';
import { createUpstream, type UpstreamEvent, type UpstreamOptions } from './index.js';
import type { Instance, Lease } from './types.js';

const urls = (n: number): string[] => Array.from({ length: n }, (_, i) => `http://10.0.0.${i + 1}:8080`);

function upstream(options: Partial<UpstreamOptions> & { instances?: UpstreamOptions['instances'] }) {
  const clock = (options.clock as VirtualClock | undefined) ?? new VirtualClock();
  const events: UpstreamEvent[] = [];
  const u = createUpstream({ name: 'svc', instances: urls(3), clock, onEvent: (e) => events.push(e), ...options });
  return { u, clock, events };
}

function counts(picks: (Lease | undefined)[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const lease of picks) {
    const id = lease?.instance.id ?? 'none';
    out[id] = (out[id] ?? 0) + 1;
  }
  return out;
}

function pickAndFinish(u: ReturnType<typeof createUpstream>, n: number, outcome: (id: string) => 'success' | 'server-error' | 'gateway-error' = () => 'success'): Record<string, number> {
  const picks: (Lease | undefined)[] = [];
  for (let i = 0; i < n; i++) {
    const lease = u.pick();
    picks.push(lease);
    lease?.done(outcome(lease.instance.id), 1);
  }
  return counts(picks);
}

/** A discovery source the test drives. */
function manualDiscovery(initial: Instance[]): DiscoverySource & { set(list: Instance[]): void } {
  let push: ((list: readonly Instance[]) => void) | undefined;
  return {
    start(update) {
      push = update;
      update(initial);
      return Promise.resolve();
    },
    set: (list) => push?.(list),
    close: () => Promise.resolve(),
  };
}
const inst = (id: string): Instance => ({ id, url: `http://${id}.internal:80`, weight: 1, metadata: {} });

describe('createUpstream: options', () => {
  it('rejects invalid options', () => {
    assert.throws(() => createUpstream({ name: '', instances: [] }), /name/);
    assert.throws(() => createUpstream({ name: 's' }), /exactly one/);
    assert.throws(() => createUpstream({ name: 's', instances: ['ftp://x'] }), /http/);
    assert.throws(() => createUpstream({ name: 's', instances: [{ url: 'http://a', weight: 0 }] }), /weight/);
    assert.throws(() => createUpstream({ name: 's', instances: ['http://a', 'http://a/'] }), /twice/);
    assert.throws(() => createUpstream({ name: 's', instances: ['http://a'], shardSize: 0 }), /shardSize/);
    assert.throws(() => createUpstream({ name: 's', instances: ['http://a'], outlierEjection: { maxEjectionPercent: 101 } }), /maxEjectionPercent/);
  });

  it('normalises static URLs to origins and reports status', async () => {
    const { u } = upstream({ instances: ['http://127.0.0.1:3001/', { url: 'http://127.0.0.1:3002/x', id: 'b', weight: 2, metadata: { zone: 'a' } }] });
    await u.ready();
    assert.deepEqual(
      u.instances().map((i) => [i.id, i.url, i.weight, i.metadata]),
      [
        ['http://127.0.0.1:3001', 'http://127.0.0.1:3001', 1, {}],
        ['b', 'http://127.0.0.1:3002', 2, { zone: 'a' }],
      ],
    );
    const lease = u.pick()!;
    assert.equal(u.status().find((s) => s.id === lease.instance.id)?.outstanding, 1);
    lease.done('success', 12);
    lease.done('success', 12); // a second done is ignored
    const s = u.status().find((x) => x.id === lease.instance.id)!;
    assert.deepEqual({ ...s }, { id: s.id, url: s.url, health: 'unknown', ejected: false, ejectedUntil: undefined, ejections: 0, outstanding: 0, latencyEwmaMs: 12, consecutiveFailures: 0 });
    await u.close();
  });
});

describe('round-robin', () => {
  it('rotates evenly over equal weights', () => {
    const { u } = upstream({});
    const order = Array.from({ length: 6 }, () => u.pick()!.instance.id);
    assert.deepEqual(order, [...urls(3), ...urls(3)]);
  });

  it('honours weights exactly and spreads them (smooth weighted round-robin)', () => {
    const { u } = upstream({ instances: [{ url: 'http://a', weight: 1 }, { url: 'http://b', weight: 2 }, { url: 'http://c', weight: 3 }] });
    const seq = Array.from({ length: 600 }, () => u.pick()!.instance.id);
    assert.deepEqual(counts(seq.map((id) => ({ instance: { id } }) as Lease)), { 'http://a': 100, 'http://b': 200, 'http://c': 300 });
    // smooth: c never gets three in a row with weights 1:2:3 (plain WRR would give c,c,c,b,b,a)
    for (let i = 0; i + 2 < seq.length; i++) assert.ok(!(seq[i] === seq[i + 1] && seq[i] === seq[i + 2]), `three in a row at ${i}`);
  });

  it('honours exclude when it can, and ignores it when it cannot', () => {
    const { u } = upstream({});
    const [a, b, c] = urls(3) as [string, string, string];
    for (let i = 0; i < 10; i++) assert.equal(u.pick({ exclude: new Set([a, b]) })!.instance.id, c);
    assert.ok(u.pick({ exclude: new Set([a, b, c]) }) !== undefined);
  });

  it('returns undefined without instances', async () => {
    const { u } = upstream({ instances: [] });
    await u.ready();
    assert.equal(u.pick(), undefined);
  });
});

describe('least-outstanding', () => {
  it('sends each request to the instance with the fewest in flight', () => {
    const { u } = upstream({ balancer: 'least-outstanding' });
    const held = Array.from({ length: 3 }, () => u.pick()!);
    assert.equal(new Set(held.map((l) => l.instance.id)).size, 3, 'ties spread');
    held[1]!.done('success', 1);
    assert.equal(u.pick()!.instance.id, held[1]!.instance.id);
    // with weights: outstanding per unit of weight
    const w = upstream({ balancer: 'least-outstanding', instances: [{ url: 'http://a', weight: 1 }, { url: 'http://b', weight: 3 }] }).u;
    const picked = counts(Array.from({ length: 8 }, () => w.pick()));
    assert.deepEqual(picked, { 'http://a': 2, 'http://b': 6 });
  });
});

describe('power of two choices', () => {
  it('prefers the instance with the lower latency EWMA × outstanding', () => {
    const { u } = upstream({ balancer: 'p2c', random: seededRandom(7) });
    const slow = urls(3)[0]!;
    const picks: Record<string, number> = {};
    for (let i = 0; i < 3000; i++) {
      const lease = u.pick()!;
      picks[lease.instance.id] = (picks[lease.instance.id] ?? 0) + 1;
      lease.done('success', lease.instance.id === slow ? 100 : 5);
    }
    assert.ok((picks[slow] ?? 0) < 30, `slow got ${picks[slow]}`);
    assert.ok(u.status().find((s) => s.id === slow)!.latencyEwmaMs! > 50);
  });

  it('balances by outstanding when latencies are equal, and skips excluded instances', () => {
    const { u } = upstream({ balancer: 'p2c', random: seededRandom(1), instances: urls(4) });
    const held: Lease[] = [];
    for (let i = 0; i < 400; i++) held.push(u.pick()!);
    for (const s of u.status()) assert.ok(s.outstanding >= 90 && s.outstanding <= 110, `${s.id}: ${s.outstanding}`);
    const only = urls(4)[3]!;
    for (let i = 0; i < 20; i++) assert.equal(u.pick({ exclude: new Set(urls(3)) })!.instance.id, only);
  });
});

describe('passive outlier ejection', () => {
  it('ejects after the configured consecutive failures; a success resets the count', async () => {
    const { u, clock, events } = upstream({ outlierEjection: { consecutiveErrors: 3, baseEjectionMs: 1000 } });
    const bad = urls(3)[0]!;
    let badFailures = 0;
    pickAndFinish(u, 6, (id) => (id === bad ? (badFailures++ === 0 ? 'server-error' : 'success') : 'success'));
    assert.equal(u.status()[0]!.consecutiveFailures, 0);
    const got = pickAndFinish(u, 30, (id) => (id === bad ? 'gateway-error' : 'success'));
    assert.equal(got[bad], 3, 'exactly 3 attempts before ejection');
    assert.equal(u.status()[0]!.ejected, true);
    assert.deepEqual(events.filter((e) => e.type === 'ejected'), [{ type: 'ejected', service: 'svc', id: bad, ejections: 1, durationMs: 1000 }]);
    await clock.advance(999);
    assert.equal(u.status()[0]!.ejected, true);
    await clock.advance(1);
    assert.equal(u.status()[0]!.ejected, false);
    assert.ok(events.some((e) => e.type === 'returned' && e.id === bad));
  });

  it('ejection time grows with repeated ejections, up to the maximum', async () => {
    const { u, clock, events } = upstream({ instances: urls(2), outlierEjection: { consecutiveErrors: 2, baseEjectionMs: 1000, maxEjectionMs: 2500 } });
    const bad = urls(2)[0]!;
    for (const expected of [1000, 2000, 2500, 2500]) {
      pickAndFinish(u, 4, (id) => (id === bad ? 'server-error' : 'success'));
      const last = events.filter((e) => e.type === 'ejected').at(-1);
      assert.equal(last?.type === 'ejected' ? last.durationMs : undefined, expected);
      await clock.advance(expected);
    }
  });

  it('never ejects more than maxEjectionPercent, and keeps serving', async () => {
    const { u, clock, events } = upstream({ instances: urls(5), outlierEjection: { consecutiveErrors: 2, baseEjectionMs: 1000, maxEjectionPercent: 50 } });
    const got = pickAndFinish(u, 500, () => 'server-error');
    assert.equal(got.none, undefined, 'always an instance');
    assert.equal(u.status().filter((s) => s.ejected).length, 2, 'floor(5 × 50%) = 2');
    assert.ok(events.some((e) => e.type === 'ejection-refused' && e.allowed === 2));
    await clock.advance(1000);
    pickAndFinish(u, 50, () => 'server-error');
    assert.equal(u.status().filter((s) => s.ejected).length, 2);
  });

  it('can count only gateway errors, or be turned off', () => {
    const only = upstream({ outlierEjection: { consecutiveErrors: 1, countServerErrors: false } }).u;
    pickAndFinish(only, 30, () => 'server-error');
    assert.equal(only.status().filter((s) => s.ejected).length, 0);
    pickAndFinish(only, 1, () => 'gateway-error');
    assert.equal(only.status().filter((s) => s.ejected).length, 1);
    const off = upstream({ outlierEjection: false }).u;
    pickAndFinish(off, 30, () => 'gateway-error');
    assert.equal(off.status().filter((s) => s.ejected).length, 0);
  });
});

describe('membership changes', () => {
  it('keeps an instance’s state across discovery updates, and frees the ejection budget when an ejected one leaves', async () => {
    const discovery = manualDiscovery([inst('a'), inst('b'), inst('c'), inst('d')]);
    const u = createUpstream({ name: 'svc', discovery, clock: new VirtualClock(), outlierEjection: { consecutiveErrors: 1, maxEjectionPercent: 25 } });
    await u.ready();
    const lease = u.pick()!;
    assert.equal(lease.instance.id, 'a');
    lease.done('server-error', 5);
    assert.equal(u.status()[0]!.ejected, true);
    discovery.set([inst('a'), inst('b'), inst('c'), inst('d'), inst('e')]);
    assert.deepEqual(u.status().map((s) => [s.id, s.ejected]), [['a', true], ['b', false], ['c', false], ['d', false], ['e', false]]);
    // budget: floor(5 × 25%) = 1, spent on a
    u.pick({ exclude: new Set(['a', 'c', 'd', 'e']) })!.done('server-error', 5);
    assert.equal(u.status().find((s) => s.id === 'b')!.ejected, false);
    discovery.set([inst('b'), inst('c'), inst('d'), inst('e')]);
    u.pick({ exclude: new Set(['c', 'd', 'e']) })!.done('server-error', 5);
    assert.equal(u.status().find((s) => s.id === 'b')!.ejected, true, 'a left, so its ejection no longer counts');
    lease.done('success', 1); // a late report for a removed instance is harmless
    await u.close();
  });
});

describe('active health checks on a virtual clock', () => {
  it('applies the thresholds, checks only on the interval, and skips unhealthy instances', async () => {
    const clock = new VirtualClock();
    const verdict = new Map<string, boolean>(urls(3).map((u) => [u, true]));
    let checks = 0;
    const { u, events } = upstream({
      clock,
      healthCheck: {
        intervalMs: 1000,
        healthyThreshold: 2,
        unhealthyThreshold: 3,
        check: (instance) => {
          checks++;
          return Promise.resolve(verdict.get(instance.id) ?? false);
        },
      },
    });
    await u.ready();
    assert.equal(checks, 3);
    assert.deepEqual(u.status().map((s) => s.health), ['healthy', 'healthy', 'healthy']);
    const sick = urls(3)[1]!;
    verdict.set(sick, false);
    await clock.advance(999);
    assert.equal(checks, 3, 'no check before the interval');
    for (let round = 1; round <= 3; round++) {
      await clock.advance(1000 - (round === 1 ? 999 : 0));
      const health = u.status()[1]!.health;
      assert.equal(health, round < 3 ? 'healthy' : 'unhealthy', `after ${round} failed checks`);
    }
    assert.equal(checks, 12);
    assert.equal(pickAndFinish(u, 20)[sick], undefined, 'unhealthy instance gets nothing');
    verdict.set(sick, true);
    await clock.advance(1000);
    assert.equal(u.status()[1]!.health, 'unhealthy', 'one pass is below the healthy threshold');
    await clock.advance(1000);
    assert.equal(u.status()[1]!.health, 'healthy');
    assert.deepEqual(
      events.filter((e) => e.type === 'health' && e.id === sick).map((e) => (e.type === 'health' ? e.health : '')),
      ['healthy', 'unhealthy', 'healthy'],
    );
    await u.close();
    await clock.advance(10_000);
    assert.equal(checks, 18, 'no checks after close');
  });

  it('fails a check that exceeds the timeout', async () => {
    const clock = new VirtualClock();
    const { u } = upstream({ clock, instances: urls(1), healthCheck: { timeoutMs: 500, check: () => new Promise<boolean>(() => undefined) } });
    const ready = u.ready();
    await clock.advance(500);
    await ready;
    assert.equal(u.status()[0]!.health, 'unhealthy');
    await u.close();
  });
});

describe('shuffle sharding', () => {
  it('maps a tenant deterministically to shardSize instances and picks only within them', () => {
    const { u } = upstream({ instances: urls(8), shardSize: 3 });
    const shard = u.shardOf('tenant-a');
    assert.equal(shard.length, 3);
    assert.deepEqual(u.shardOf('tenant-a'), shard);
    const again = createUpstream({ name: 'svc', instances: urls(8), shardSize: 3, clock: new VirtualClock() });
    assert.deepEqual(again.shardOf('tenant-a'), shard, 'same in another gateway process');
    const got = counts(Array.from({ length: 300 }, () => u.pick({ tenant: 'tenant-a' })));
    assert.deepEqual(Object.keys(got).sort(), [...shard].sort());
    for (const id of shard) assert.equal(got[id], 100);
    assert.equal(Object.values(counts(Array.from({ length: 80 }, () => u.pick()))).length, 8, 'no tenant: every instance');
  });

  it('keeps a tenant’s shard when an instance outside it leaves (rendezvous hashing)', async () => {
    const all = Array.from({ length: 10 }, (_, i) => inst(`i${i}`));
    const discovery = manualDiscovery(all);
    const u = createUpstream({ name: 'svc', discovery, shardSize: 3, clock: new VirtualClock() });
    await u.ready();
    const tenants = Array.from({ length: 200 }, (_, i) => `t${i}`);
    const before = new Map(tenants.map((t) => [t, u.shardOf(t)]));
    discovery.set(all.filter((i) => i.id !== 'i4'));
    for (const t of tenants) {
      const was = before.get(t)!;
      if (!was.includes('i4')) assert.deepEqual(u.shardOf(t), was, t);
      else assert.deepEqual(u.shardOf(t).filter((id) => was.includes(id)).length, 2, t);
    }
  });

  it('falls back to the pool when the whole shard is ejected (or answers none with shardFallback: none)', () => {
    for (const fallback of ['pool', 'none'] as const) {
      const { u } = upstream({ instances: urls(6), shardSize: 2, shardFallback: fallback, outlierEjection: { consecutiveErrors: 1, maxEjectionPercent: 100 } });
      const shard = u.shardOf('t1');
      for (let i = 0; i < 2; i++) u.pick({ tenant: 't1' })?.done('gateway-error', 1);
      assert.deepEqual(u.status().filter((s) => s.ejected).map((s) => s.id).sort(), [...shard].sort());
      const lease = u.pick({ tenant: 't1' });
      if (fallback === 'pool') assert.ok(lease !== undefined && !shard.includes(lease.instance.id));
      else assert.equal(lease, undefined);
    }
  });

  it('tenant overlap matches the hypergeometric distribution (n = 16, k = 4)', () => {
    const n = 16;
    const k = 4;
    const { u } = upstream({ instances: urls(n), shardSize: k });
    const choose = (a: number, b: number): number => {
      let r = 1;
      for (let i = 1; i <= b; i++) r = (r * (a - b + i)) / i;
      return r;
    };
    const p = Array.from({ length: k + 1 }, (_, j) => (choose(k, j) * choose(n - k, k - j)) / choose(n, k));
    const pairs = 20_000;
    const observed = new Array<number>(k + 1).fill(0);
    const perInstance = new Map<string, number>();
    let total = 0;
    for (let i = 0; i < pairs; i++) {
      // Disjoint pairs, so the samples are independent.
      const a = new Set(u.shardOf(`tenant-${2 * i}`));
      const b = u.shardOf(`tenant-${2 * i + 1}`);
      const overlap = b.filter((id) => a.has(id)).length;
      observed[overlap]!++;
      total += overlap;
      for (const id of [...a, ...b]) perInstance.set(id, (perInstance.get(id) ?? 0) + 1);
    }
    for (let j = 0; j <= k; j++) {
      const expected = pairs * p[j]!;
      const sigma = Math.sqrt(pairs * p[j]! * (1 - p[j]!));
      assert.ok(Math.abs(observed[j]! - expected) <= 5 * sigma + 1, `overlap ${j}: observed ${observed[j]}, expected ${expected.toFixed(1)} ± ${(5 * sigma).toFixed(1)}`);
    }
    // mean overlap k²/n with variance k·(k/n)·((n−k)/n)·((n−k)/(n−1))
    const variance = (k * (k / n) * ((n - k) / n) * (n - k)) / (n - 1);
    assert.ok(Math.abs(total / pairs - (k * k) / n) <= 5 * Math.sqrt(variance / pairs), `mean overlap ${total / pairs}`);
    // every instance carries about k/n of the tenants
    const tenants = 2 * pairs;
    const share = k / n;
    for (const [id, c] of perInstance) assert.ok(Math.abs(c - tenants * share) <= 5 * Math.sqrt(tenants * share * (1 - share)), `${id}: ${c}`);
    // a noisy tenant shares its whole shard with about 1 / C(n, k) of the others
    assert.ok(observed[k]! <= pairs / choose(n, k) + 5 * Math.sqrt(pairs / choose(n, k)) + 1);
  });
});
