import { strict as assert } from 'node:assert';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, it } from 'node:test';
import { FAULTS_CHANNEL, FaultConfigError, FaultInjector, FaultOptionError, sampleLatency, type FaultEvents, type FaultTarget, type LatencySpec } from './index.js';
import { ruleRandom } from './random.js';

const toPayments: FaultTarget = { direction: 'inbound', module: 'payments', method: 'POST', path: '/api/payments/charges' };
const toOrders: FaultTarget = { direction: 'inbound', module: 'orders', method: 'GET', path: '/api/orders/1' };

/** Which of `n` requests like `target` rule `id` was applied to (as the failure, or as a latency). */
function decisions(injector: FaultInjector, target: FaultTarget, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const d = injector.decide(target);
    out.push(d === undefined ? '-' : `${d.fault?.rule.id ?? ''}@${d.delayMs.toFixed(6)}`);
  }
  return out;
}

describe('FaultInjector', () => {
  it('matches by direction, module, route and dependency (all given fields)', () => {
    const injector = new FaultInjector({
      rules: [
        { id: 'in-pay', kind: 'error', direction: 'inbound', match: { module: 'payments' } },
        { id: 'route', kind: 'error', direction: 'inbound', match: { route: 'GET /api/orders/*' } },
        { id: 'out', kind: 'error', direction: 'outbound', match: { module: 'orders', dependency: 'payments' } },
      ],
    });
    assert.equal(injector.decide(toPayments)?.fault?.rule.id, 'in-pay');
    assert.equal(injector.decide(toOrders)?.fault?.rule.id, 'route');
    assert.equal(injector.decide({ ...toOrders, method: 'POST' }), undefined);
    assert.equal(injector.decide({ direction: 'outbound', module: 'orders', method: 'POST', path: '/charges', dependencies: ['payments', 'orders-payments'] })?.fault?.rule.id, 'out');
    assert.equal(injector.decide({ direction: 'outbound', module: 'productPage', method: 'POST', path: '/charges', dependencies: ['payments'] }), undefined);
    assert.equal(injector.decide({ direction: 'outbound', module: 'orders', method: 'GET', path: '/products', dependencies: ['catalog'] }), undefined);
    assert.deepEqual(injector.stats('in-pay'), { matched: 1, injected: 1 });
    assert.deepEqual(injector.stats('route'), { matched: 1, injected: 1 }, 'a POST does not match GET /api/orders/*');
  });

  it('applies a partition to both directions; an empty match matches its whole direction', () => {
    const injector = new FaultInjector({ rules: [{ id: 'cut', kind: 'partition', match: { module: 'payments' } }] });
    assert.equal(injector.decide(toPayments)?.fault?.rule.kind, 'partition');
    assert.equal(injector.decide({ direction: 'outbound', module: 'payments', method: 'GET', path: '/x', dependencies: ['bank'] })?.fault?.rule.kind, 'partition');
    assert.equal(injector.decide(toOrders), undefined);
    injector.replace({ rules: [{ id: 'all-out', kind: 'reset', direction: 'outbound' }] });
    assert.equal(injector.decide(toPayments), undefined);
    assert.equal(injector.decide({ direction: 'outbound', method: 'GET', path: '/' })?.fault?.rule.id, 'all-out');
  });

  it('adds up latencies; the first firing failure wins and shadows later ones', () => {
    const injector = new FaultInjector({
      rules: [
        { id: 'slow', kind: 'latency', direction: 'inbound', latency: { fixedMs: 30 } },
        { id: 'slower', kind: 'latency', direction: 'inbound', match: { module: 'payments' }, latency: { fixedMs: 20 } },
        { id: 'fail', kind: 'error', direction: 'inbound', match: { module: 'payments' }, status: 500, latency: { fixedMs: 5 } },
        { id: 'shadowed', kind: 'reset', direction: 'inbound' },
      ],
    });
    const d = injector.decide(toPayments);
    assert.equal(d?.delayMs, 55);
    assert.equal(d?.fault?.rule.id, 'fail');
    assert.deepEqual(injector.stats('shadowed'), { matched: 1, injected: 0 });
    const other = injector.decide(toOrders);
    assert.equal(other?.delayMs, 30);
    assert.equal(other?.fault?.rule.id, 'shadowed');
  });

  it('is deterministic per (seed, rule id): same seed same decisions, and other rules never shift them', () => {
    const rule = { id: 'flaky', kind: 'error', direction: 'inbound', match: { module: 'payments' }, probability: 0.3, latency: { distribution: 'exponential', meanMs: 50 } } as const;
    const alone = decisions(new FaultInjector({ seed: 42, rules: [rule] }), toPayments, 300);
    assert.deepEqual(decisions(new FaultInjector({ seed: 42, rules: [rule] }), toPayments, 300), alone, 'same seed, same decisions');
    assert.notDeepEqual(decisions(new FaultInjector({ seed: 43, rules: [rule] }), toPayments, 300), alone, 'another seed, other decisions');

    // Other rules before and after it, on the same traffic and on other traffic, with their own draws.
    const crowded = new FaultInjector({
      seed: 42,
      rules: [
        { id: 'elsewhere', kind: 'reset', direction: 'inbound', match: { module: 'orders' }, probability: 0.5 },
        rule,
        { id: 'after', kind: 'hang', direction: 'inbound', probability: 0.7 },
      ],
    });
    const mine: boolean[] = [];
    const delays: number[] = [];
    const seen: string[] = [];
    crowded.on('injected', (e) => {
      if (e.rule === 'flaky') delays.push(e.delayMs ?? Number.NaN);
      seen.push(e.rule);
    });
    for (let i = 0; i < 300; i++) {
      crowded.decide(toOrders); // traffic that only the other rules see
      mine.push(crowded.decide(toPayments)?.fault?.rule.id === 'flaky');
    }
    assert.deepEqual(mine, alone.map((d) => d.startsWith('flaky@')));
    assert.deepEqual(
      delays.map((ms) => ms.toFixed(6)),
      alone.filter((d) => d.startsWith('flaky@')).map((d) => d.slice(6)),
    );
    assert.ok(seen.includes('elsewhere') && seen.includes('after'));
    assert.deepEqual(crowded.stats('flaky'), { matched: 300, injected: mine.filter(Boolean).length });
  });

  it('fires with the rule probability, within a statistical bound, for several seeds', () => {
    const n = 20_000;
    for (const seed of [1, 2, 3, 1_000_003]) {
      for (const p of [0.01, 0.3, 0.75]) {
        const injector = new FaultInjector({ seed, rules: [{ id: `p${p}`, kind: 'error', direction: 'inbound', probability: p }] });
        let hits = 0;
        for (let i = 0; i < n; i++) if (injector.decide(toOrders) !== undefined) hits++;
        const sd = Math.sqrt(n * p * (1 - p));
        assert.ok(Math.abs(hits - n * p) < 5 * sd, `seed ${seed}, p ${p}: ${hits} of ${n}, expected ${n * p} ± ${Math.round(5 * sd)}`);
      }
    }
    const never = new FaultInjector({ rules: [{ id: 'off', kind: 'error', direction: 'inbound', probability: 0 }] });
    for (let i = 0; i < 1_000; i++) assert.equal(never.decide(toOrders), undefined);
    assert.deepEqual(never.stats('off'), { matched: 1_000, injected: 0 });
  });

  it('draws latencies from their distributions (checked on many seeded draws)', () => {
    const draws = (spec: LatencySpec, n = 40_000) => {
      const random = ruleRandom(7, 'latency-test', 'sample');
      return Array.from({ length: n }, () => sampleLatency(spec, random)).sort((a, b) => a - b);
    };
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const median = (xs: number[]) => xs[Math.floor(xs.length / 2)] as number;
    const near = (actual: number, expected: number, tolerance: number, what: string) => assert.ok(Math.abs(actual - expected) <= tolerance * expected, `${what}: ${actual}, expected ${expected} ± ${tolerance * 100}%`);

    assert.deepEqual(new Set(draws({ fixedMs: 12 }, 100)), new Set([12]));
    const uniform = draws({ distribution: 'uniform', minMs: 10, maxMs: 30 });
    assert.ok((uniform[0] as number) >= 10 && (uniform.at(-1) as number) <= 30);
    near(mean(uniform), 20, 0.02, 'uniform mean');
    near(mean(draws({ distribution: 'exponential', meanMs: 50 })), 50, 0.03, 'exponential mean');
    const lognormal = draws({ distribution: 'lognormal', medianMs: 80, sigma: 0.5 });
    near(median(lognormal), 80, 0.03, 'lognormal median');
    near(lognormal[Math.floor(lognormal.length * 0.8413)] as number, 80 * Math.exp(0.5), 0.04, 'lognormal 84th percentile (median x e^sigma)');
    const pareto = draws({ distribution: 'pareto', scaleMs: 10, shape: 2 });
    assert.ok((pareto[0] as number) >= 10);
    near(median(pareto), 10 * Math.SQRT2, 0.03, 'pareto median (scale x 2^(1/shape))');
    assert.ok((draws({ distribution: 'pareto', scaleMs: 100_000, shape: 0.05 }, 1_000).at(-1) as number) <= 600_000, 'heavy tails are capped at 10 minutes');
  });

  it('replaces the whole set atomically: a refused set changes nothing', () => {
    const injector = new FaultInjector({ seed: 3, rules: [{ id: 'keep', kind: 'error', direction: 'inbound' }] });
    injector.decide(toOrders);
    assert.throws(
      () => injector.replace({ seed: 99, rules: [{ id: 'new', kind: 'reset', direction: 'inbound' }, { id: 'broken', kind: 'latency', direction: 'inbound', latency: { fixedMs: -3 } }] }),
      (e: unknown) => e instanceof FaultConfigError && e.field === 'rules[1].latency.fixedMs',
    );
    assert.equal(injector.seed, 3);
    assert.deepEqual(injector.rules().map((r) => r.id), ['keep']);
    assert.deepEqual(injector.stats('keep'), { matched: 1, injected: 1 });
    injector.replace({ seed: 99, rules: [{ id: 'new', kind: 'reset', direction: 'inbound' }] });
    assert.equal(injector.seed, 99);
    assert.deepEqual(injector.snapshot(), { seed: 99, rules: [{ id: 'new', kind: 'reset', direction: 'inbound', match: {}, probability: 1, stats: { matched: 0, injected: 0 } }] });
  });

  it('set() creates or replaces in place with fresh counters; remove and clear; events say what changed', () => {
    const injector = new FaultInjector({ modules: ['orders', 'payments'] });
    const changes: FaultEvents['changed'][] = [];
    injector.on('changed', (e) => changes.push(e));
    injector.set('a', { kind: 'error', direction: 'inbound' });
    injector.set('b', { kind: 'reset', direction: 'inbound', match: { module: 'payments' } });
    injector.decide(toPayments);
    assert.deepEqual(injector.stats('a'), { matched: 1, injected: 1 });
    injector.set('a', { kind: 'error', direction: 'inbound', status: 500 });
    assert.deepEqual(injector.rules().map((r) => `${r.id}:${r.status ?? '-'}`), ['a:500', 'b:-'], 'replaced in place, order kept');
    assert.deepEqual(injector.stats('a'), { matched: 0, injected: 0 });
    assert.throws(() => injector.set('c', { kind: 'error', direction: 'inbound', match: { module: 'payment' } }), (e: unknown) => e instanceof FaultConfigError && e.field === 'match.module');
    assert.equal(injector.remove('a'), true);
    assert.equal(injector.remove('a'), false);
    injector.clear();
    assert.equal(injector.active, false);
    assert.equal(injector.decide(toPayments), undefined);
    assert.deepEqual(changes.map((c) => `${c.change}:${c.id ?? ''}:${c.rules}`), ['set:a:1', 'set:b:2', 'set:a:2', 'remove:a:1', 'clear::0']);
    assert.throws(() => new FaultInjector({ seed: -1 }), FaultOptionError);
  });

  it('reports each injection to its listeners and on the diagnostics channel; a throwing listener changes nothing', () => {
    const injector = new FaultInjector({ rules: [{ id: 'slow', kind: 'latency', direction: 'outbound', match: { dependency: 'payments' }, latency: { fixedMs: 7 } }] });
    const events: FaultEvents['injected'][] = [];
    const published: unknown[] = [];
    const onMessage = (m: unknown) => published.push(m);
    subscribe(FAULTS_CHANNEL, onMessage);
    const off = injector.on('injected', (e) => events.push(e));
    injector.on('injected', () => {
      throw new Error('listener bug');
    });
    const warnings: unknown[] = [];
    const onWarning = (w: unknown) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const d = injector.decide({ direction: 'outbound', module: 'orders', method: 'POST', path: '/charges', dependencies: ['payments', 'orders-payments'] });
      assert.equal(d?.delayMs, 7);
      off();
      injector.decide({ direction: 'outbound', module: 'orders', method: 'POST', path: '/charges', dependencies: ['payments'] });
    } finally {
      unsubscribe(FAULTS_CHANNEL, onMessage);
      process.removeListener('warning', onWarning);
    }
    assert.deepEqual(events, [{ rule: 'slow', kind: 'latency', direction: 'outbound', module: 'orders', dependency: 'payments', method: 'POST', path: '/charges', delayMs: 7, status: undefined }]);
    assert.equal(published.length, 2);
  });

  it('lifts held faults when their rule goes: "removed" on removal or replacement, "closed" on close', async () => {
    const injector = new FaultInjector({ rules: [{ id: 'h', kind: 'hang', direction: 'inbound' }, { id: 'p', kind: 'partition', match: { module: 'x' } }] });
    const lifted: string[] = [];
    injector.decide(toOrders)?.fault?.onLift((r) => lifted.push(`h1:${r}`));
    const off = injector.decide(toOrders)?.fault?.onLift((r) => lifted.push(`h2:${r}`));
    off?.();
    const held = injector.decide(toOrders)?.fault;
    injector.set('h', { kind: 'hang', direction: 'inbound', match: { module: 'orders' }, hangMs: 5 });
    assert.deepEqual(lifted, ['h1:removed']);
    held?.onLift((r) => lifted.push(`late:${r}`)); // registered after the lift: told at once
    await new Promise((resolve) => setImmediate(resolve));
    injector.decide({ ...toOrders, module: 'x' })?.fault?.onLift((r) => lifted.push(`p:${r}`));
    injector.close();
    assert.deepEqual(lifted, ['h1:removed', 'late:removed', 'p:closed']);
    assert.equal(injector.active, false);
  });
});
