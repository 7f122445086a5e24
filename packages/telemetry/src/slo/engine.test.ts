/**
 * The engine against synthetic event streams with answers worked out by hand.
 *
 * How the streams are laid out, so the figures below are exact: traffic is
 * steady, recorded once per step (a second or a minute) at the step's
 * midpoint, and the engine is evaluated on step boundaries. A window
 * `(now - w, now]` then holds exactly `w / step` records, and the engine's
 * pro-rata share of the bucket the window starts in is exact too (the share
 * of the bucket's time inside the window equals the share of its records).
 *
 * Objective 0.999 throughout, so the error budget is 0.001 of events and a
 * burn rate is `error ratio / 0.001`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VirtualClock } from '@bulwark/resilience/testing';
import { Registry, Counter, Histogram } from 'prom-client';
import { createSloEngine, type SloEngine } from './engine.js';
import type { SloAlert } from './alert.js';
import { isInvalidRecordError, isSloNotFoundError, isSloSpecError } from './errors.js';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const spec = { name: 'checkout', service: 'orders', objective: 0.999 };

interface Harness {
  clock: VirtualClock;
  engine: SloEngine;
  alerts: SloAlert[];
  /** `steps` steps of `stepMs`, each recording `total` events of which `bad` failed, then evaluating; `each` runs after every evaluation. */
  run(steps: number, stepMs: number, total: number, bad: number, each?: () => void): Promise<void>;
}

function harness(options: { evaluateEveryMs?: number } = {}): Harness {
  const clock = new VirtualClock(0);
  const engine = createSloEngine({ slos: [spec], clock, evaluateEveryMs: options.evaluateEveryMs ?? 0 });
  const alerts: SloAlert[] = [];
  engine.on('alert', (a) => alerts.push(a));
  const checkout = engine.slo('checkout');
  return {
    clock,
    engine,
    alerts,
    async run(steps, stepMs, total, bad, each) {
      for (let i = 0; i < steps; i++) {
        await clock.advance(stepMs / 2);
        checkout.record(total - bad, total);
        await clock.advance(stepMs / 2);
        if (options.evaluateEveryMs === undefined) engine.evaluate();
        each?.();
      }
    },
  };
}

/** 100 events a second, as 6 000 a minute. */
const PER_SECOND = 100;
const PER_MINUTE = 60 * PER_SECOND;

describe('SLO engine: a full outage at 99.9%', () => {
  it('fires the 14.4x page 52 s into the outage (the 1h window crosses 14.4x at 0.864 min) and resolves 296 s after recovery, when the 5m window clears', async () => {
    const h = harness();
    // Three clean days, so every window up to 3d is full of good traffic.
    await h.run(3 * 24 * 60, MINUTE, PER_MINUTE, 0);
    assert.equal(h.alerts.length, 0);
    const t0 = h.clock.now();
    assert.equal(t0, 3 * DAY);

    // Full outage, second by second. x seconds in, the 1h window holds 3 600 s of
    // traffic of which x s failed: burn = (x / 3600) / 0.001, above 14.4 once
    // x > 14.4 * 0.001 * 3600 s = 51.84 s (0.864 min), so first at x = 52 s.
    // The 5m window crossed 14.4x long before: at 14.4 * 0.001 * 300 s = 4.32 s.
    let firedAt: number | undefined;
    await h.run(120, SECOND, PER_SECOND, PER_SECOND, () => {
      if (firedAt === undefined && h.engine.alerts().length > 0) firedAt = h.clock.now();
    });
    assert.equal(firedAt, t0 + 52 * SECOND, 'the page fires at the first evaluation past 51.84 s');
    const page = h.alerts[0]!;
    assert.equal(h.alerts.length, 1);
    assert.equal(page.severity, 'page');
    assert.equal(page.state, 'firing');
    const fast = page.conditions.find((c) => c.longWindow === '1h')!;
    assert.equal(fast.met, true);
    approx(fast.longBurnRate, 52 / 3600 / 0.001, 'burn over 1h at the firing: 14.44x');
    approx(fast.shortBurnRate, 52 / 300 / 0.001, 'burn over 5m at the firing: 173.3x');
    const slow = page.conditions.find((c) => c.longWindow === '6h')!;
    assert.equal(slow.met, false, '6h burn is 52/21600/0.001 = 2.4x, under 6x');

    // Recovery at t1 = t0 + 120 s. y seconds later the 5m window holds 300 - y
    // failed seconds: burn = ((300 - y) / 300) / 0.001 <= 14.4 once
    // 300 - y <= 4.32, i.e. y >= 295.68 s, so first at y = 296 s. The 1h window
    // still burns 120 / 3600 / 0.001 = 33.3x then: the short window resolves the page.
    const t1 = h.clock.now();
    assert.equal(t1, t0 + 120 * SECOND);
    let resolvedAt: number | undefined;
    await h.run(400, SECOND, PER_SECOND, 0, () => {
      if (resolvedAt === undefined && h.engine.alerts().length === 0) resolvedAt = h.clock.now();
    });
    assert.equal(resolvedAt, t1 + 296 * SECOND);
    assert.deepEqual(
      h.alerts.map((a) => [a.severity, a.state, a.id]),
      [
        ['page', 'firing', page.id],
        ['page', 'resolved', page.id],
      ],
      'one page, fired and resolved; no ticket: 1d burns 120/86400/0.001 = 1.39x (< 3x), 3d burns 0.46x (< 1x)',
    );
    const resolved = h.alerts[1]!;
    assert.equal(resolved.resolvedAt, t1 + 296 * SECOND);
    approx(resolved.conditions.find((c) => c.longWindow === '1h')!.longBurnRate, 120 / 3600 / 0.001, 'the 1h window still burns 33.3x at resolution');
    approx(resolved.conditions.find((c) => c.longWindow === '1h')!.shortBurnRate, 4 / 300 / 0.001, 'the 5m window burns 13.3x at resolution');
  });

  it('with the default 10 s evaluation timer the same outage pages at the 60 s tick (the first one past 51.84 s)', async () => {
    const h = harness({ evaluateEveryMs: 10 * SECOND });
    // Six clean hours: enough history for both page conditions (with less, the 6h window is really shorter and burns faster).
    await h.run(6 * 60, MINUTE, PER_MINUTE, 0);
    const t0 = h.clock.now();
    let firedAt: number | undefined;
    await h.run(90, SECOND, PER_SECOND, PER_SECOND, () => {
      if (firedAt === undefined && h.engine.alerts().some((a) => a.severity === 'page')) firedAt = h.clock.now();
    });
    // (With only 6 h of history the 1x ticket fires in the outage: its 3d window is really a 6h one.)
    // Ticks at t0 + 50 s (50/3600/0.001 = 13.9x over 1h) and t0 + 60 s (16.7x).
    assert.equal(firedAt, t0 + 60 * SECOND);
    assert.equal(h.alerts.find((a) => a.severity === 'page')?.firedAt, t0 + 60 * SECOND);
    await h.engine.close();
    assert.equal(h.clock.pendingTimers(), 0, 'close() cancels the evaluation timer');
  });
});

describe('SLO engine: a steady 0.2% error rate (2x burn)', () => {
  it('never pages; the 1x-over-3d-and-6h ticket fires 36 h + 1 min in, when the 3d window first exceeds 1x', async () => {
    const h = harness();
    await h.run(3 * 24 * 60, MINUTE, PER_MINUTE, 0);
    const t0 = h.clock.now();
    // 0.2% of 6 000 = 12 bad events a minute. x into it, burn over a window w is
    // 2 * min(x, w) / w: the 6h window exceeds 1x at x = 3 h, the 3d window at
    // x = 36 h exactly (burn exactly 1, not above it), so the ticket fires at the
    // next evaluation, 36 h + 1 min, burning 2 * 2161 / 4320 = 1.000463x.
    // 14.4x and 6x (page) and 3x (ticket) are out of reach of a 2x burn.
    let firedAt: number | undefined;
    await h.run(40 * 60, MINUTE, PER_MINUTE, 12, () => {
      if (firedAt === undefined && h.engine.alerts().length > 0) firedAt = h.clock.now();
    });
    assert.equal(firedAt, t0 + 36 * HOUR + MINUTE);
    assert.deepEqual(
      h.alerts.map((a) => [a.severity, a.state]),
      [['ticket', 'firing']],
    );
    const ticket = h.alerts[0]!;
    const slow = ticket.conditions.find((c) => c.longWindow === '3d')!;
    approx(slow.longBurnRate, (2 * 2161) / 4320, '3d burn at the firing');
    approx(slow.shortBurnRate, 2, '6h burn at the firing');
    assert.equal(ticket.conditions.find((c) => c.longWindow === '1d')!.met, false, '1d burns 2x, under 3x');

    const status = h.engine.status('checkout');
    for (const w of ['5m', '30m', '1h', '2h', '6h', '1d'] as const) approx(status.burnRates[w]!, 2, `burn over ${w}`);
    approx(status.burnRates['3d']!, (2 * 40) / 72, 'burn over 3d after 40 h of the 72');
  });
});

describe('SLO engine: a steady 0.1% error rate (1x burn)', () => {
  it('spends exactly the 30-day budget over the 30-day window, and fires nothing (1x is not above 1x)', async () => {
    const h = harness();
    // 30 days of 6 000 events a minute, 6 of them bad (0.1%), evaluated hourly.
    for (let day = 0; day < 30; day++) {
      for (let hour = 0; hour < 24; hour++) {
        await h.run(59, MINUTE, PER_MINUTE, 6, () => undefined);
        await h.run(1, MINUTE, PER_MINUTE, 6);
      }
    }
    assert.equal(h.clock.now(), 30 * DAY);
    const { budget, burnRates } = h.engine.status('checkout');
    // Events in the window: 43 200 min * 6 000 = 259 200 000. The budget at 99.9%
    // allows 0.1% of them, 259 200, and exactly that many failed.
    approx(budget.totalEvents, 259_200_000, 'events in the window');
    approx(budget.allowedBadEvents, 259_200, 'bad events allowed');
    approx(budget.badEvents, 259_200, 'bad events seen');
    assert.ok(Math.abs(budget.remainingEvents) < 1e-6, `budget left in events: ${budget.remainingEvents}`);
    assert.ok(Math.abs(budget.remainingFraction) < 1e-9, `budget left as a fraction: ${budget.remainingFraction}`);
    for (const [w, burn] of Object.entries(burnRates)) approx(burn, 1, `burn over ${w}`);
    assert.equal(h.alerts.length, 0);
  });

  it('counts the budget over the rolling window: 15 clean days then 15 at 2x spend it exactly, and it comes back only as the bad days leave the window', async () => {
    const h = harness();
    await h.run(15 * 24, HOUR, 60 * PER_MINUTE, 0);
    await h.run(15 * 24 * 6, 10 * MINUTE, 10 * PER_MINUTE, 0.002 * 10 * PER_MINUTE);
    // Day 30: 15 clean days + 15 days at 0.2% average 0.1% over the window: burn 1, budget spent.
    const remaining = (): number => h.engine.status('checkout').budget.remainingFraction;
    approx(remaining(), 0, 'budget left at day 30');
    // 10 clean days later the window (10d, 40d] has traded 10 old clean days for 10 new ones: still spent.
    await h.run(10 * 24, HOUR, 60 * PER_MINUTE, 0);
    approx(remaining(), 0, 'budget left at day 40');
    // 10 more: the window (20d, 50d] keeps only 10 of the 15 bad days: burn 2 * 10 / 30, a third of the budget back.
    await h.run(10 * 24, HOUR, 60 * PER_MINUTE, 0);
    approx(remaining(), 1 - (2 * 10) / 30, 'budget left at day 50');
  });
});

describe('SLO engine: queries', () => {
  it('answers burn rate over any window, with no traffic as 0', async () => {
    const h = harness();
    assert.equal(h.engine.burnRate('checkout', HOUR), 0);
    assert.equal(h.engine.status('checkout').budget.remainingFraction, 1);
    assert.equal(h.engine.status('checkout').sli, 1);
    await h.run(10, MINUTE, 1000, 5);
    approx(h.engine.burnRate('checkout', 10 * MINUTE), 5, '0.5% over 10 minutes is 5x');
    approx(h.engine.burnRate('checkout', 7 * MINUTE), 5, 'any window inside the traffic');
    approx(h.engine.status('checkout').sli, 0.995, 'SLI');
  });

  it('recordGood()/recordBad() count like record(); bad input and unknown names are typed errors', () => {
    const h = harness();
    const checkout = h.engine.slo('checkout');
    checkout.recordGood(9);
    checkout.recordBad();
    approx(h.engine.status('checkout').budget.badEvents, 1, 'bad events');
    approx(h.engine.status('checkout').budget.totalEvents, 10, 'total events');
    for (const [good, total] of [
      [-1, 1],
      [2, 1],
      [Number.NaN, 1],
      [0, Number.POSITIVE_INFINITY],
    ] as const) {
      assert.throws(() => checkout.record(good, total), isInvalidRecordError, `record(${good}, ${total})`);
    }
    assert.throws(() => h.engine.record('nope', 1, 1), isSloNotFoundError);
    assert.throws(() => h.engine.status('nope'), (e: unknown) => isSloNotFoundError(e) && e.slo === 'nope');
  });

  it('keeps a bounded history of transitions', async () => {
    const clock = new VirtualClock(0);
    const engine = createSloEngine({ slos: [spec], clock, evaluateEveryMs: 0, historyLimit: 3 });
    const slo = engine.slo('checkout');
    for (let i = 0; i < 4; i++) {
      slo.recordBad(100);
      engine.evaluate();
      await clock.advance(7 * HOUR);
      slo.recordGood(1_000_000_000);
      engine.evaluate();
      await clock.advance(DAY);
    }
    const history = engine.history();
    assert.equal(history.length, 3);
    assert.ok(history.every((a) => a.slo === 'checkout'));
  });
});

describe('SLO engine: SLIs from prom-client metrics', () => {
  it('reads the increase of good and total counters (and a histogram bucket) on each tick', async () => {
    const registry = new Registry();
    const requests = new Counter({ name: 'http_requests_total', help: 'requests', labelNames: ['route', 'code'], registers: [registry] });
    const latency = new Histogram({ name: 'http_request_duration_seconds', help: 'latency', labelNames: ['route'], buckets: [0.1, 0.3, 1], registers: [registry] });
    requests.inc({ route: '/orders', code: '200' }, 500); // before the engine: not the SLO's
    const clock = new VirtualClock(0);
    const engine = createSloEngine({
      clock,
      evaluateEveryMs: 0,
      registry,
      slos: [
        { name: 'orders-availability', service: 'orders', objective: 0.99, sli: { kind: 'metrics', total: { name: 'http_requests_total', labels: { route: '/orders' } }, bad: { name: 'http_requests_total', labels: { route: '/orders', code: '500' } } } },
        {
          name: 'orders-latency',
          service: 'orders',
          objective: 0.95,
          sli: { kind: 'metrics', total: { name: 'http_request_duration_seconds_count', labels: { route: '/orders' } }, good: { name: 'http_request_duration_seconds_bucket', labels: { route: '/orders', le: '0.3' } } },
        },
      ],
    });
    await engine.tick(); // baseline
    requests.inc({ route: '/orders', code: '200' }, 95);
    requests.inc({ route: '/orders', code: '500' }, 5);
    requests.inc({ route: '/other', code: '500' }, 1_000);
    for (let i = 0; i < 80; i++) latency.observe({ route: '/orders' }, 0.05);
    for (let i = 0; i < 20; i++) latency.observe({ route: '/orders' }, 0.5);
    await clock.advance(MINUTE);
    await engine.tick();
    const availability = engine.status('orders-availability');
    approx(availability.budget.totalEvents, 100, 'only /orders, only since the engine started');
    approx(availability.budget.badEvents, 5, '5 errors');
    approx(availability.burnRates['5m']!, 5, '5% errors at a 1% budget is 5x');
    const latencySlo = engine.status('orders-latency');
    approx(latencySlo.budget.badEvents, 20, '20 of 100 slower than 0.3 s');
    approx(latencySlo.burnRates['5m']!, 4, '20% slow at a 5% budget is 4x');
    assert.throws(() => engine.record('orders-latency', 1, 1), isInvalidRecordError, 'metrics SLIs are not fed by record()');
  });

  it('publishes events SLIs to a registry as the counters the exported rules read', async () => {
    const registry = new Registry();
    const engine = createSloEngine({ slos: [spec], registry, evaluateEveryMs: 0, clock: new VirtualClock(0) });
    engine.record('checkout', 9, 10);
    const text = await registry.metrics();
    assert.match(text, /bulwark_slo_events_total\{slo="checkout",service="orders"\} 10/);
    assert.match(text, /bulwark_slo_good_events_total\{slo="checkout",service="orders"\} 9/);
  });

  it('rejects unknown metric names, gauges and unknown labels, naming the field', () => {
    const registry = new Registry();
    new Counter({ name: 'known_total', help: 'x', labelNames: ['route'], registers: [registry] });
    const base = { name: 'a', service: 's', objective: 0.99 };
    assert.throws(
      () => createSloEngine({ registry, slos: [{ ...base, sli: { kind: 'metrics', total: { name: 'known_total' }, bad: { name: 'missing_total' } } }] }),
      (e: unknown) => isSloSpecError(e) && e.path === 'slos[0].sli.bad.name' && /unknown metric "missing_total"/.test(e.message),
    );
    assert.throws(
      () => createSloEngine({ registry, slos: [{ ...base, sli: { kind: 'metrics', total: { name: 'known_total', labels: { code: '500' } }, bad: { name: 'known_total' } } }] }),
      (e: unknown) => isSloSpecError(e) && e.path === 'slos[0].sli.total.name' && /no label "code"/.test(e.message),
    );
    assert.throws(
      () => createSloEngine({ slos: [{ ...base, sli: { kind: 'metrics', total: { name: 'known_total' }, bad: { name: 'known_total' } } }] }),
      (e: unknown) => isSloSpecError(e) && e.path === 'slos[0].sli' && /registry/.test(e.message),
    );
  });
});

function approx(actual: number, expected: number, what: string, tolerance = 1e-9): void {
  assert.ok(Math.abs(actual - expected) <= tolerance * Math.max(1, Math.abs(expected)), `${what}: expected ${expected}, got ${actual}`);
}
